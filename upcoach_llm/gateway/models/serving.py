"""Reads the catalog from the model-registry service."""

from __future__ import annotations

from upcoach_llm.api import model_registry_pb2
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.fields import MODELS
from upcoach_llm.gateway.models.protocol import (
    CatalogModel,
    CatalogResponse,
    OpenAIModel,
    OpenAIModelList,
)
from upcoach_llm.gateway.upstream import call_unary


async def catalog(deps: Dependencies) -> CatalogResponse:
    reply = await call_unary(deps.upstream.registry.ListModels(
        model_registry_pb2.ListModelsRequest(), timeout=deps.settings.health_timeout_s * 5))
    return CatalogResponse(
        models=[CatalogModel(id=m.name, name=m.name, size=m.size_bytes, available=m.served)
                for m in reply.models],
        data=[OpenAIModel(id=m.name) for m in reply.models])


async def openai_models(deps: Dependencies) -> OpenAIModelList:
    listing = await catalog(deps)
    return OpenAIModelList(data=listing.data)


async def openai_model(deps: Dependencies, name: str) -> OpenAIModel:
    reply = await call_unary(
        deps.upstream.registry.GetModel(model_registry_pb2.GetModelRequest(name=name),
                                        timeout=deps.settings.health_timeout_s * 5),
        MODELS)
    return OpenAIModel(id=reply.model.name)
