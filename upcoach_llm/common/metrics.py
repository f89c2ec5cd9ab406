"""Prometheus metrics of a gRPC service, served as text on its own HTTP port.

    <NAME>_METRICS_PORT   port of /metrics (0, the default: no metrics server); binds GRPC_HOST

Every service counts its RPCs by method and status code and times them; services add their own
gauges (the generation service: queue depth and busy contexts per model). Values computed from
live objects use ``set_function``, so the hot path pays nothing for them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

from upcoach_llm.api.topology import Service
from upcoach_llm.common.variables import VARIABLES

RPCS = Counter("upcoach_grpc_requests", "gRPC calls served, by method and status code",
               ["method", "code"])
RPC_SECONDS = Histogram("upcoach_grpc_request_seconds", "Time to serve a gRPC call, by method",
                        ["method"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60))


def record(method: str, code: str, seconds: float) -> None:
    RPCS.labels(method, code).inc()
    RPC_SECONDS.labels(method).observe(seconds)


def metrics_port(service: Service) -> int:
    return VARIABLES.int(service.metrics_port_env)


def serve_metrics(host: str, port: int) -> None:
    """Starts the /metrics HTTP server in a daemon thread (port 0: none)."""
    if port:
        start_http_server(port, addr=host)
