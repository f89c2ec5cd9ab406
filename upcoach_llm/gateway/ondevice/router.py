"""GET /api/models/edge and POST /api/inference/decide."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request

from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.http.language import HEADER as ACCEPT_LANGUAGE
from upcoach_llm.gateway.http.language import preferred_locales
from upcoach_llm.gateway.ondevice import serving
from upcoach_llm.gateway.ondevice.protocol import (
    DecideRequest,
    DecideResponse,
    EdgeModelsResponse,
    EdgeQuery,
)
from upcoach_llm.gateway.openapi import errors


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["on-device"])

    @router.get("/api/models/edge", response_model=EdgeModelsResponse,
                responses=errors(400, 503, 504),
                summary="Edge models that fit a device (platform ios|android, ram_gb)")
    async def edge_models(query: Annotated[EdgeQuery, Query()]) -> EdgeModelsResponse:
        return await serving.edge_models(deps, query)

    @router.post("/api/inference/decide", response_model=DecideResponse,
                 responses=errors(400, 503, 504),
                 summary="On device or server? The hybrid decision for a mode and prompt")
    async def decide(request: Request, body: DecideRequest) -> DecideResponse:
        locales = preferred_locales(request.headers.get(ACCEPT_LANGUAGE))
        return await serving.decide(deps, body, locales)

    return router
