"""The generation service's life cycle: config and engines at construction, model load at start.

``from_env`` reads config/models.yaml and config/backends.yaml once and builds the engines, so a
bad setup fails before the port is bound; ``start`` loads and warms every engine, and only then
does health say SERVING; ``stop`` releases them after the drain.
"""

from __future__ import annotations

import asyncio

import grpc
from prometheus_client import Gauge

from upcoach_llm.api import generation_pb2, generation_pb2_grpc
from upcoach_llm.common.backends import load_backends
from upcoach_llm.common.catalog import load_models
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.server import GrpcService
from upcoach_llm.engines.base import ChatEngine
from upcoach_llm.generation.engines import build_engines
from upcoach_llm.generation.resolver import Resolver
from upcoach_llm.generation.servicer import GenerationServicer
from upcoach_llm.generation.settings import GenerationSettings

QUEUE_DEPTH = Gauge("upcoach_generation_queue_depth",
                    "Requests waiting for an engine context", ["engine"])
BUSY_CONTEXTS = Gauge("upcoach_generation_busy_contexts",
                      "Engine contexts generating right now", ["engine"])


def watch_occupancy(engine: ChatEngine) -> None:
    """Gauges read from the engine when scraped: nothing on the hot path."""
    name = type(engine).__name__
    BUSY_CONTEXTS.labels(name).set_function(lambda: (engine.occupancy() or (0, 0))[0])
    QUEUE_DEPTH.labels(name).set_function(lambda: (engine.occupancy() or (0, 0))[1])


class GenerationService(GrpcService):
    """Serves upcoach.llm.v1.GenerationService."""

    def __init__(self, resolver: Resolver, settings: GenerationSettings) -> None:
        self.resolver = resolver
        self.servicer = GenerationServicer(resolver, settings.sampling, settings.flush_s)

    @classmethod
    def from_env(cls) -> GenerationService:
        catalog = load_models()
        backends = load_backends(catalog)
        engines = build_engines(catalog, backends)
        if not engines:
            raise ConfigError("backends.yaml: no backend lists a chat model with an engine type "
                              "this generation service can run")
        return cls(Resolver(catalog, backends, engines), GenerationSettings.from_env())

    def service_names(self) -> list[str]:
        return [generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        generation_pb2_grpc.add_GenerationServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        engines = self.resolver.unique_engines()
        await asyncio.gather(*(engine.load() for engine in engines))
        for engine in engines:
            if engine.occupancy() is not None:
                watch_occupancy(engine)

    async def stop(self) -> None:
        await asyncio.gather(*(engine.close() for engine in self.resolver.unique_engines()))
