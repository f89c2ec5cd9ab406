"""Which embedding model answers a request.

An empty model means ``routing.default_embedding_model``; then the model's fallback chain
(config/models.yaml) is walked to the first model a configured backend serves here. The caller
learns the model actually used. A name the catalog lacks is NOT_FOUND, a chat model is
INVALID_ARGUMENT, and a chain nobody serves is FAILED_PRECONDITION.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.catalog import ModelsFile
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.engines.base import EmbeddingEngine


@dataclass(frozen=True)
class ServedModel:
    """A catalog model, the backend serving it, and the engine's own name for it."""

    name: str
    backend: str
    engine_model: str
    engine: EmbeddingEngine


class ModelResolver:
    """Maps requested model names to served models."""

    def __init__(self, catalog: ModelsFile, served: dict[str, ServedModel]) -> None:
        self._catalog = catalog
        self._served = served

    @property
    def served(self) -> dict[str, ServedModel]:
        return dict(self._served)

    def resolve(self, requested: str) -> ServedModel:
        name = requested.strip() or self._catalog.routing.default_embedding_model
        entry = self._catalog.get(name)
        if entry is None:
            raise NotFound(f"model {name!r} is not in the model catalog")
        if entry.kind != "embedding":
            raise InvalidArgument(f"model: {name!r} is a {entry.kind} model, not an embedding "
                                  "model")
        chain = self._catalog.fallback_chain(name)
        for candidate in chain:
            served = self._served.get(candidate)
            if served is not None:
                return served
        raise FailedPrecondition(f"model {name!r} is not served here, nor any of its fallbacks "
                                 f"({', '.join(chain[1:]) or 'none configured'}); served: "
                                 f"{', '.join(sorted(self._served)) or 'none'}")
