"""Runs the health checks concurrently, each bounded by HEALTH_TIMEOUT_S."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc

from upcoach_llm.api import router_pb2
from upcoach_llm.api.topology import GRPC_SERVICES
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.health.protocol import HealthResponse
from upcoach_llm.gateway.health.readiness import Verdict, route_probe, verdict

SERVICES = tuple(s.name for s in GRPC_SERVICES)


def iso_now() -> str:
    """Current UTC time as 2024-12-05T10:30:00.000Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def check_health(deps: Dependencies, *, with_details: bool
                       ) -> tuple[HealthResponse, Verdict]:
    """The guide's report (``details`` only when asked for) and whether chat can be served."""
    timeout = deps.settings.health_timeout_s
    checks = [deps.upstream.health(name, timeout) for name in SERVICES]
    results = await asyncio.gather(*checks, _redis(deps, timeout), _backends(deps, timeout),
                                   route_probe(deps, timeout))
    states: dict[str, tuple[bool, str]] = dict(zip(SERVICES, results[:len(SERVICES)],
                                                   strict=True))
    states["redis"] = results[len(SERVICES)]
    for name, state in results[-2].items():
        states[f"backend:{name}" if name in states else name] = state
    chat = verdict(states["router"], results[-1])
    healthy = all(ok for ok, _ in states.values())
    details = {name: detail or "unhealthy" for name, (ok, detail) in states.items() if not ok}
    if not chat.ready:
        details["chat"] = f"{chat.reason}: {chat.detail}" if chat.detail else chat.reason
    status = "down" if not chat.ready else "ok" if healthy else "degraded"
    return HealthResponse(
        status=status, timestamp=iso_now(),
        services={name: "healthy" if ok else "unhealthy" for name, (ok, _) in states.items()},
        details=(details or None) if with_details else None), chat


async def _redis(deps: Dependencies, timeout: float) -> tuple[bool, str]:
    try:
        return await asyncio.wait_for(deps.redis.ping(), timeout)
    except TimeoutError:
        return False, f"no answer in {timeout:g}s"


async def _backends(deps: Dependencies, timeout: float) -> dict[str, tuple[bool, str]]:
    """Each backend the router knows, with its circuit state; empty when the router is down."""
    try:
        reply = await deps.upstream.router.ListBackends(router_pb2.ListBackendsRequest(),
                                                        timeout=timeout)
    except grpc.aio.AioRpcError:
        return {}
    return {b.name: (b.healthy, b.detail) for b in reply.backends}
