"""Builds the embedding engines for the backends in config/backends.yaml.

Each backend type brings its embedding engine (services/engines/types/): embedded → ONNX
Runtime in this process, ollama → Ollama's /api/embed, openai → an OpenAI-compatible server's
/v1/embeddings. A type without one is skipped with a warning. The first backend that lists a
model serves it.
"""

from __future__ import annotations

from services.common.backends import BackendsFile
from services.common.catalog import ModelsFile
from services.common.logging import get_logger
from services.embedding.models import ServedModel
from services.engines.types import type_of

log = get_logger(__name__)


def build_served_models(catalog: ModelsFile, backends: BackendsFile) -> dict[str, ServedModel]:
    """One engine per backend that lists embedding models, keyed by the catalog model name."""
    served: dict[str, ServedModel] = {}
    for backend in backends.backends:
        models = [m for m in backend.models
                  if (entry := catalog.get(m)) is not None and entry.kind == "embedding"]
        if not models:
            continue
        builder = type_of(backend).embedding_engine
        if builder is None:
            log.warning("embedding backend skipped: no engine for its type yet", extra={
                "fields": {"backend": backend.name, "type": backend.type, "models": models}})
            continue
        engine = builder(backend, models)
        for model in models:
            served.setdefault(model, ServedModel(model, backend.name,
                                                 backend.engine_model(model), engine))
    return served
