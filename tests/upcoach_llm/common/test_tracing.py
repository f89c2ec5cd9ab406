"""Tracing: off (and not even imported) unless an OTLP endpoint is set; on, the trace context
crosses gRPC calls (metadata) and HTTP requests (headers), and log lines carry the trace id."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.grpc_server import serving
from tests.support.tracing import recorded_spans
from upcoach_llm.api import common_pb2, generation_pb2, generation_pb2_grpc
from upcoach_llm.common import tracing
from upcoach_llm.common.channels import authed
from upcoach_llm.common.errors import ConfigError, NotFound
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.logging import JsonFormatter
from upcoach_llm.common.server import GrpcService

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
OTEL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_SCHEDULE_DELAY")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, its spans kept in memory; off again afterwards."""
    with recorded_spans() as exporter:
        yield exporter
    assert not tracing.ENABLED


# -- off ---------------------------------------------------------------------------------------

OFF_SCRIPT = """
import json, sys
from upcoach_llm.common import tracing
from upcoach_llm.common.channels import authed
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.api import router_pb2_grpc
import upcoach_llm.common.server, upcoach_llm.router.service, upcoach_llm.generation.service
import upcoach_llm.embedding.service{gateway}
assert tracing.setup("router") is False and not tracing.ENABLED
stub = router_pb2_grpc.RouterServiceStub(__import__("grpc").insecure_channel("127.0.0.1:1"))
method = stub.ChatStream
assert authed(stub, InternalAuth.disabled()).ChatStream is method  # nothing bound per call
print(json.dumps(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))
"""


def _modules_after(script: str, env: dict[str, str]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def test_off_by_default_the_grpc_services_never_import_opentelemetry() -> None:
    assert _modules_after(OFF_SCRIPT.format(gateway=""), _clean_env()) == []


def test_off_by_default_the_gateway_never_imports_the_sdk_tracing() -> None:
    # redis-py imports opentelemetry.sdk.metrics by itself when the SDK is installed, and
    # FastAPI the API: neither traces anything unless a tracer provider is set.
    script = OFF_SCRIPT.format(gateway=", upcoach_llm.gateway.app, upcoach_llm.gateway.__main__")
    modules = _modules_after(script, _clean_env())
    assert not [m for m in modules if m.startswith(("opentelemetry.sdk.trace",
                                                     "opentelemetry.exporter"))]


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
     False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
])
def test_configured_by_the_standard_variables(env: dict[str, str], on: bool) -> None:
    assert tracing.configured(env) is on


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER: 'sometimes' is not one of"),
    ({"OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG: 2.0 is above the maximum"),
    ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY: 'soon' is not an integer"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
     "OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' is not an http"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://otel:hunter2@collector"},
     r"OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://\*\*\*@collector' is not an http"),
])
def test_a_bad_value_fails_at_start_up_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{message}"):
        tracing.setup("router")
    assert not tracing.ENABLED


# -- propagation -------------------------------------------------------------------------------

def test_metadata_round_trip_links_the_server_span_to_the_caller(spans) -> None:
    with tracing.tracer().start_as_current_span("caller") as caller:
        metadata = tracing.grpc_metadata((("authorization", "Bearer token"),))
    assert metadata[0] == ("authorization", "Bearer token")
    sent = dict(metadata)
    context = caller.get_span_context()
    assert sent["traceparent"] == (f"00-{context.trace_id:032x}-{context.span_id:016x}-"
                                   f"{context.trace_flags:02x}")
    server = tracing.server_span("svc/Method", metadata)
    server.end()
    assert server.parent.span_id == context.span_id
    assert server.get_span_context().trace_id == context.trace_id
    assert server.kind == SpanKind.SERVER


def test_no_current_span_adds_nothing(spans) -> None:
    base = (("authorization", "Bearer token"),)
    assert tracing.grpc_metadata(base) == base
    assert tracing.headers() == {}
    assert tracing.extract([(b"x-request-id", b"abc")]) is None


