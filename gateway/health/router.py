"""GET /health (no key needed; always 200 so load balancers see a degraded gateway as up)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.deps import Dependencies
from gateway.health.protocol import HealthResponse
from gateway.health.serving import check_health


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health", response_model=HealthResponse, response_model_exclude_none=True,
                summary="Health of the gateway, each service, Redis and each backend")
    async def health() -> HealthResponse:
        return await check_health(deps)

    return router
