"""The model catalog: typed views of config/models.yaml and config/edge_models.yaml.

The files keep the guide's schema; fields the guide does not show (kind, size, fallbacks,
sha256) are optional additions. Cross-references (routes, fallbacks, edge defaults) are checked
here so a bad file fails at start-up with the file and key named.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from upcoach_llm.api.names import ModelKindName, PlatformName
from upcoach_llm.common.config import load_config_file
from upcoach_llm.common.errors import InvalidArgument, NotFound


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    """One server model."""

    name: str = Field(min_length=1)
    description: str = ""
    required: bool = False
    use_cases: list[str] = []
    kind: ModelKindName = "chat"
    size: int = Field(default=0, ge=0, description="bytes on disk")


class RouteRule(_Strict):
    """A regex over the last user message that picks a model."""

    pattern: str
    model: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE)


class Routing(_Strict):
    """How a model is chosen when the caller names none, and what replaces an unserved one."""

    default_model: str
    default_embedding_model: str = "nomic-embed-text"
    routes: list[RouteRule] = []
    fallbacks: dict[str, list[str]] = {}


class ModelsFile(_Strict):
    """config/models.yaml."""

    models: list[ModelEntry]
    routing: Routing

    @model_validator(mode="after")
    def _references(self) -> ModelsFile:
        names = [m.name for m in self.models]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"models: duplicate names {sorted(duplicates)}")
        known = set(names)
        checks = [("routing.default_model", self.routing.default_model),
                  ("routing.default_embedding_model", self.routing.default_embedding_model)]
        checks += [(f"routing.routes.{i}.model", r.model)
                   for i, r in enumerate(self.routing.routes)]
        for source, chain in self.routing.fallbacks.items():
            checks.append((f"routing.fallbacks.{source}", source))
            checks += [(f"routing.fallbacks.{source}.{i}", m) for i, m in enumerate(chain)]
        for key, name in checks:
            if name not in known:
                raise ValueError(f"{key}: model {name!r} is not in models")
        return self

    def get(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def require(self, name: str, kind: ModelKindName) -> ModelEntry:
        """The entry of a requested model of that kind: NotFound, or InvalidArgument for a model
        of the other kind, both naming the ``model`` field."""
        entry = self.get(name)
        if entry is None:
            raise NotFound(f"{name!r} is not in the model catalog", field="model")
        if entry.kind != kind:
            raise InvalidArgument(f"{name!r} is {_a(entry.kind)} model, not {_a(kind)} model",
                                  field="model")
        return entry

    def fallback_chain(self, name: str) -> list[str]:
        """The model itself, then its configured fallbacks, each once, in order."""
        chain = [name]
        for candidate in self.routing.fallbacks.get(name, []):
            if candidate not in chain:
                chain.append(candidate)
        return chain


FormatName = Literal["onnx", "coreml", "tflite", "gguf"]


class EdgeFormat(_Strict):
    """One downloadable file of an edge model."""

    url: str
    size_mb: int = Field(gt=0)
    quantization: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class EdgeModelEntry(_Strict):
    """One on-device model."""

    id: str = Field(min_length=1)
    name: str
    description: str = ""
    platforms: list[PlatformName]
    formats: dict[FormatName, EdgeFormat]
    capabilities: list[str] = []
    max_context: int = Field(gt=0)
    min_device_ram_gb: float = Field(gt=0)


class EdgeDefaults(_Strict):
    """The guide's per-device defaults."""

    ios: str
    android: str
    low_memory: str


class EdgeModelsFile(_Strict):
    """config/edge_models.yaml."""

    edge_models: list[EdgeModelEntry]
    defaults: EdgeDefaults

    @model_validator(mode="after")
    def _references(self) -> EdgeModelsFile:
        ids = {m.id for m in self.edge_models}
        for key in ("ios", "android", "low_memory"):
            value = getattr(self.defaults, key)
            if value not in ids:
                raise ValueError(f"defaults.{key}: edge model {value!r} is not in edge_models")
        return self

    def get(self, model_id: str) -> EdgeModelEntry | None:
        return next((m for m in self.edge_models if m.id == model_id), None)


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def load_models() -> ModelsFile:
    """Reads and validates config/models.yaml."""
    return load_config_file(ModelsFile, "models.yaml")


def load_edge_models() -> EdgeModelsFile:
    """Reads and validates config/edge_models.yaml."""
    return load_config_file(EdgeModelsFile, "edge_models.yaml")
