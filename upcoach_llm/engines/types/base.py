"""What a backend type brings: its engines, its probe, its puller, and what services ask of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.engines.base import ChatEngine, EmbeddingEngine, EngineHealth, PullProgress

# Engine factories take the backend and the catalog models it lists for that engine.
ChatFactory = Callable[[BackendConfig, list[str]], ChatEngine]
EmbeddingFactory = Callable[[BackendConfig, list[str]], EmbeddingEngine]
Probe = Callable[[BackendConfig, float], Awaitable[EngineHealth]]
Puller = Callable[[BackendConfig, str], AsyncIterator[PullProgress]]


@dataclass(frozen=True)
class BackendType:
    """One value of config/backends.yaml ``type``; a factory left None means no such engine."""

    name: str
    probe: Probe  # up or not, and its catalog models; probe_backend bounds its time
    chat_engine: ChatFactory | None = None
    embedding_engine: EmbeddingFactory | None = None
    pull: Puller | None = None
    no_pull_reason: str = ""  # why a type without ``pull`` cannot pull
    # Runs inside the stack's own processes: needs no url, is healthy when the generation service
    # is, and stays last as the fallback of last resort (EMBEDDED_BACKEND=false drops it).
    in_process: bool = False
    # Models arrive by pulls: it can host any catalog model, but serves one only once pulled.
    pulls_models: bool = False

    def can_pull(self, backend: BackendConfig, model: str) -> bool:
        """Whether a pull of model on backend makes sense."""
        return self.pull is not None and (self.pulls_models or model in backend.models)
