"""GET /api/models/edge and POST /api/inference/decide."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.deps import Dependencies
from gateway.ondevice import serving
from gateway.ondevice.protocol import DecideRequest, DecideResponse, EdgeModelsResponse


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["on-device"])

    @router.get("/api/models/edge", response_model=EdgeModelsResponse,
                summary="Edge models that fit a device (platform ios|android, ram_gb)")
    async def edge_models(request: Request,
                          platform: str | None = Query(None, description="ios or android"),
                          ram_gb: str | None = Query(None, description="device RAM in GB"),
                          ) -> EdgeModelsResponse:
        # Declared for the OpenAPI document; validated together in serving (400 names each).
        return await serving.edge_models(deps, serving.edge_query(request.query_params))

    @router.post("/api/inference/decide", response_model=DecideResponse,
                 summary="On device or server? The hybrid decision for a mode and prompt")
    async def decide(body: DecideRequest) -> DecideResponse:
        return await serving.decide(deps, body)

    return router
