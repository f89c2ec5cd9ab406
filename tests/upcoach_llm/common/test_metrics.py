"""The gRPC services' shared metrics: RPCs by method and code, and the engine meter."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from upcoach_llm.common.metrics import engine_meter, record


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_record_counts_the_call_and_times_it() -> None:
    method = "/upcoach.llm.v1.TestService/Call"
    before = sample("upcoach_grpc_requests_total", method=method, code="NOT_FOUND")
    record(method, "NOT_FOUND", 0.02)
    assert sample("upcoach_grpc_requests_total", method=method, code="NOT_FOUND") == before + 1
    assert sample("upcoach_grpc_request_seconds_count", method=method) >= 1
    assert sample("upcoach_grpc_request_seconds_bucket", method=method, le="0.05") >= 1


def test_the_engine_meter_counts_tokens_and_times_the_first_one() -> None:
    labels = {"model": "meter-model", "backend": "meter-backend", "backend_type": "ollama"}
    meter = engine_meter(*labels.values())
    assert engine_meter(*labels.values()) is meter  # one per (model, backend): labels once
    meter.finished(12, 250.0)
    meter.finished(3, 40.0)
    meter.finished(0, 0.0)  # nothing generated: no first token to time
    assert sample("upcoach_engine_generated_tokens_total", **labels) == 15
    assert sample("upcoach_engine_time_to_first_token_seconds_count", **labels) == 2
    assert sample("upcoach_engine_time_to_first_token_seconds_sum", **labels) == pytest.approx(0.29)
    assert sample("upcoach_engine_time_to_first_token_seconds_bucket", **labels, le="0.05") == 1
