"""The embedding service's life cycle: config at construction, engines and content index at start.

``from_env`` reads config/models.yaml, config/backends.yaml and the coaching content once, builds
the engines and picks the index model (the default embedding model after fallbacks), so a bad
setup fails before the port is bound. ``start`` loads every engine and indexes the corpus; only
then does health say SERVING.
"""

from __future__ import annotations

import time

import grpc
from prometheus_client import Gauge

from upcoach_llm.api import embedding_pb2, embedding_pb2_grpc
from upcoach_llm.common.backends import load_backends
from upcoach_llm.common.catalog import load_models
from upcoach_llm.common.errors import ConfigError, ServiceError
from upcoach_llm.common.logging import get_logger
from upcoach_llm.common.server import GrpcService
from upcoach_llm.embedding.content import ContentItem, load_content
from upcoach_llm.embedding.engines import build_served_models
from upcoach_llm.embedding.index import ContentIndex
from upcoach_llm.embedding.models import ModelResolver, ServedModel
from upcoach_llm.embedding.servicer import EmbeddingServicer, embed_first_available
from upcoach_llm.engines.base import EmbeddingEngine

log = get_logger(__name__)

INDEX_BATCH = 256

INDEX_ITEMS = Gauge("upcoach_embedding_index_items", "Items in the content index")


class EmbeddingService(GrpcService):
    """Serves upcoach.llm.v1.EmbeddingService."""

    def __init__(self, resolver: ModelResolver, content: list[ContentItem]) -> None:
        try:
            self.index_candidates = resolver.candidates("")
        except ServiceError as exc:
            raise ConfigError(f"routing.default_embedding_model: {exc.message}") from None
        self.resolver = resolver
        self.index = ContentIndex()
        INDEX_ITEMS.set_function(lambda: len(self.index))
        self.servicer = EmbeddingServicer(resolver, self.index)
        self._content = content

    @classmethod
    def from_env(cls) -> EmbeddingService:
        catalog = load_models()
        served = build_served_models(catalog, load_backends(catalog))
        return cls(ModelResolver(catalog, served), load_content())

    def _engines(self) -> list[EmbeddingEngine]:
        unique: dict[int, EmbeddingEngine] = {}
        for served in self.resolver.served.values():
            unique.setdefault(id(served.engine), served.engine)
        return list(unique.values())

    def service_names(self) -> list[str]:
        return [embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        for engine in self._engines():
            await engine.load()
        started = time.perf_counter()
        model = self.index_candidates[0]
        for offset in range(0, len(self._content), INDEX_BATCH):
            batch = self._content[offset:offset + INDEX_BATCH]
            # Every batch must use the model of the first one, so the vectors are comparable.
            candidates = self.index_candidates if offset == 0 else [model]
            model, result = await embed_first_available(candidates,
                                                        [item.text for item in batch])
            self.index.upsert(batch, result.vectors)
        self.servicer.index_model = model
        log.info("content index built", extra={"fields": {
            "items": len(self.index), "categories": sorted(self.index.categories()),
            "model": model.name, "seconds": round(time.perf_counter() - started, 3)}})

    @property
    def index_model(self) -> ServedModel | None:
        """The model the content index was built with (None before start)."""
        return self.servicer.index_model

    async def stop(self) -> None:
        for engine in self._engines():
            await engine.close()
