"""GET /metrics (Prometheus text format) and GET /api/metrics (the guide's JSON).

Both count every tenant's traffic, so one tenant must not read them: while keys are on
(LLM_API_KEY), they answer only the operator's key (LLM_ADMIN_KEY), with no rate-limit cost (a
scraper calls every few seconds); a client's key gets 401. Without keys they are open, as
everything is (the guide's ``curl http://localhost:3100/api/metrics``). The cluster's Prometheus
scrapes GATEWAY_METRICS_PORT instead, which needs no key and is reachable only where the network
allows it (the Kubernetes overlays: the monitoring namespace).
"""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.metrics.registry import GatewayMetrics
from upcoach_llm.gateway.security.admin import AdminKey


class MetricsSummary(BaseModel):
    """The guide's metrics JSON, for this gateway process."""

    requests_total: int
    cache_hits: int
    cache_misses: int
    errors_total: int
    active_connections: int


def build_router(metrics: GatewayMetrics, *, keys_on: bool, admin_key: str | None
                 ) -> APIRouter:
    router = APIRouter(tags=["metrics"])
    admin = AdminKey(admin_key)
    refused = {401: {"description": "keys are on and the operator's key is missing"}}

    def operator_only(request: Request, instead: str) -> None:
        """401 unless keys are off or the request presents the operator's key."""
        if not keys_on or admin.presented_by(request.headers):
            return
        path = request.url.path
        message = (f"{path} counts every tenant's traffic: it needs the operator's key "
                   "(LLM_ADMIN_KEY) while API keys are on" if admin_key else
                   f"{path} is closed while API keys are on and LLM_ADMIN_KEY is not set; "
                   f"{instead}")
        raise APIError(401, message, code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})

    @router.get("/api/metrics", response_model=MetricsSummary, responses=refused,
                summary="Request, cache and error counts of this gateway process")
    async def api_metrics(request: Request) -> MetricsSummary:
        operator_only(request, "set LLM_ADMIN_KEY to read it")
        return MetricsSummary(**metrics.summary())

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                responses={200: {"content": {"text/plain": {}}}, **refused})
    async def prometheus(request: Request) -> Response:
        operator_only(request, "scrape GATEWAY_METRICS_PORT")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
