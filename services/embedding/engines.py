"""Builds the embedding engines for the backends in config/backends.yaml.

This is the one place that knows which engine class serves which backend type: embedded → ONNX
Runtime in this process, ollama → Ollama's /api/embed, openai → an OpenAI-compatible server's
/v1/embeddings. A type missing from ``_BUILDERS`` is skipped with a warning. The first backend
that lists a model serves it.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.backends import BackendConfig, BackendsFile
from services.common.catalog import ModelsFile
from services.common.errors import ConfigError
from services.common.logging import get_logger
from services.embedding.models import ServedModel
from services.engines.base import EmbeddingEngine
from services.engines.ollama import OllamaEngine
from services.engines.onnx_embedding_engine import (
    MODEL_NAME,
    OnnxEmbeddingEngine,
    OnnxEmbeddingSettings,
)
from services.engines.openai_compat import OpenAICompatEngine
from services.engines.remote_settings import RemoteSettings

log = get_logger(__name__)


def _embedded(backend: BackendConfig, models: list[str]) -> EmbeddingEngine:
    wrong = [m for m in models if backend.engine_model(m) != MODEL_NAME]
    if wrong:
        raise ConfigError(f"backends.yaml: backend {backend.name!r} lists {wrong}, but the "
                          f"embedded embedding engine serves only {MODEL_NAME!r}")
    return OnnxEmbeddingEngine(OnnxEmbeddingSettings.from_env(), MODEL_NAME)


_BUILDERS: dict[str, Callable[[BackendConfig, list[str]], EmbeddingEngine]] = {
    "embedded": _embedded,
    "ollama": lambda backend, _models: OllamaEngine(backend, RemoteSettings.from_env()),
    "openai": lambda backend, _models: OpenAICompatEngine(backend, RemoteSettings.from_env()),
}


def build_served_models(catalog: ModelsFile, backends: BackendsFile) -> dict[str, ServedModel]:
    """One engine per backend that lists embedding models, keyed by the catalog model name."""
    served: dict[str, ServedModel] = {}
    for backend in backends.backends:
        models = [m for m in backend.models
                  if (entry := catalog.get(m)) is not None and entry.kind == "embedding"]
        if not models:
            continue
        builder = _BUILDERS.get(backend.type)
        if builder is None:
            log.warning("embedding backend skipped: no engine for its type yet", extra={
                "fields": {"backend": backend.name, "type": backend.type, "models": models}})
            continue
        engine = builder(backend, models)
        for model in models:
            served.setdefault(model, ServedModel(model, backend.name,
                                                 backend.engine_model(model), engine))
    return served
