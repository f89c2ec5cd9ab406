"""GET /api/models, GET /v1/models and GET /{v1,api}/models/{model}."""

from __future__ import annotations

from fastapi import APIRouter, Path

from upcoach_llm.common.limits import MAX_NAME_CHARS
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.models import serving
from upcoach_llm.gateway.models.protocol import CatalogResponse, OpenAIModel, OpenAIModelList
from upcoach_llm.gateway.openapi import errors


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["models"])

    @router.get("/api/models", response_model=CatalogResponse, responses=errors(503, 504),
                summary="The server model catalog (the guide's shape)")
    async def api_models() -> CatalogResponse:
        return await serving.catalog(deps)

    @router.get("/v1/models", response_model=OpenAIModelList, responses=errors(503, 504),
                summary="Models (OpenAI shape)")
    async def v1_models() -> OpenAIModelList:
        return await serving.openai_models(deps)

    async def one_model(model: str = Path(max_length=MAX_NAME_CHARS, examples=["mistral"])
                        ) -> OpenAIModel:
        return await serving.openai_model(deps, model)

    for path, operation in (("/v1/models/{model:path}", "v1_model"),
                            ("/api/models/{model:path}", "api_model")):
        router.add_api_route(path, one_model, methods=["GET"], operation_id=operation,
                             response_model=OpenAIModel, responses=errors(404, 503, 504),
                             summary="One model (OpenAI shape); 404 names an unknown one")

    return router
