"""Tracing end to end: gateway, router and generation as real processes exporting over OTLP/HTTP to
a receiver in the test; one streamed chat with a traceparent is one trace across the three."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.logs import log_lines
from tests.support.otlp import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.integration
TRACE_ID = "5b8efff798038103d269b633813fc60c"
CALLER_SPAN = "eee19b7ec3c1b174"
SERVED = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(stack_factory, receiver: OtlpReceiver):
    return stack_factory(["generation", "router", "gateway"], env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
        "CACHE_MODE": "off", "RATE_LIMIT_RPM": "0", "GENERATION_PARALLEL": "1",
        "ROUTER_HEALTH_INTERVAL_S": "0.5"})


def _complete(spans: list[ReceivedSpan]) -> bool:
    names = {s.name for s in spans}
    return {"POST /v1/chat/completions", "upcoach.llm.v1.RouterService/ChatStream",
            "router.decide", f"chat {SERVED}",
            "upcoach.llm.v1.GenerationService/GenerateStream"} <= names


def test_a_streamed_chat_is_one_trace_across_the_processes(stack, receiver) -> None:
    url = f"http://{stack.spec('gateway').address}/v1/chat/completions"
    body = {"model": "mistral", "max_tokens": 8, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Give me a motivation tip"}]}
    with httpx.stream("POST", url, json=body, timeout=120,
                      headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}) as reply:
        assert reply.status_code == 200
        text = "".join(reply.iter_text())
        request_id = reply.headers["x-request-id"]
    assert text.rstrip().endswith("data: [DONE]")
    assert request_id == TRACE_ID  # no X-Request-ID sent: the trace id is the request id

    spans = receiver.wait_for(TRACE_ID, _complete)
    by_name = {s.name: s for s in spans}
    assert _complete(spans), sorted(by_name)
    gateway = by_name["POST /v1/chat/completions"]
    router = by_name["upcoach.llm.v1.RouterService/ChatStream"]
    decide = by_name["router.decide"]
    call = by_name[f"chat {SERVED}"]
    generation = by_name["upcoach.llm.v1.GenerationService/GenerateStream"]

    # One tree: the caller's span -> gateway -> router -> (decide, chat call -> generation).
    assert gateway.parent_id == CALLER_SPAN
    assert router.parent_id == gateway.span_id
    assert decide.parent_id == router.span_id
    assert call.parent_id == router.span_id
    assert generation.parent_id == call.span_id
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s is not gateway)
    # A service.name per process.
    assert (gateway.service, router.service, call.service, generation.service) == (
        "gateway", "router", "router", "generation")
    assert (gateway.kind, router.kind, call.kind, generation.kind) == (
        Span.SPAN_KIND_SERVER, Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT,
        Span.SPAN_KIND_SERVER)
    assert all(s.status_code != Status.STATUS_CODE_ERROR for s in spans)

    # GenAI attributes: what was asked, what served it, tokens, time to first token.
    for span in (gateway, router, call, generation):
        assert span.attributes["gen_ai.operation.name"] == "chat", span.name
        assert span.attributes["gen_ai.response.model"] == SERVED, span.name
    assert gateway.attributes["gen_ai.request.model"] == "mistral"
    assert router.attributes["gen_ai.request.model"] == "mistral"
    assert call.attributes["gen_ai.request.model"] == SERVED
    for span in (gateway, call, generation):
        assert span.attributes["gen_ai.usage.output_tokens"] == 8, span.name
        assert span.attributes["gen_ai.usage.input_tokens"] > 0, span.name
        assert span.attributes["gen_ai.response.finish_reasons"] == ("length",), span.name
    for span in (gateway, call, generation):
        assert span.attributes["gen_ai.request.max_tokens"] == 8, span.name
        assert span.attributes["gen_ai.request.temperature"] == 0, span.name
    assert gateway.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert call.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert generation.attributes["gen_ai.server.time_to_first_token"] > 0
    assert "gen_ai.first_token" in gateway.events and "gen_ai.first_token" in call.events
    assert call.attributes["gen_ai.provider.name"] == "embedded"
    assert decide.attributes["upcoach.route.model"] == SERVED
    assert generation.attributes["rpc.grpc.status_code"] == 0

    # The log lines of the request carry its trace id (and its request id, the same here).
    routed = [line for line in log_lines(stack, "router") if line["msg"] == "routed"
              and line.get("trace_id") == TRACE_ID]
    assert routed and routed[0]["request_id"] == TRACE_ID
    assert routed[0]["span_id"] == decide.span_id
    started = [line for line in log_lines(stack, "generation")
               if line["msg"] == "generation started" and line.get("trace_id") == TRACE_ID]
    assert started and started[0]["span_id"] == generation.span_id
