"""/api/embed and the shared /api/embeddings, through the embedding service.

``/api/embed`` answers Ollama's ``{"model", "embeddings": [[...]], ...}``; a smaller
``dimensions`` keeps each vector's first values, normalised again, as Ollama does.
``/api/embeddings`` was already OpenAI's embeddings under /api; a body with ``prompt`` (and no
``input``) is Ollama's legacy request and gets ``{"embedding": [...]}``, with its errors in
Ollama's shape; any other body is the OpenAI request, answered as /v1/embeddings answers it. The
model in a reply is the model actually served (``nomic-embed-text`` may be answered by
``all-minilm-l6-v2``).
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.api import embedding_pb2
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.embeddings import serving as openai_embeddings
from upcoach_llm.gateway.embeddings.protocol import EmbeddingRequest
from upcoach_llm.gateway.errors import APIError, from_validation
from upcoach_llm.gateway.http.jsonbody import dumps
from upcoach_llm.gateway.ollama.protocol import OllamaEmbeddingsRequest, OllamaEmbedRequest

M = TypeVar("M", bound=BaseModel)


def _vectors(reply: embedding_pb2.EmbedResponse) -> list[np.ndarray]:
    return [np.array(e.values, dtype="<f4") for e in reply.embeddings]


async def embed(deps: Dependencies, request: Request, body: OllamaEmbedRequest) -> Response:
    started = time.perf_counter()
    reply, headers = await openai_embeddings.rest_embed(deps, request, body.model, body.texts())
    vectors = _vectors(reply)
    if body.dimensions is not None and body.dimensions > reply.dimensions:
        raise APIError(400, f"dimensions: {reply.model} produces {reply.dimensions} dimensions, "
                            f"fewer than {body.dimensions}", param="dimensions",
                       code="invalid_value")
    if body.dimensions is not None and body.dimensions < reply.dimensions:
        vectors = [_shortened(vector, body.dimensions) for vector in vectors]
    return Response(dumps({"model": reply.model, "embeddings": vectors,
                           "total_duration": int((time.perf_counter() - started) * 1e9),
                           "load_duration": 0, "prompt_eval_count": reply.prompt_tokens}),
                    media_type="application/json", headers=headers)


def _shortened(vector: np.ndarray, dimensions: int) -> np.ndarray:
    """The vector's first ``dimensions`` values, L2-normalised again, as Ollama shortens one."""
    head = vector[:dimensions]
    norm = float(np.linalg.norm(head))
    return head / norm if norm else head


async def shared(deps: Dependencies, request: Request) -> Response:
    """POST /api/embeddings: Ollama's legacy body (``prompt``) or OpenAI's (``input``)."""
    payload = await _json(request)
    if isinstance(payload, dict) and "prompt" in payload and "input" not in payload:
        try:
            body = _validated(OllamaEmbeddingsRequest, payload)
            reply, headers = await openai_embeddings.rest_embed(deps, request, body.model,
                                                                [body.prompt])
        except APIError as error:
            return Response(dumps({"error": error.message}), status_code=error.status,
                            media_type="application/json", headers=error.headers)
        return Response(dumps({"embedding": _vectors(reply)[0]}),
                        media_type="application/json", headers=headers)
    return await openai_embeddings.embed(deps, request, _validated(EmbeddingRequest, payload,
                                                                   raw=True))


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                       "msg": "JSON decode error",
                                       "ctx": {"error": exc.msg}}]) from None


def _validated(model: type[M], payload: Any, *, raw: bool = False) -> M:
    """The body as the model; a RequestValidationError (raw) or its APIError when invalid."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problem = RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        if raw:
            raise problem from None
        raise from_validation(problem) from None
