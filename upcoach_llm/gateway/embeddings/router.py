"""POST /v1/embeddings, POST /api/embeddings and POST /api/search."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.embeddings import serving
from upcoach_llm.gateway.embeddings.protocol import (
    EmbeddingRequest,
    EmbeddingResponse,
    SearchRequest,
    SearchResponse,
)
from upcoach_llm.gateway.openapi import errors


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["embeddings"])

    async def embeddings(request: Request, body: EmbeddingRequest) -> Response:
        return await serving.embed(deps, request, body)

    for path, operation in (("/v1/embeddings", "v1_embeddings"),
                            ("/api/embeddings", "api_embeddings")):
        router.add_api_route(path, embeddings, methods=["POST"], operation_id=operation,
                             response_model=EmbeddingResponse,
                             responses=errors(400, 404, 429, 503, 504),
                             summary="Embeddings (OpenAI shape), L2-normalised")

    @router.post("/api/search", response_model=SearchResponse,
                 responses=errors(400, 429, 503, 504),
                 summary="Search the coaching content by meaning, best first")
    async def search(request: Request, body: SearchRequest) -> SearchResponse:
        return await serving.search(deps, request, body)

    return router
