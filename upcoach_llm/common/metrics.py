"""Prometheus metrics of a gRPC service, served as text on its own HTTP port.

    <NAME>_METRICS_PORT   port of /metrics (0, the default: no metrics server); binds GRPC_HOST
                          (the gateway's, GATEWAY_METRICS_PORT, serves its own registry and
                          binds GATEWAY_HOST: upcoach_llm/gateway/server.py)

Every service counts its RPCs by method and status code and times them; services add their own
gauges (the generation service: queue depth and busy contexts per model). Values computed from
live objects use ``set_function``, so the hot path pays nothing for them.

The process that runs a chat engine (generation for embedded ones, the router for remote ones)
counts its generated tokens and times its first token: once per finished generation, from the
engine's own usage (``EngineMeter``), so each generation is counted once across the stack.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from upcoach_llm.api.topology import Service
from upcoach_llm.common.variables import VARIABLES

RPCS = Counter("upcoach_grpc_requests", "gRPC calls served, by method and status code",
               ["method", "code"])
RPC_SECONDS = Histogram("upcoach_grpc_request_seconds", "Time to serve a gRPC call, by method",
                        ["method"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60))


ENGINE_TOKENS = Counter(
    "upcoach_engine_generated_tokens",
    "Completion tokens of the generations this process's engines finished, by model and backend",
    ["model", "backend", "backend_type"])
ENGINE_TTFT = Histogram(
    "upcoach_engine_time_to_first_token_seconds",
    "Time from a request reaching the engine to its first text, by model and backend",
    ["model", "backend", "backend_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


def record(method: str, code: str, seconds: float) -> None:
    RPCS.labels(method, code).inc()
    RPC_SECONDS.labels(method).observe(seconds)


class EngineMeter:
    """The engine series of one (model, backend), label lookups done once."""

    __slots__ = ("_tokens", "_ttft")

    def __init__(self, model: str, backend: str, backend_type: str) -> None:
        self._tokens = ENGINE_TOKENS.labels(model, backend, backend_type)
        self._ttft = ENGINE_TTFT.labels(model, backend, backend_type)

    def finished(self, completion_tokens: int, time_to_first_token_ms: float) -> None:
        """Records one finished generation from its usage."""
        if completion_tokens > 0:
            self._tokens.inc(completion_tokens)
            self._ttft.observe(time_to_first_token_ms / 1000)


@cache
def engine_meter(model: str, backend: str, backend_type: str) -> EngineMeter:
    """The meter of a configured (model, backend): a handful per process, built once each."""
    return EngineMeter(model, backend, backend_type)


def metrics_port(service: Service) -> int:
    return VARIABLES.int(service.metrics_port_env)


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Starts the /metrics HTTP server of ``registry`` in a daemon thread (port 0: none)."""
    if port:
        start_http_server(port, addr=host, registry=registry)
