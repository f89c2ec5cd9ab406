"""A lean span recorder behind the OpenTelemetry API, for the stack's own spans.

The SDK's spans validate every attribute under a lock, copy themselves into a ReadableSpan when
they end and carry limits and hooks the stack does not use: about 60-75 µs a span on a 2-core VM,
the largest part of what tracing costs a busy process. ``LeanTracerProvider`` keeps the parts of
the SDK that read the standard variables (the sampler of OTEL_TRACES_SAMPLER, the Resource of
OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, the span processors, the OTLP exporter) and makes
``RecordedSpan`` objects instead: slots, a plain attribute dict, ended once, read as they are by
the processors and exporters (they have the fields of the SDK's ReadableSpan that the OTLP
encoders read). Attribute values the OTLP data model does not hold are left out, not raised.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.trace.sampling import Decision, Sampler, _get_from_env_or_default
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

_SCALARS = (str, bool, int, float)
_EXACT = frozenset((*_SCALARS, bytes))  # the common case, without isinstance's MRO walk
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UNSET = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def _clean(value: Any) -> Any:
    """The value as OTLP holds it (scalars, int64 integers, sequences of one scalar type as
    tuples), else None."""
    kind = type(value)
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    if kind in _EXACT or isinstance(value, (*_SCALARS, bytes)):
        return value
    if isinstance(value, Sequence) and value:
        first = type(value[0])
        if first in _EXACT and all(type(v) is first for v in value):
            return tuple(value)
    return None


def _cleaned(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: c for k, v in (attributes or {}).items() if (c := _clean(v)) is not None}


class RecordedSpan(trace.Span):
    """One span being recorded; what processors and exporters read once it has ended."""

    __slots__ = (
        "_provider",
        "attributes",
        "context",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )
    dropped_attributes = dropped_events = dropped_links = 0

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None,
                 kind: SpanKind, attributes: dict[str, Any], links: Sequence[Link],
                 start_time: int, provider: LeanTracerProvider,
                 scope: InstrumentationScope) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_time = start_time
        self.end_time: int | None = None
        self.attributes = attributes
        self.events: list[Event] = []
        self.links = tuple(links)
        self.status = _UNSET
        self.resource = provider.resource
        self.instrumentation_scope = scope
        self._provider = provider

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is None:
            value = _clean(value)
            if value is not None:
                self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.end_time is None:
            for key, value in attributes.items():
                value = _clean(value)
                if value is not None:
                    self.attributes[key] = value

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None,
                  timestamp: int | None = None) -> None:
        if self.end_time is None:
            self.events.append(Event(name, _cleaned(attributes), timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        status = status if isinstance(status, Status) else Status(status, description)
        # As the SDK: OK is final, and UNSET never replaces a status.
        if (self.end_time is None and self.status.status_code is not StatusCode.OK
                and status.status_code is not StatusCode.UNSET):
            self.status = status

    def record_exception(self, exception: BaseException,
                         attributes: Mapping[str, Any] | None = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        self.add_event("exception", {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped), **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is None:
            self.end_time = end_time or time.time_ns()
            for processor in self._provider.processors:
                processor.on_end(self)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.end_time is None:
            self.record_exception(exc, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.end()


class LeanTracer(trace.Tracer):
    """Starts RecordedSpans (sampled ones; a NonRecordingSpan when the sampler drops one)."""

    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._scope = scope

    def start_span(self, name: str, context: context_api.Context | None = None,
                   kind: SpanKind = SpanKind.INTERNAL,
                   attributes: Mapping[str, Any] | None = None,
                   links: Sequence[Link] | None = None, start_time: int | None = None,
                   record_exception: bool = True, set_status_on_exception: bool = True,
                   ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, trace_state = parent.trace_id, parent.trace_state
        else:
            parent, trace_id, trace_state = None, random.getrandbits(128) or 1, None
        sampled = self._provider.sampler.should_sample(context, trace_id, name, kind, attributes,
                                                       links)
        if sampled.trace_state is not None:
            trace_state = sampled.trace_state
        flags = _SAMPLED if sampled.decision is Decision.RECORD_AND_SAMPLE else _NOT_SAMPLED
        span_context = SpanContext(trace_id, random.getrandbits(64) or 1, False, flags, trace_state)
        if sampled.decision is Decision.DROP:
            return trace.NonRecordingSpan(span_context)
        cleaned = _cleaned({**(attributes or {}), **sampled.attributes})
        return RecordedSpan(name, span_context, parent, kind, cleaned, links or (),
                            start_time or time.time_ns(), self._provider, self._scope)

    @contextmanager
    def start_as_current_span(self, name: str, context: context_api.Context | None = None,
                              kind: SpanKind = SpanKind.INTERNAL,
                              attributes: Mapping[str, Any] | None = None,
                              links: Sequence[Link] | None = None,
                              start_time: int | None = None, record_exception: bool = True,
                              set_status_on_exception: bool = True,
                              end_on_exit: bool = True) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception) as current:
            yield current


class LeanTracerProvider(trace.TracerProvider):
    """A TracerProvider of LeanTracers; span processors as the SDK's (add_span_processor), told
    when a span ends (``on_end``; the SDK's batch and simple processors do nothing on start)."""

    def __init__(self, resource: Resource | None = None, sampler: Sampler | None = None) -> None:
        self.resource = resource or Resource.create({})
        self.sampler = sampler or _get_from_env_or_default()
        self.processors: tuple[Any, ...] = ()
        self._lock = threading.Lock()

    def add_span_processor(self, processor: Any) -> None:
        with self._lock:
            self.processors = (*self.processors, processor)

    def get_tracer(self, instrumenting_module_name: str, instrumenting_library_version: str | None
                   = None, schema_url: str | None = None,
                   attributes: Mapping[str, Any] | None = None) -> LeanTracer:
        return LeanTracer(self, InstrumentationScope(
            instrumenting_module_name, instrumenting_library_version, schema_url))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()
