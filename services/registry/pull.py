"""Model pulls per backend type, as a stream of progress reports.

Embedded models ship inside PyPI packages, so a pull only verifies the files are there. Ollama
pulls stream its /api/pull progress. An OpenAI-compatible server (vLLM) loads one model at
start-up (VLLM_MODEL) and cannot pull.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from services.common.backends import BackendConfig
from services.common.errors import FailedPrecondition
from services.engines.base import PullProgress
from services.engines.ollama import OllamaEngine
from services.engines.packaged_models import EMBEDDED_MODEL_FILES
from services.engines.remote_settings import RemoteSettings

Puller = Callable[[BackendConfig, str], AsyncIterator[PullProgress]]


async def pull_embedded(backend: BackendConfig, model: str) -> AsyncIterator[PullProgress]:
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


async def pull_ollama(backend: BackendConfig, model: str) -> AsyncIterator[PullProgress]:
    """Streams Ollama's /api/pull progress for the backend's name of the model."""
    engine = OllamaEngine(backend, RemoteSettings.from_env())
    try:
        async for step in engine.pull(backend.engine_model(model)):
            yield step
    finally:
        await engine.close()


async def pull_unsupported(backend: BackendConfig, model: str) -> AsyncIterator[PullProgress]:
    """Backends that load their model at start-up cannot pull."""
    raise FailedPrecondition(
        f"backend {backend.name} ({backend.type}) cannot pull models: an OpenAI-compatible "
        "server such as vLLM loads its model at start-up (set VLLM_MODEL and restart it)")
    yield  # pragma: no cover - makes this an async generator


PULLERS: dict[str, Puller] = {"embedded": pull_embedded, "ollama": pull_ollama,
                              "openai": pull_unsupported}


def can_pull(backend: BackendConfig, model: str) -> bool:
    """Whether a pull of model on backend makes sense."""
    if backend.type == "embedded":
        return model in backend.models
    return backend.type in PULLERS and backend.type != "openai"


def puller_for(backend: BackendConfig) -> Puller:
    """The pull implementation for the backend's type."""
    return PULLERS.get(backend.type, pull_unsupported)
