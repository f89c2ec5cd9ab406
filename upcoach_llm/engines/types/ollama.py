"""Ollama backends: chat and embeddings over its HTTP API; models arrive by ``ollama pull``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.engines.base import EngineHealth, PullProgress
from upcoach_llm.engines.ollama import OllamaEngine
from upcoach_llm.engines.remote_settings import RemoteSettings
from upcoach_llm.engines.types.base import BackendType
from upcoach_llm.engines.types.remote import probe_remote


def engine(backend: BackendConfig, models: list[str]) -> OllamaEngine:
    """One engine serves the backend's chat and embedding models alike."""
    return OllamaEngine(backend, RemoteSettings.from_env())


async def probe(backend: BackendConfig, timeout: float) -> EngineHealth:
    """Ollama's /api/tags: up when it answers, with the configured models it has pulled."""
    return await probe_remote(OllamaEngine, backend, timeout)


async def pull(backend: BackendConfig, model: str) -> AsyncIterator[PullProgress]:
    """Streams Ollama's /api/pull progress for the backend's name of the model."""
    pulling = OllamaEngine(backend, RemoteSettings.from_env())
    try:
        async for step in pulling.pull(backend.engine_model(model)):
            yield step
    finally:
        await pulling.close()


TYPE = BackendType(name="ollama", probe=probe, chat_engine=engine, embedding_engine=engine,
                   pull=pull, pulls_models=True)
