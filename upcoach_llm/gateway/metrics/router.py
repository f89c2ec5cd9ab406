"""GET /metrics (Prometheus text format) and GET /api/metrics (the guide's JSON)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.responses import Response

from upcoach_llm.gateway.metrics.registry import GatewayMetrics


class MetricsSummary(BaseModel):
    """The guide's metrics JSON, for this gateway process."""

    requests_total: int
    cache_hits: int
    cache_misses: int
    errors_total: int
    active_connections: int


def build_router(metrics: GatewayMetrics) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/api/metrics", response_model=MetricsSummary,
                summary="Request, cache and error counts of this gateway process")
    async def api_metrics() -> MetricsSummary:
        return MetricsSummary(**metrics.summary())

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
