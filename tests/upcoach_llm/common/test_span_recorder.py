"""The lean span recorder: API-compatible spans that the SDK's processors and encoders accept."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

from upcoach_llm.common.otlp_encoding import encode
from upcoach_llm.common.span_recorder import LeanTracerProvider


def provider_with_memory(**kwargs) -> tuple[LeanTracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = LeanTracerProvider(resource=Resource.create({"service.name": "router"}), **kwargs)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def test_a_tree_of_spans_as_the_sdk_would_record_it() -> None:
    provider, memory = provider_with_memory()
    tracer = provider.get_tracer("upcoach_llm")
    remote = SpanContext(0xABC, 0x123, is_remote=True, trace_flags=TraceFlags(1))
    caller = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span("rpc", context=caller, kind=SpanKind.SERVER,
                                      attributes={"rpc.method": "Chat", "bad": object(),
                                                  "mixed": [1, object()]}) as server:
        call = tracer.start_span("chat m", kind=SpanKind.CLIENT,
                                 attributes={"gen_ai.request.max_tokens": 8})
        call.add_event("gen_ai.first_token")
        call.set_attributes({"gen_ai.response.finish_reasons": ["stop"], "none": None})
        call.end()
        call.set_attribute("after.end", 1)  # ignored: the span has ended
        server.update_name("POST /v1/chat/completions")
    chat, rpc = memory.get_finished_spans()  # in the order they ended
    assert rpc.name == "POST /v1/chat/completions" and rpc.kind == SpanKind.SERVER
    assert rpc.context.trace_id == 0xABC and rpc.parent == remote
    assert dict(rpc.attributes) == {"rpc.method": "Chat"}  # values OTLP cannot hold left out
    assert chat.parent.span_id == rpc.context.span_id and chat.context.trace_flags.sampled
    assert dict(chat.attributes) == {"gen_ai.request.max_tokens": 8,
                                     "gen_ai.response.finish_reasons": ("stop",)}
    assert [e.name for e in chat.events] == ["gen_ai.first_token"]
    assert chat.start_time <= chat.end_time
    spans = memory.get_finished_spans()
    assert ExportTraceServiceRequest.FromString(encode(spans)) == encode_spans(spans)


def test_an_exception_marks_the_span_failed() -> None:
    provider, memory = provider_with_memory()
    with pytest.raises(ValueError), provider.get_tracer("t").start_as_current_span("decide"):
        raise ValueError("no such model")
    [span] = memory.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert "no such model" in span.status.description
    assert [e.name for e in span.events] == ["exception"]


def test_the_sampler_decides() -> None:
    provider, _ = provider_with_memory(sampler=ParentBased(ALWAYS_OFF))
    span = provider.get_tracer("t").start_span("dropped")
    assert not span.is_recording() and span.get_span_context().is_valid
    span.end()
    provider, _ = provider_with_memory(sampler=TraceIdRatioBased(0.5))
    tracer = provider.get_tracer("t")
    kept = [tracer.start_span(str(i)).is_recording() for i in range(400)]
    assert 120 < sum(kept) < 280


def test_statuses_and_event_attributes_as_the_sdk_keeps_them() -> None:
    provider, memory = provider_with_memory()
    span = provider.get_tracer("t").start_span("s", attributes={"big": 2**64, "ok": 2**62})
    span.set_status(StatusCode.ERROR, "down")
    span.set_status(StatusCode.UNSET)  # never replaces a status
    span.add_event("e", {"kept": 1, "dropped": None, "mixed": [1, "a"]})
    span.end()
    [recorded] = memory.get_finished_spans()
    assert recorded.status.status_code == StatusCode.ERROR
    assert dict(recorded.attributes) == {"ok": 2**62}  # beyond int64: left out
    assert dict(recorded.events[0].attributes) == {"kept": 1}
