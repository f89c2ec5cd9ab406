"""What the remote types (Ollama, OpenAI-compatible) share: how a probe asks an engine's health."""

from __future__ import annotations

import dataclasses
import functools

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.ollama import OllamaEngine
from upcoach_llm.engines.openai_compat import OpenAICompatEngine
from upcoach_llm.engines.remote_settings import RemoteSettings


@functools.cache
def _remote_settings() -> RemoteSettings:
    return RemoteSettings.from_env()  # read once: the API key a vLLM server may require


async def probe_remote(engine_class: type[OllamaEngine | OpenAICompatEngine],
                       backend: BackendConfig, timeout: float) -> EngineHealth:
    """The engine's own health(), every request bounded by timeout."""
    settings = dataclasses.replace(_remote_settings(), connect_timeout=timeout,
                                   read_timeout=timeout)
    engine = engine_class(backend, settings)
    try:
        return await engine.health()
    finally:
        await engine.close()
