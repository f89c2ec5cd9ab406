"""Tracing on for a test, its spans kept in memory (upcoach_llm.common.tracing.use)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from upcoach_llm.common import tracing
from upcoach_llm.common.span_recorder import LeanTracerProvider


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on inside the block (build servers and apps inside it); off again after it."""
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.shutdown()
