"""The embedded backend: llama.cpp (chat) and ONNX Runtime (embeddings) in the stack's processes.

Its models ship inside PyPI packages (upcoach_llm/engines/packaged_models.py): it is up when their
files are installed, and a pull only verifies them. Each engine serves its one model. The
engine modules are imported when an engine is built, so only the process that runs one loads
llama.cpp or ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import ConfigError, FailedPrecondition
from upcoach_llm.engines.base import ChatEngine, EmbeddingEngine, EngineHealth, PullProgress
from upcoach_llm.engines.packaged_models import EMBEDDED_MODEL_FILES
from upcoach_llm.engines.types.base import BackendType


def chat_engine(backend: BackendConfig, models: list[str]) -> ChatEngine:
    """llama.cpp on GENERATION_MODEL_PATH (batched unless GENERATION_BATCHED=false); the backend
    may list only that model."""
    from upcoach_llm.engines.llama_batched import BatchedLlamaEngine
    from upcoach_llm.engines.llama_cpp_engine import LlamaCppEngine
    from upcoach_llm.engines.llama_cpp_settings import LlamaSettings

    settings = LlamaSettings.from_env()
    wrong = [m for m in models if backend.engine_model(m) != settings.model_name]
    if wrong:
        raise ConfigError(f"backends.yaml: backend {backend.name!r} lists chat models {wrong}, "
                          f"but the embedded llama.cpp engine serves only "
                          f"{settings.model_name!r} (GENERATION_MODEL_NAME)")
    return BatchedLlamaEngine(settings) if settings.batched else LlamaCppEngine(settings)


def embedding_engine(backend: BackendConfig, models: list[str]) -> EmbeddingEngine:
    """ONNX Runtime on the packaged MiniLM; the backend may list only that model."""
    from upcoach_llm.engines.onnx_embedding_engine import (
        MODEL_NAME,
        OnnxEmbeddingEngine,
        OnnxEmbeddingSettings,
    )

    wrong = [m for m in models if backend.engine_model(m) != MODEL_NAME]
    if wrong:
        raise ConfigError(f"backends.yaml: backend {backend.name!r} lists {wrong}, but the "
                          f"embedded embedding engine serves only {MODEL_NAME!r}")
    return OnnxEmbeddingEngine(OnnxEmbeddingSettings.from_env(), MODEL_NAME)


async def probe(backend: BackendConfig, timeout: float) -> EngineHealth:
    """Healthy with the models whose files are installed; a missing file is named in detail."""
    installed, missing = [], []
    for model in backend.models:
        try:
            for packaged in EMBEDDED_MODEL_FILES.get(model, ()):
                packaged.path()
            installed.append(model)
        except FileNotFoundError as exc:
            missing.append(f"{model}: {exc}")
    return EngineHealth(healthy=not missing, models=tuple(installed), detail="; ".join(missing))


async def pull(backend: BackendConfig, model: str) -> AsyncIterator[PullProgress]:
    """Verifies the packaged files of an embedded model."""
    files = EMBEDDED_MODEL_FILES.get(model)
    if files is None or model not in backend.models:
        raise FailedPrecondition(
            f"backend {backend.name} (embedded) does not serve {model}; it serves "
            f"{', '.join(backend.models)}")
    total = 0
    for packaged in files:
        try:
            path = packaged.path()
        except FileNotFoundError as exc:
            raise FailedPrecondition(str(exc)) from None
        size = path.stat().st_size
        total += size
        yield PullProgress(status=f"verifying {packaged.distribution}/{packaged.relative}",
                           completed=size, total=size)
    yield PullProgress(status="success", completed=total, total=total, done=True)


TYPE = BackendType(name="embedded", probe=probe, chat_engine=chat_engine,
                   embedding_engine=embedding_engine, pull=pull, in_process=True)
