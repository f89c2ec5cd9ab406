"""OpenAI-compatible backends (vLLM): /v1/chat/completions, /v1/embeddings, /v1/models.

Such a server loads its one model at start-up, so it cannot pull.
"""

from __future__ import annotations

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.openai_compat import OpenAICompatEngine
from upcoach_llm.engines.remote_settings import RemoteSettings
from upcoach_llm.engines.types.base import BackendType
from upcoach_llm.engines.types.remote import probe_remote


def engine(backend: BackendConfig, models: list[str]) -> OpenAICompatEngine:
    """One engine serves the backend's chat and embedding models alike."""
    return OpenAICompatEngine(backend, RemoteSettings.from_env())


async def probe(backend: BackendConfig, timeout: float) -> EngineHealth:
    """/v1/models: up when it answers and lists a configured model."""
    return await probe_remote(OpenAICompatEngine, backend, timeout)


TYPE = BackendType(
    name="openai", probe=probe, chat_engine=engine, embedding_engine=engine,
    no_pull_reason="an OpenAI-compatible server such as vLLM loads its model at start-up "
                   "(set VLLM_MODEL and restart it)")
