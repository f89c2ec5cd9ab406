"""Embeddings and content search through the embedding service.

Every embedding a caller asks for (REST, Ollama's /api/embed, grpc-web) is charged to its token
budget by ``charged_embed``; search queries are charged by the request limit alone (one query of
at most MAX_QUERY_CHARS).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.api import embedding_pb2
from upcoach_llm.common import tracing
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.embeddings.protocol import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.fields import EMBEDDINGS
from upcoach_llm.gateway.http.access import CLIENT_KEY, MODEL_KEY, REQUEST_ID_KEY
from upcoach_llm.gateway.http.jsonbody import dumps
from upcoach_llm.gateway.security.token_budget import UNCOUNTED, TokenSpend, estimate_text
from upcoach_llm.gateway.upstream import call_unary

_LIST = EmbeddingResponse.model_fields["object"].default
_EMBEDDING = EmbeddingData.model_fields["object"].default


async def charged_embed(deps: Dependencies, client: str, message: embedding_pb2.EmbedRequest,
                        call: Callable[[], Awaitable[embedding_pb2.EmbedResponse]],
                        ) -> tuple[embedding_pb2.EmbedResponse, TokenSpend]:
    """``call`` (the Embed of ``message``) within ``client``'s token budget (RATE_LIMIT_TPM):
    admitted while the texts' estimate fits, charged the reply's ``prompt_tokens`` (fewer where
    the model cut a text to its window)."""
    if not deps.tokens.enabled:
        return await call(), UNCOUNTED
    estimate = sum(estimate_text(len(t)) for t in message.texts)
    # A backend that reports no count (0) keeps the estimate: never a free request.
    return await deps.tokens.charge(client, estimate, call,
                                    lambda reply: reply.prompt_tokens or estimate)


async def rest_embed(deps: Dependencies, request: Request, model: str, texts: list[str],
                     ) -> tuple[embedding_pb2.EmbedResponse, dict[str, str]]:
    """The embedding service's reply for a REST request, and its token-budget headers."""
    state = request.scope["state"]
    message = embedding_pb2.EmbedRequest(request_id=state.get(REQUEST_ID_KEY, ""), model=model,
                                         texts=texts)
    reply, spend = await charged_embed(deps, state.get(CLIENT_KEY, ""), message, lambda: call_unary(
        deps.upstream.embedding.Embed(message, timeout=deps.settings.upstream_timeout_s),
        EMBEDDINGS))
    state[MODEL_KEY] = reply.model
    if tracing.ENABLED:
        tracing.set_attributes({
            tracing.GEN_AI_OPERATION_NAME: tracing.EMBEDDINGS,
            tracing.GEN_AI_REQUEST_MODEL: model or None,
            tracing.GEN_AI_RESPONSE_MODEL: reply.model,
            tracing.GEN_AI_USAGE_INPUT_TOKENS: reply.prompt_tokens})
    return reply, spend.headers()


async def embed(deps: Dependencies, request: Request, body: EmbeddingRequest) -> Response:
    reply, headers = await rest_embed(deps, request, body.model or "", body.texts())
    if body.dimensions is not None and body.dimensions != reply.dimensions:
        raise APIError(400, f"dimensions: {reply.model} produces {reply.dimensions} dimensions "
                            f"and cannot shorten them to {body.dimensions}", param="dimensions",
                       code="invalid_value")
    return Response(dumps(response_body(reply, body.encoding_format)),
                    media_type="application/json", headers=headers)


def response_body(reply: embedding_pb2.EmbedResponse, encoding_format: str) -> dict[str, Any]:
    """The EmbeddingResponse of protocol.py as a plain dict (orjson writes the float32 arrays
    without a pydantic round trip); tests/upcoach_llm/gateway/test_shapes.py holds the two
    together."""
    arrays = [np.array(e.values, dtype="<f4") for e in reply.embeddings]
    vectors: list = ([base64.b64encode(a.tobytes()).decode() for a in arrays]
                     if encoding_format == "base64" else arrays)
    return {"object": _LIST,
            "data": [{"object": _EMBEDDING, "index": i, "embedding": v}
                     for i, v in enumerate(vectors)],
            "model": reply.model,
            "usage": {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens}}


async def search(deps: Dependencies, request: Request, body: SearchRequest) -> SearchResponse:
    reply = await call_unary(deps.upstream.embedding.SearchContent(
        embedding_pb2.SearchContentRequest(
            request_id=request.scope["state"].get(REQUEST_ID_KEY, ""), query=body.query,
            top_k=body.top_k, category=body.category or ""),
        timeout=deps.settings.upstream_timeout_s), EMBEDDINGS)
    request.scope["state"][MODEL_KEY] = reply.model
    return SearchResponse(model=reply.model, results=[
        SearchResult(id=h.item.id, category=h.item.category, title=h.item.title,
                     text=h.item.text, tags=list(h.item.tags), score=round(h.score, 6))
        for h in reply.hits])