def test_an_incoming_traceparent_is_honoured_from_bytes_headers(spans) -> None:
    span = tracing.server_span("GET", [(b"traceparent", TRACEPARENT.encode()),
                                       (b"tracestate", b"vendor=1")])
    span.end()
    assert f"{span.get_span_context().trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.get_span_context().trace_state.get("vendor") == "1"


def test_log_lines_carry_the_trace_id_while_tracing(spans) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with tracing.tracer().start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_log_lines_carry_no_trace_id_when_off() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert not tracing.ENABLED
    assert "trace_id" not in json.loads(JsonFormatter().format(record))


# -- across a real gRPC call -------------------------------------------------------------------

class _Generation(generation_pb2_grpc.GenerationServiceServicer):
    async def Generate(self, request, context):
        if request.model == "missing":
            raise NotFound("no such model")
        if request.model == "broken":
            raise RuntimeError("bug")
        tracing.set_attributes({tracing.GEN_AI_REQUEST_MODEL: request.model})
        return generation_pb2.GenerateResponse(text="hi")

    async def GenerateStream(self, request, context):
        for word in ("a", "b"):
            yield generation_pb2.GenerateStreamResponse(text=word)
        yield generation_pb2.GenerateStreamResponse(finish_reason=common_pb2.FINISH_REASON_STOP)


class _Service(GrpcService):
    def service_names(self) -> list[str]:
        return [generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        generation_pb2_grpc.add_GenerationServiceServicer_to_server(_Generation(), server)


def _by_name(exporter: InMemorySpanExporter) -> dict[str, object]:
    return {span.name: span for span in exporter.get_finished_spans()}


async def test_a_grpc_call_carries_the_callers_context_to_the_servers_span(spans) -> None:
    async with serving(_Service()) as (_, channel):
        stub = authed(generation_pb2_grpc.GenerationServiceStub(channel),
                      InternalAuth.disabled())
        with tracing.tracer().start_as_current_span("caller") as caller:
            await stub.Generate(generation_pb2.GenerateRequest(model="m"))
            messages = [m async for m in stub.GenerateStream(
                generation_pb2.GenerateStreamRequest(model="m"))]
        await stub.Generate(generation_pb2.GenerateRequest(model="m"))  # no caller span
    assert len(messages) == 3
    finished = spans.get_finished_spans()
    unary = [s for s in finished if s.name == "upcoach.llm.v1.GenerationService/Generate"]
    stream = _by_name(spans)["upcoach.llm.v1.GenerationService/GenerateStream"]
    context = caller.get_span_context()
    assert unary[0].parent.span_id == context.span_id
    assert unary[0].context.trace_id == context.trace_id
    assert unary[0].attributes[tracing.GEN_AI_REQUEST_MODEL] == "m"
    assert unary[0].attributes["rpc.grpc.status_code"] == 0
    assert unary[0].attributes["rpc.service"] == "upcoach.llm.v1.GenerationService"
    assert stream.parent.span_id == context.span_id
    assert stream.kind == SpanKind.SERVER
    assert unary[1].parent is None and unary[1].context.trace_id != context.trace_id


async def test_server_span_status_follows_the_rpc_code(spans) -> None:
    async with serving(_Service()) as (_, channel):
        stub = authed(generation_pb2_grpc.GenerationServiceStub(channel),
                      InternalAuth.disabled())
        for model in ("missing", "broken"):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Generate(generation_pb2.GenerateRequest(model=model))
    missing, broken = spans.get_finished_spans()
    assert missing.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert missing.status.status_code == StatusCode.UNSET  # the caller's mistake
    assert broken.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert broken.status.status_code == StatusCode.ERROR


async def test_authed_stubs_carry_the_token_and_the_context(spans) -> None:
    auth = InternalAuth(token="internal-0123456789abcdef")
    seen = []

    def method(*args, **kwargs):
        seen.append(kwargs["metadata"])

    class Stub:
        def __init__(self) -> None:
            self.Call = method

    stub = authed(Stub(), auth)
    stub.Call("request")
    with tracing.tracer().start_as_current_span("caller"):
        stub.Call("request")
    assert seen[0] == auth.metadata()
    assert seen[1][0] == auth.metadata()[0]
    assert seen[1][1][0] == "traceparent"
