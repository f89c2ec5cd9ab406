"""Builds the embedding engines for the backends in config/backends.yaml.

Each backend type brings its embedding engine (upcoach_llm/engines/types/): embedded → ONNX
Runtime in this process, ollama → Ollama's /api/embed, openai → an OpenAI-compatible server's
/v1/embeddings. A type without one is skipped with a warning. The first backend that lists a
model serves it.
"""

from __future__ import annotations

from upcoach_llm.common.backends import BackendsFile
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.embedding.models import ServedModel
from upcoach_llm.engines.types import engines_for


def build_served_models(catalog: ModelsFile, backends: BackendsFile) -> dict[str, ServedModel]:
    """One engine per backend that lists embedding models, keyed by the catalog model name."""
    served: dict[str, ServedModel] = {}
    for backend, models, engine in engines_for(catalog, backends, "embedding"):
        for model in models:
            served.setdefault(model, ServedModel(model, backend.name,
                                                 backend.engine_model(model), engine))
    return served
