"""The backend types (config/backends.yaml ``type``): one module each, registered in TYPES.

A type brings its chat and embedding engines, its probe, its puller and the facts the services
ask about it (base.BackendType). Adding one: its value in common.proto's BackendType (which
names the type), a module beside these, and its line in TYPES.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from upcoach_llm.common.backends import BackendConfig, BackendsFile
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.common.logging import get_logger
from upcoach_llm.engines.types import embedded, ollama, openai
from upcoach_llm.engines.types.base import BackendType

log = get_logger(__name__)

TYPES: dict[str, BackendType] = {t.name: t for t in (embedded.TYPE, ollama.TYPE, openai.TYPE)}


def type_of(backend: BackendConfig) -> BackendType:
    """The type of a configured backend (config admits the proto's BackendType names only)."""
    return TYPES[backend.type]


def engines_for(catalog: ModelsFile, backends: BackendsFile, kind: Literal["chat", "embedding"],
                ) -> Iterator[tuple[BackendConfig, list[str], Any]]:
    """A new engine of the kind for each backend that lists catalog models of that kind, with the
    backend and those models (in its order); a type without such an engine is skipped with a
    warning."""
    for backend in backends.backends:
        models = [m for m in backend.models
                  if (entry := catalog.get(m)) is not None and entry.kind == kind]
        if not models:
            continue
        backend_type = type_of(backend)
        factory = backend_type.chat_engine if kind == "chat" else backend_type.embedding_engine
        if factory is None:
            log.warning(f"{kind} backend skipped: no engine for its type yet", extra={
                "fields": {"backend": backend.name, "type": backend.type, "models": models}})
            continue
        yield backend, models, factory(backend, models)
