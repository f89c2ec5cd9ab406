"""The lean OTLP encoder writes what the SDK's encoder writes, for every kind of span content."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags, TraceState

from upcoach_llm.common.otlp_encoding import encode


def recorded_spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "router", "pid": 7}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("upcoach_llm", "1.0")
    remote = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1),
                         trace_state=TraceState([("vendor", "x1")]))
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    for kind in trace.SpanKind:
        with tracer.start_as_current_span(
                "POST /v1/chat/completions", context=parent, kind=kind,
                links=[Link(remote, {"why": "retry"})],
                attributes={"http.request.method": "POST", "http.response.status_code": 200,
                            "gen_ai.request.temperature": 0.7, "ok": True, "neg": -3,
                            "gen_ai.response.finish_reasons": ["stop"], "ids": [1, 2],
                            "bytes": b"\x00\x01"}) as outer:
            outer.add_event("gen_ai.first_token", {"at": 1.5})
            with tracer.start_as_current_span("chat smollm2 ✓") as inner:
                inner.set_status(Status(StatusCode.ERROR, "backend down"))
    with tracer.start_as_current_span("ok"):
        trace.get_current_span().set_status(Status(StatusCode.OK))
    return memory.get_finished_spans()


def test_same_message_as_the_sdk_encoder() -> None:
    spans = recorded_spans()
    expected = encode_spans(spans)
    assert len(expected.resource_spans[0].scope_spans[0].spans) == len(spans) == 11
    for _ in range(2):  # the second time from the attribute cache
        assert ExportTraceServiceRequest.FromString(encode(spans)) == expected


def test_an_empty_batch() -> None:
    assert encode([]) == b""


def test_equal_values_of_other_types_keep_their_own_type() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for value in (1, True, 1.0, 0, False, 0.0):  # equal and of one hash: a cache trap
        tracer.start_span("s", attributes={"x": value}).end()
    spans = memory.get_finished_spans()
    assert ExportTraceServiceRequest.FromString(encode(spans)) == encode_spans(spans)
