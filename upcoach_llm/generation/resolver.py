"""Turns a request's model and backend into the engine that runs it.

An unknown model or backend is NOT_FOUND naming it; an empty backend picks the first configured
backend that lists the model and has an engine here.
"""

from __future__ import annotations

from dataclasses import dataclass

from upcoach_llm.common.backends import BackendsFile
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.common.errors import InvalidArgument, NotFound, Unavailable
from upcoach_llm.engines.base import ChatEngine


@dataclass(frozen=True)
class Target:
    """Where a request runs: the backend, the engine and the engine's name for the model."""

    backend: str
    model: str
    engine_model: str
    engine: ChatEngine


class Resolver:
    """Resolves (model, backend) against the catalog, the backend config and the engines built."""

    def __init__(self, catalog: ModelsFile, backends: BackendsFile,
                 engines: dict[str, ChatEngine]) -> None:
        self.catalog = catalog
        self.backends = backends
        self.engines = engines

    def resolve(self, model: str, backend: str = "") -> Target:
        if not model:
            raise InvalidArgument("required (a chat model from config/models.yaml)", field="model")
        self.catalog.require(model, "chat")
        if backend:
            return self._on(model, backend)
        for config in self.backends.serving(model):
            if config.name in self.engines:
                return Target(config.name, model, config.engine_model(model),
                              self.engines[config.name])
        raise NotFound(f"{model!r} is not served here: no backend with an engine in this "
                       "generation service lists it", field="model")

    def _on(self, model: str, backend: str) -> Target:
        config = self.backends.get(backend)
        if config is None:
            raise NotFound(f"{backend!r} is not configured", field="backend")
        if model not in config.models:
            raise NotFound(f"{backend!r} does not serve model {model!r}", field="backend")
        engine = self.engines.get(backend)
        if engine is None:
            raise Unavailable(f"backend: {backend!r} (type {config.type}) has no engine in this "
                              "generation service")
        return Target(backend, model, config.engine_model(model), engine)

    def unique_engines(self) -> list[ChatEngine]:
        """Every engine once, in backend order."""
        return list(self.engines.values())
