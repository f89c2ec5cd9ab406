"""Builds the chat engines for the backends in config/backends.yaml.

Each backend type brings its chat engine (services/engines/types/): embedded → llama.cpp in
this process, ollama → Ollama's /api/chat, openai → an OpenAI-compatible server (vLLM). A type
without one is skipped with a warning. Only the catalog's chat models count: a backend that
lists nothing but embedding models gets no chat engine.
"""

from __future__ import annotations

from services.common.backends import BackendConfig, BackendsFile
from services.common.catalog import ModelsFile
from services.common.logging import get_logger
from services.engines.base import ChatEngine
from services.engines.types import type_of

log = get_logger(__name__)


def chat_models(catalog: ModelsFile, backend: BackendConfig) -> list[str]:
    """The catalog chat models a backend lists, in its order."""
    return [m for m in backend.models
            if (entry := catalog.get(m)) is not None and entry.kind == "chat"]


def build_engines(catalog: ModelsFile, backends: BackendsFile) -> dict[str, ChatEngine]:
    """One chat engine per backend that lists chat models and whose type has a chat engine."""
    engines: dict[str, ChatEngine] = {}
    for backend in backends.backends:
        models = chat_models(catalog, backend)
        if not models:
            continue
        builder = type_of(backend).chat_engine
        if builder is None:
            log.warning("chat backend skipped: no engine for its type yet", extra={
                "fields": {"backend": backend.name, "type": backend.type, "models": models}})
            continue
        engines[backend.name] = builder(backend, models)
    return engines
