"""The engine backends: typed view of config/backends.yaml plus the OLLAMA_*/VLLM_* variables.

A backend is one engine instance: the embedded engines inside this stack's own processes, an
Ollama server, or an OpenAI-compatible server such as vLLM. Each maps catalog model names to the
engine's own model names (``mistral`` → ``mistralai/Mistral-7B-Instruct-v0.2`` on vLLM).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.common.catalog import ModelsFile
from services.common.config import config_dir, load_yaml, validate
from services.common.errors import ConfigError

BackendTypeName = Literal["embedded", "ollama", "openai"]


class BackendConfig(BaseModel):
    """One engine instance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    type: BackendTypeName
    url: str | None = None
    models: dict[str, str] = Field(
        default_factory=dict, description="catalog model name -> the engine's model name")

    @field_validator("models", mode="before")
    @classmethod
    def _list_means_same_names(cls, value: object) -> object:
        if isinstance(value, list):
            return {str(name): str(name) for name in value}
        return value

    @model_validator(mode="after")
    def _url_for_remote(self) -> BackendConfig:
        if self.type != "embedded" and not self.url:
            raise ValueError(f"backend {self.name!r}: type {self.type} needs a url")
        return self

    def engine_model(self, catalog_name: str) -> str:
        """The engine's own name for a catalog model."""
        return self.models.get(catalog_name, catalog_name)


class BackendsFile(BaseModel):
    """config/backends.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backends: list[BackendConfig]

    @model_validator(mode="after")
    def _unique(self) -> BackendsFile:
        names = [b.name for b in self.backends]
        if len(names) != len(set(names)):
            raise ValueError(f"backends: duplicate names in {names}")
        return self

    def get(self, name: str) -> BackendConfig | None:
        return next((b for b in self.backends if b.name == name), None)

    def serving(self, model: str) -> list[BackendConfig]:
        """Backends whose configuration lists the model."""
        return [b for b in self.backends if model in b.models]


def load_backends(catalog: ModelsFile | None = None) -> BackendsFile:
    """Reads config/backends.yaml; with a catalog, checks every model it names is in it."""
    path = config_dir() / "backends.yaml"
    backends = validate(BackendsFile, load_yaml(path), str(path))
    if catalog is not None:
        for index, backend in enumerate(backends.backends):
            for model in backend.models:
                if catalog.get(model) is None:
                    raise ConfigError(
                        f"{path}: backends.{index}.models: {model!r} is not in models.yaml")
    return backends
