"""Builds the chat engines for the backends in config/backends.yaml.

This is the one place that knows which engine class serves which backend type: embedded →
llama.cpp in this process, ollama → Ollama's /api/chat, openai → an OpenAI-compatible server
(vLLM). A type missing from ``_BUILDERS`` is skipped with a warning. Only the catalog's chat
models count: a backend that lists nothing but embedding models gets no chat engine.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.backends import BackendConfig, BackendsFile
from services.common.catalog import ModelsFile
from services.common.errors import ConfigError
from services.common.logging import get_logger
from services.engines.base import ChatEngine
from services.engines.llama_cpp_engine import LlamaCppEngine
from services.engines.llama_cpp_settings import LlamaSettings
from services.engines.ollama import OllamaEngine
from services.engines.openai_compat import OpenAICompatEngine
from services.engines.remote_settings import RemoteSettings

log = get_logger(__name__)


def _embedded(backend: BackendConfig, models: list[str]) -> ChatEngine:
    settings = LlamaSettings.from_env()
    wrong = [m for m in models if backend.engine_model(m) != settings.model_name]
    if wrong:
        raise ConfigError(f"backends.yaml: backend {backend.name!r} lists chat models {wrong}, "
                          f"but the embedded llama.cpp engine serves only "
                          f"{settings.model_name!r} (GENERATION_MODEL_NAME)")
    return LlamaCppEngine(settings)


_BUILDERS: dict[str, Callable[[BackendConfig, list[str]], ChatEngine]] = {
    "embedded": _embedded,
    "ollama": lambda backend, _models: OllamaEngine(backend, RemoteSettings.from_env()),
    "openai": lambda backend, _models: OpenAICompatEngine(backend, RemoteSettings.from_env()),
}


def chat_models(catalog: ModelsFile, backend: BackendConfig) -> list[str]:
    """The catalog chat models a backend lists, in its order."""
    return [m for m in backend.models
            if (entry := catalog.get(m)) is not None and entry.kind == "chat"]


def build_engines(catalog: ModelsFile, backends: BackendsFile) -> dict[str, ChatEngine]:
    """One chat engine per backend that lists chat models and has an engine type here."""
    engines: dict[str, ChatEngine] = {}
    for backend in backends.backends:
        models = chat_models(catalog, backend)
        if not models:
            continue
        builder = _BUILDERS.get(backend.type)
        if builder is None:
            log.warning("chat backend skipped: no engine for its type yet", extra={
                "fields": {"backend": backend.name, "type": backend.type, "models": models}})
            continue
        engines[backend.name] = builder(backend, models)
    return engines
