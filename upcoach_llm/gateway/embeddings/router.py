"""POST /v1/embeddings and POST /api/search (POST /api/embeddings: gateway/ollama/router.py)."""

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

    # /api/embeddings (this shape, or Ollama's legacy one) is served by gateway/ollama/router.py.
    router.add_api_route("/v1/embeddings", embeddings, methods=["POST"],
                         operation_id="v1_embeddings", response_model=EmbeddingResponse,
                         responses=errors(400, 404, 429, 503, 504),
                         summary="Embeddings (OpenAI shape), L2-normalised")

    @router.post("/api/search", response_model=SearchResponse,
                 responses=errors(400, 429, 503, 504),
                 summary="Search the coaching content by meaning, best first")
    async def search(request: Request, body: SearchRequest) -> SearchResponse:
        return await serving.search(deps, request, body)

    return router
