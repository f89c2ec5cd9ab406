"""The engine backends: typed view of config/backends.yaml plus the OLLAMA_*/VLLM_* variables.

A backend is one engine instance: the embedded engines inside this stack's own processes, an
Ollama server, or an OpenAI-compatible server such as vLLM. Each maps catalog model names to the
engine's own model names (``mistral`` → ``mistralai/Mistral-7B-Instruct-v0.2`` on vLLM).

The environment (OLLAMA_*, VLLM_*, EMBEDDED_BACKEND: upcoach_llm/common/variables.py) adds remote
backends in front of the file's, several instances each: OLLAMA_URL's comma-separated URLs become
backends ollama, ollama-2, ... (without it, OLLAMA_PORT gives one at OLLAMA_HOST), VLLM_URL's
become vllm, vllm-2, ... serving VLLM_MODEL as VLLM_CATALOG_MODEL. The embedded backend stays,
last, as the fallback of last resort unless EMBEDDED_BACKEND is false.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from upcoach_llm.api.names import BackendTypeName
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.common.config import config_dir, load_yaml, validate
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.variables import VARIABLES


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
        if not _in_process(self) and not self.url:
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
    """Reads config/backends.yaml and the environment; with a catalog, checks every model name."""
    path = config_dir() / "backends.yaml"
    from_file = validate(BackendsFile, load_yaml(path), str(path))
    if catalog is not None:
        for index, backend in enumerate(from_file.backends):
            for model in backend.models:
                if catalog.get(model) is None:
                    raise ConfigError(
                        f"{path}: backends.{index}.models: {model!r} is not in models.yaml")
    by_variable = env_backends(catalog)
    taken = {b.name for b in from_file.backends}
    for variable, backends in by_variable.items():
        for backend in backends:
            if backend.name in taken:
                raise ConfigError(f"{variable}: backend name {backend.name!r} is already used in "
                                  f"{path}; remove it there or unset {variable}")
    remote = [backend for backends in by_variable.values() for backend in backends]
    kept = list(from_file.backends)
    if not VARIABLES.bool("EMBEDDED_BACKEND"):
        kept = [b for b in kept if not _in_process(b)]
        if not kept and not remote:
            raise ConfigError("EMBEDDED_BACKEND: false, but no other backend is configured "
                              f"(set OLLAMA_URL or VLLM_URL, or add one to {path})")
    in_process = [b for b in kept if _in_process(b)]
    others = [b for b in kept if not _in_process(b)]
    return BackendsFile(backends=[*others, *remote, *in_process])


def env_backends(catalog: ModelsFile | None = None) -> dict[str, list[BackendConfig]]:
    """The Ollama and OpenAI-compatible backends the environment configures, by the variable
    that gives their URLs."""
    return {"OLLAMA_URL": _ollama_backends(catalog), "VLLM_URL": _vllm_backends(catalog)}


def _in_process(backend: BackendConfig) -> bool:
    from upcoach_llm.engines.types import type_of  # imported here: the engines import this module

    return type_of(backend).in_process


def _url(variable: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{variable}: {raw!r} is not an http(s) URL like http://host:port")
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise ConfigError(f"{variable}: {raw!r} has an invalid port") from None
    return raw.rstrip("/")


def _numbered(prefix: str, urls: list[str]) -> list[tuple[str, str]]:
    return [(prefix if i == 0 else f"{prefix}-{i + 1}", url) for i, url in enumerate(urls)]


def _ollama_urls() -> list[str]:
    urls = VARIABLES.list("OLLAMA_URL")
    if urls:
        return [_url("OLLAMA_URL", url) for url in urls]
    port = VARIABLES.int("OLLAMA_PORT")
    if port is None:
        return []
    host = VARIABLES.str("OLLAMA_HOST")
    if any(c in host for c in ":/ "):
        raise ConfigError(f"OLLAMA_HOST: {host!r} must be a host name; set OLLAMA_URL for a "
                          "full address")
    return [f"http://{host}:{port}"]


def _ollama_models(catalog: ModelsFile | None) -> dict[str, str]:
    entries = VARIABLES.list("OLLAMA_MODELS")
    if not entries:
        raise ConfigError("OLLAMA_MODELS: empty; name at least one catalog model")
    models: dict[str, str] = {}
    for entry in entries:
        name, _, engine_name = entry.partition("=")
        name, engine_name = name.strip(), engine_name.strip() or name.strip()
        if catalog is not None and catalog.get(name) is None:
            raise ConfigError(f"OLLAMA_MODELS: {name!r} is not in models.yaml")
        models[name] = engine_name
    return models


def _ollama_backends(catalog: ModelsFile | None) -> list[BackendConfig]:
    urls = _ollama_urls()
    if not urls:
        return []
    models = _ollama_models(catalog)
    return [BackendConfig(name=name, type="ollama", url=url, models=models)
            for name, url in _numbered("ollama", urls)]


def _vllm_backends(catalog: ModelsFile | None) -> list[BackendConfig]:
    urls = [_url("VLLM_URL", url) for url in VARIABLES.list("VLLM_URL")]
    if not urls:
        return []
    engine_model = VARIABLES.str("VLLM_MODEL")
    if not engine_model:
        raise ConfigError("VLLM_MODEL: required when VLLM_URL is set (the model the server "
                          "loads, e.g. mistralai/Mistral-7B-Instruct-v0.2)")
    name = VARIABLES.str("VLLM_CATALOG_MODEL")
    if catalog is not None:
        entry = catalog.get(name)
        if entry is None:
            raise ConfigError(f"VLLM_CATALOG_MODEL: {name!r} is not in models.yaml")
        if entry.kind != "chat":
            raise ConfigError(f"VLLM_CATALOG_MODEL: {name!r} is an {entry.kind} model; vLLM "
                              "backends serve a chat model")
    return [BackendConfig(name=backend, type="openai", url=url, models={name: engine_model})
            for backend, url in _numbered("vllm", urls)]
