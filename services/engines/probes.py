"""Backend probes: is a backend up, and which catalog models does it have installed?

The embedded backend is "up" when the packages that ship its model files are installed; remote
engines are asked over HTTP (Ollama's /api/tags, an OpenAI-compatible server's /v1/models).
Returned model names are catalog names (the backend's ``models`` map is applied in reverse).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable

from services.common.backends import BackendConfig
from services.engines.base import EngineHealth
from services.engines.ollama import OllamaEngine
from services.engines.openai_compat import OpenAICompatEngine
from services.engines.packaged_models import EMBEDDED_MODEL_FILES
from services.engines.remote_settings import RemoteSettings

Probe = Callable[[BackendConfig, float], Awaitable[EngineHealth]]


async def probe_embedded(backend: BackendConfig, timeout: float) -> EngineHealth:
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


async def probe_ollama(backend: BackendConfig, timeout: float) -> EngineHealth:
    """Ollama's /api/tags: up when it answers, with the configured models it has pulled."""
    return await _probe_remote(OllamaEngine, backend, timeout)


async def probe_openai(backend: BackendConfig, timeout: float) -> EngineHealth:
    """/v1/models: up when it answers and lists a configured model."""
    return await _probe_remote(OpenAICompatEngine, backend, timeout)


@functools.cache
def _remote_settings() -> RemoteSettings:
    return RemoteSettings.from_env()  # read once: the API key a vLLM server may require


async def _probe_remote(engine_class: type[OllamaEngine | OpenAICompatEngine],
                        backend: BackendConfig, timeout: float) -> EngineHealth:
    settings = dataclasses.replace(_remote_settings(), connect_timeout=timeout,
                                   read_timeout=timeout)
    engine = engine_class(backend, settings)
    try:
        return await engine.health()
    finally:
        await engine.close()


async def _unsupported(backend: BackendConfig, timeout: float) -> EngineHealth:
    return EngineHealth(healthy=False, detail=f"no probe for backend type {backend.type}")


PROBES: dict[str, Probe] = {"embedded": probe_embedded, "ollama": probe_ollama,
                            "openai": probe_openai}


async def probe_backend(backend: BackendConfig, timeout: float = 2.0) -> EngineHealth:
    """Probes one backend within timeout seconds; never raises."""
    probe = PROBES.get(backend.type, _unsupported)
    try:
        return await asyncio.wait_for(probe(backend, timeout), timeout)
    except TimeoutError:
        return EngineHealth(healthy=False, detail=f"no answer within {timeout:g}s")
    except Exception as exc:  # noqa: BLE001 - a probe reports failures, it does not raise them
        return EngineHealth(healthy=False, detail=f"{type(exc).__name__}: {exc}")
