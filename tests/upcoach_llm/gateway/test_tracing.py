"""The gateway's HTTP server span (tracing on): the caller's traceparent is its parent, the router
call carries it, the chat's GenAI attributes are on it, and a stream's span ends with the stream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.tracing import recorded_spans
from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.sse import content, parse
from upcoach_llm.common import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
HELLO = {"model": "mistral", "messages": [{"role": "user", "content": "hi there"}],
         "max_tokens": 50, "temperature": 0.5}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


def _http_spans(exporter: InMemorySpanExporter) -> list:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


async def test_a_streamed_chat_is_one_span_child_of_the_callers_traceparent(
        gateway, spans: InMemorySpanExporter) -> None:
    gw: RunningGateway = await gateway({"CACHE_MODE": "off"})
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json={**HELLO, "stream": True},
                                  headers={"traceparent": TRACEPARENT})
        assert reply.status_code == 200, reply.text
        payloads, done = parse(reply.text)
        assert done and content(payloads) == "echo: hi there"
    [span] = _http_spans(spans)
    assert span.name == "POST /v1/chat/completions"
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    # No X-Request-ID sent: the trace id is the request id, in the header and on the span.
    assert reply.headers["x-request-id"] == TRACE_ID
    attributes = span.attributes
    assert attributes["upcoach.request_id"] == TRACE_ID
    assert attributes["http.route"] == "/v1/chat/completions"
    assert attributes["http.response.status_code"] == 200
    assert attributes[tracing.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[tracing.GEN_AI_REQUEST_MODEL] == "mistral"
    assert attributes[tracing.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attributes[tracing.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert attributes[tracing.GEN_AI_RESPONSE_MODEL] == "smollm2-135m-instruct"
    # Set when the stream's last message went by: the span was still open then.
    assert attributes[tracing.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[tracing.GEN_AI_USAGE_INPUT_TOKENS] == 2
    assert attributes[tracing.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert attributes[tracing.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert [e.name for e in span.events] == [tracing.FIRST_TOKEN_EVENT]
    # The router call carried the gateway span as its parent.
    sent = gw.double.calls.headers[-1]["traceparent"]
    assert sent.split("-")[1:3] == [TRACE_ID, f"{span.context.span_id:016x}"]


async def test_a_json_chat_and_a_request_id_of_the_callers(gateway, spans) -> None:
    gw: RunningGateway = await gateway({"CACHE_MODE": "off"})
    async with gw.client() as client:
        reply = await client.post("/api/chat/completions", json=HELLO,
                                  headers={"x-request-id": "mine-1"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-request-id"] == "mine-1"
    [span] = _http_spans(spans)
    assert span.parent is None  # no traceparent: a new trace
    assert span.attributes["upcoach.request_id"] == "mine-1"
    assert span.attributes[tracing.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert span.attributes[tracing.GEN_AI_RESPONSE_MODEL] == "smollm2-135m-instruct"


async def test_an_upstream_failure_marks_the_span(gateway, spans) -> None:
    gw: RunningGateway = await gateway({"CACHE_MODE": "off"})
    body = {**HELLO, "messages": [{"role": "user", "content": "UNAVAILABLE"}]}
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 503
    [span] = _http_spans(spans)
    assert span.attributes["http.response.status_code"] == 503
    assert span.status.status_code == StatusCode.ERROR


async def test_embeddings_span(gateway, spans) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/embeddings", json={"model": "nomic-embed-text",
                                                          "input": ["a", "b"]})
    assert reply.status_code == 200, reply.text
    [span] = _http_spans(spans)
    assert span.name == "POST /v1/embeddings"
    assert span.attributes[tracing.GEN_AI_OPERATION_NAME] == "embeddings"
    assert span.attributes[tracing.GEN_AI_REQUEST_MODEL] == "nomic-embed-text"
    assert span.attributes[tracing.GEN_AI_RESPONSE_MODEL] == reply.json()["model"]
