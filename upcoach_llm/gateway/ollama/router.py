"""Ollama's API: POST /api/chat, /api/generate, /api/show, /api/embed, /api/embeddings and
GET /api/tags, /api/ps, /api/version, behind the same gate (API key, rate limits) as every
/api path.

Errors on these paths are ``{"error": "<message naming the field>"}`` with the HTTP status
(paths.py; errors.py renders them), validation errors included (400, as everywhere).

Bodies are read as JSON whatever their Content-Type, as Ollama's server reads them (gin's
``ShouldBindJSON``): its documentation's examples are ``curl .../api/chat -d '{...}'``, which
sends ``application/x-www-form-urlencoded``, and FastAPI parses only a JSON Content-Type.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.embeddings.protocol import EmbeddingRequest, EmbeddingResponse
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.http.jsonbody import dumps
from upcoach_llm.gateway.ollama import embeddings, paths
from upcoach_llm.gateway.ollama.catalog import Catalog
from upcoach_llm.gateway.ollama.protocol import (
    OllamaChatRequest,
    OllamaChatResponse,
    OllamaEmbeddingsRequest,
    OllamaEmbeddingsResponse,
    OllamaEmbedRequest,
    OllamaEmbedResponse,
    OllamaGenerateRequest,
    OllamaGenerateResponse,
    OllamaPsResponse,
    OllamaShowRequest,
    OllamaShowResponse,
    OllamaTagsResponse,
    OllamaVersionResponse,
)
from upcoach_llm.gateway.ollama.render import NDJSON
from upcoach_llm.gateway.ollama.serving import OllamaChat
from upcoach_llm.gateway.openapi import COMPONENTS, OllamaErrorResponse, errors

_JSON = (b"content-type", b"application/json")


class AnyContentTypeRoute(APIRoute):
    """A route that parses its body as JSON whatever Content-Type the request names."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def as_json(request: Request) -> Response:
            headers = [h for h in request.scope["headers"] if h[0] != b"content-type"]
            scope = {**request.scope, "headers": [*headers, _JSON]}
            return await handler(Request(scope, request.receive))

        return as_json


def one_of(*models: type[BaseModel]) -> dict[str, Any]:
    """A schema that is one of the models (their schemas ride along as ``$defs``)."""
    _, defs = models_json_schema([(model, "serialization") for model in models],
                                 ref_template=COMPONENTS)
    refs = [{"$ref": COMPONENTS.format(model=model.__name__)} for model in models]
    return {"anyOf": refs, "$defs": defs["$defs"]}


def stream_doc(line: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {200: {
        "description": f"One {line.__name__}, or (the default, unless stream is false) an "
                       "NDJSON stream of them, the last with done: true and the metrics; an "
                       "error after the stream started is one {\"error\": ...} line",
        "content": {NDJSON: {"schema": one_of(line, OllamaErrorResponse)}}},
        **errors(400, 404, 429, 502, 503, 504)}


def _json(body: dict[str, Any]) -> Response:
    return Response(dumps(body), media_type="application/json")


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["ollama"], route_class=AnyContentTypeRoute)
    chat = OllamaChat(deps)
    catalog = Catalog(deps)

    @router.post(paths.CHAT, response_model=OllamaChatResponse,
                 responses=stream_doc(OllamaChatResponse),
                 summary="Chat (Ollama shape), NDJSON-streamed unless stream is false")
    async def ollama_chat(request: Request, body: OllamaChatRequest) -> Response:
        return await chat.chat(request, body)

    @router.post(paths.GENERATE, response_model=OllamaGenerateResponse,
                 responses=stream_doc(OllamaGenerateResponse),
                 summary="Generate from a prompt (Ollama shape), NDJSON-streamed unless stream "
                         "is false")
    async def ollama_generate(request: Request, body: OllamaGenerateRequest) -> Response:
        return await chat.generate(request, body)

    @router.get(paths.TAGS, response_model=OllamaTagsResponse, responses=errors(503, 504),
                summary="The model catalog (Ollama shape)")
    async def ollama_tags() -> Response:
        return _json(await catalog.tags())

    @router.post(paths.SHOW, response_model=OllamaShowResponse,
                 responses=errors(404, 503, 504),
                 summary="One model of the catalog (Ollama shape); 404 names an unknown one")
    async def ollama_show(body: OllamaShowRequest) -> Response:
        name = body.model_name()
        if not name:
            raise APIError(400, "model: field required", param="model", code="invalid_value")
        return _json(await catalog.show(name))

    @router.get(paths.PS, response_model=OllamaPsResponse, responses=errors(503, 504),
                summary="The models loaded in this stack's embedded engines (Ollama shape)")
    async def ollama_ps() -> Response:
        return _json(await catalog.ps())

    @router.get(paths.VERSION, response_model=OllamaVersionResponse,
                summary="The Ollama API release these paths follow (Ollama shape)")
    async def ollama_version() -> Response:
        return _json({"version": paths.API_VERSION})

    @router.post(paths.EMBED, response_model=OllamaEmbedResponse,
                 responses=errors(400, 404, 429, 503, 504),
                 summary="Embeddings (Ollama shape), L2-normalised")
    async def ollama_embed(request: Request, body: OllamaEmbedRequest) -> Response:
        return await embeddings.embed(deps, request, body)

    @router.post(paths.EMBEDDINGS, operation_id="api_embeddings",
                 responses={200: {"description": "OpenAI's embeddings list for an input body, "
                                                 "Ollama's {\"embedding\"} for a prompt body",
                                  "content": {"application/json": {"schema": one_of(
                                      EmbeddingResponse, OllamaEmbeddingsResponse)}}},
                            **errors(400, 404, 429, 503, 504)},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/json": {"schema": one_of(EmbeddingRequest,
                                                           OllamaEmbeddingsRequest)}}}},
                 summary="Embeddings: OpenAI's shape for a body with input, Ollama's legacy "
                         "shape ({\"embedding\"}, errors as {\"error\"}) for a body with prompt")
    async def shared_embeddings(request: Request) -> Response:
        return await embeddings.shared(deps, request)

    return router
