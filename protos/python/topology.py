"""The stack's processes: their names, default ports, the variables that move them, their modules.

A service named ``model-registry`` listens on ``MODEL_REGISTRY_PORT`` (default its ``port``), its
callers find it at ``MODEL_REGISTRY_ADDR`` (host:port) and it serves Prometheus text on
``MODEL_REGISTRY_METRICS_PORT``; ``python -m <module>`` runs it. Standard library only, so the
client distribution can share it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    """One process of the stack; gRPC unless ``grpc`` is False (the gateway: HTTP)."""

    name: str
    port: int
    module: str
    grpc: bool = True

    @property
    def _prefix(self) -> str:
        return self.name.upper().replace("-", "_")

    @property
    def port_env(self) -> str:
        return f"{self._prefix}_PORT"

    @property
    def addr_env(self) -> str:
        return f"{self._prefix}_ADDR"

    @property
    def metrics_port_env(self) -> str:
        return f"{self._prefix}_METRICS_PORT"

    @property
    def script(self) -> str:
        """Its console command, installed with the server distribution (pyproject.toml)."""
        return f"upcoach-{self.name}"

    @property
    def local_address(self) -> str:
        """Where it listens when run on this machine with its default port."""
        return f"127.0.0.1:{self.port}"


GENERATION = Service("generation", 50051, "upcoach_llm.generation")
EMBEDDING = Service("embedding", 50052, "upcoach_llm.embedding")
MODEL_REGISTRY = Service("model-registry", 50053, "upcoach_llm.registry")
ROUTER = Service("router", 50054, "upcoach_llm.router")
GATEWAY = Service("gateway", 3100, "upcoach_llm.gateway", grpc=False)

# In start order: each one's callees come before it.
SERVICES = (GENERATION, EMBEDDING, MODEL_REGISTRY, ROUTER, GATEWAY)
GRPC_SERVICES = tuple(s for s in SERVICES if s.grpc)
BY_NAME = {s.name: s for s in SERVICES}
