"""Readiness: whether a chat can be served now, the one rule behind /readyz and /health's "down".

Ready means the router answers its grpc.health.v1 check with SERVING and its ``Route`` RPC, asked
with an empty request, resolves the default chat model's fallback chain to a healthy backend (the
router answers UNAVAILABLE when no backend serves it). ``Shared`` keeps a verdict for
READY_CACHE_S, so a load balancer polling /readyz costs one probe a second; /health's report is
shared the same way (``Shared``), so the public endpoint cannot multiply calls to the services.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from upcoach_llm.api import router_pb2
from upcoach_llm.gateway.deps import Dependencies

READY_CACHE_S = 1.0


@dataclass(frozen=True)
class Verdict:
    """``reason`` and ``code`` are safe to show anyone; ``detail`` carries the upstream's text."""

    ready: bool
    code: str = ""
    reason: str = ""
    detail: str = ""


READY = Verdict(True)


def verdict(router: tuple[bool, str], route: tuple[bool, str]) -> Verdict:
    """The rule, from the router's health check and the Route probe (each ok, detail)."""
    router_ok, router_detail = router
    route_ok, route_detail = route
    if not router_ok:
        return Verdict(False, "router_not_serving",
                       f"the router is not serving ({_status(router_detail)})", router_detail)
    if not route_ok:
        return Verdict(False, "no_chat_backend", "no healthy backend serves the default chat "
                       f"model or its fallbacks ({_status(route_detail)})", route_detail)
    return READY


async def route_probe(deps: Dependencies, timeout: float) -> tuple[bool, str]:
    """Whether the router can route a chat for the default model right now."""
    try:
        await deps.upstream.router.Route(router_pb2.RouteRequest(), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        return False, f"{exc.code().name}: {exc.details() or ''}".rstrip(": ")
    return True, ""


async def probe(deps: Dependencies) -> Verdict:
    """Checks the router and routes the default model, both bounded by HEALTH_TIMEOUT_S."""
    timeout = deps.settings.health_timeout_s
    router, route = await asyncio.gather(deps.upstream.health("router", timeout),
                                         route_probe(deps, timeout))
    return verdict(router, route)


T = TypeVar("T")


class Shared(Generic[T]):
    """The last result of a check, reused for ``ttl_s``. Callers that come while it runs wait for
    that one run, its result or its exception alike; a caller that goes away does not cancel it
    for the others."""

    def __init__(self, check: Callable[[], Awaitable[T]], ttl_s: float = READY_CACHE_S) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._running: asyncio.Task[T] | None = None
        self._last: T | None = None
        self._at = 0.0

    async def get(self) -> T:
        if self._last is not None and time.monotonic() - self._at < self._ttl_s:
            return self._last
        if self._running is None:
            self._running = asyncio.create_task(self._run())
            # Read here, so a failure whose callers all went away is not reported as lost.
            self._running.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.shield(self._running)

    async def _run(self) -> T:
        try:
            result = await self._check()
            self._last, self._at = result, time.monotonic()
            return result
        finally:
            self._running = None


def _status(detail: str) -> str:
    """The status name that starts an upstream detail ("UNAVAILABLE: ..."), without the rest."""
    return detail.split(":", 1)[0].strip() or "unknown"
