"""Backend probes: is a backend up, and which catalog models does it have installed?

Each backend type brings its probe (upcoach_llm/engines/types/): the embedded backend is "up" when
the packages that ship its model files are installed; remote engines are asked over HTTP
(Ollama's /api/tags, an OpenAI-compatible server's /v1/models). Returned model names are catalog
names (the backend's ``models`` map is applied in reverse).
"""

from __future__ import annotations

import asyncio

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.types import type_of


async def probe_backend(backend: BackendConfig, timeout: float = 2.0) -> EngineHealth:
    """Probes one backend within timeout seconds; never raises."""
    try:
        return await asyncio.wait_for(type_of(backend).probe(backend, timeout), timeout)
    except TimeoutError:
        return EngineHealth(healthy=False, detail=f"no answer within {timeout:g}s")
    except Exception as exc:  # noqa: BLE001 - a probe reports failures, it does not raise them
        return EngineHealth(healthy=False, detail=f"{type(exc).__name__}: {exc}")
