"""Which embedding model answers a request.

An empty model means ``routing.default_embedding_model``; then the model's fallback chain
(config/models.yaml) is walked to the first model a configured backend serves here. The caller
learns the model actually used. When a served model's backend is down (UNAVAILABLE) or lacks
the model (FAILED_PRECONDITION), the next served model of the chain stands in. A name the
catalog lacks is NOT_FOUND, a chat model is INVALID_ARGUMENT, and a chain nobody serves is
FAILED_PRECONDITION.
"""

from __future__ import annotations

from dataclasses import dataclass

from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.common.errors import FailedPrecondition
from upcoach_llm.engines.base import EmbeddingEngine


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
        """The first served model of the requested model's chain."""
        return self.candidates(requested)[0]

    def candidates(self, requested: str) -> list[ServedModel]:
        """Every served model of the chain, in order: later ones stand in when one is down."""
        name = requested.strip() or self._catalog.routing.default_embedding_model
        self._catalog.require(name, "embedding")
        chain = self._catalog.fallback_chain(name)
        served = [self._served[c] for c in chain if c in self._served]
        if not served:
            raise FailedPrecondition(
                f"model {name!r} is not served here, nor any of its fallbacks "
                f"({', '.join(chain[1:]) or 'none configured'}); served: "
                f"{', '.join(sorted(self._served)) or 'none'}")
        return served
