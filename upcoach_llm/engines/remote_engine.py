"""The life cycle the remote engines (Ollama, OpenAI-compatible) share around their HTTP client."""

from __future__ import annotations

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.logging import get_logger
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.remote_http import RemoteHttp

log = get_logger(__name__)


class RemoteLifecycle:
    """``load`` and ``close`` for an engine with a ``backend``, an ``http`` client and ``health``.

    A server that is down at start-up is logged, not fatal: the router's health checks route
    around it until it is back.
    """

    backend: BackendConfig
    http: RemoteHttp

    async def health(self) -> EngineHealth:
        raise NotImplementedError

    async def load(self) -> None:
        health = await self.health()
        if not health.healthy:
            log.warning("remote backend not reachable at start-up", extra={"fields": {
                "backend": self.backend.name, "type": self.backend.type, "url": self.http.url,
                "reason": health.detail}})

    async def close(self) -> None:
        await self.http.aclose()
