"""The EmbeddingService RPCs: Embed, IndexContent and SearchContent.

Handlers validate, call the engine and translate to protobuf; they raise upcoach_llm.common.errors
types and the error interceptor turns those into status codes. The content index always uses one
model (``index_model``), so stored and query vectors are comparable. Every engine call counts its
texts by model (requests, index builds and searches alike).
"""

from __future__ import annotations

import grpc
from prometheus_client import Counter, Histogram

from upcoach_llm.api import embedding_pb2, embedding_pb2_grpc
from upcoach_llm.common import tracing
from upcoach_llm.common.errors import ServiceError
from upcoach_llm.common.fields import check_name, request_id_of
from upcoach_llm.common.logging import get_logger
from upcoach_llm.embedding.content import ContentItem
from upcoach_llm.embedding.index import ContentIndex
from upcoach_llm.embedding.models import ModelResolver, ServedModel
from upcoach_llm.embedding.validation import check_items, check_query, check_texts, check_top_k
from upcoach_llm.engines.base import EmbeddingResult

log = get_logger(__name__)
# A backend that is down, or that lacks the model, lets the next model of the chain stand in.
STAND_IN_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION}

TEXTS = Counter("upcoach_embedding_texts", "Texts embedded, by model", ["model"])
BATCH_SIZE = Histogram("upcoach_embedding_batch_size", "Texts per engine call, by model",
                       ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048))
SEARCHES = Counter("upcoach_embedding_search_queries",
                   "Content searches answered, by the index's model", ["model"])


def item_to_proto(item: ContentItem) -> embedding_pb2.ContentItem:
    return embedding_pb2.ContentItem(id=item.id, category=item.category, title=item.title,
                                     text=item.text, tags=list(item.tags))


async def embed_with(served: ServedModel, texts: list[str]) -> EmbeddingResult:
    """Embeds texts with a served model under the engine's own name for it."""
    result = await served.engine.embed(served.engine_model, texts)
    TEXTS.labels(served.name).inc(len(texts))
    BATCH_SIZE.labels(served.name).observe(len(texts))
    return result


async def embed_first_available(candidates: list[ServedModel], texts: list[str],
                                ) -> tuple[ServedModel, EmbeddingResult]:
    """Embeds with the first candidate whose backend answers; the last failure is raised."""
    for position, served in enumerate(candidates):
        try:
            return served, await embed_with(served, texts)
        except ServiceError as exc:
            if exc.code not in STAND_IN_CODES or position == len(candidates) - 1:
                raise
            log.warning("embedding model unavailable, using the next of its chain", extra={
                "fields": {"model": served.name, "backend": served.backend,
                           "error": exc.message, "next": candidates[position + 1].name}})
    raise AssertionError("candidates is never empty")  # ModelResolver guarantees one


class EmbeddingServicer(embedding_pb2_grpc.EmbeddingServiceServicer):
    """Implements upcoach.llm.v1.EmbeddingService."""

    def __init__(self, resolver: ModelResolver, index: ContentIndex) -> None:
        self._resolver = resolver
        self._index = index
        self.index_model: ServedModel | None = None  # set by the service once the corpus is in

    async def Embed(self, request: embedding_pb2.EmbedRequest,
                    context: grpc.aio.ServicerContext) -> embedding_pb2.EmbedResponse:
        request_id = request_id_of(request.request_id)
        texts = check_texts(request.texts)
        check_name("model", request.model)
        served, result = await embed_first_available(
            self._resolver.candidates(request.model), texts)
        log.debug("embedded", extra={"fields": {
            "request_id": request_id, "requested": request.model, "model": served.name,
            "texts": len(texts), "prompt_tokens": result.prompt_tokens}})
        if tracing.ENABLED:
            tracing.set_attributes({
                tracing.GEN_AI_OPERATION_NAME: tracing.EMBEDDINGS,
                tracing.GEN_AI_REQUEST_MODEL: request.model or None,
                tracing.GEN_AI_RESPONSE_MODEL: served.name,
                "upcoach.backend": served.backend,
                tracing.GEN_AI_USAGE_INPUT_TOKENS: result.prompt_tokens,
                "gen_ai.embeddings.dimension.count": result.dimensions})
        return embedding_pb2.EmbedResponse(
            model=served.name, prompt_tokens=result.prompt_tokens, dimensions=result.dimensions,
            embeddings=[embedding_pb2.Embedding(values=v) for v in result.vectors])

    async def IndexContent(self, request: embedding_pb2.IndexContentRequest,
                           context: grpc.aio.ServicerContext
                           ) -> embedding_pb2.IndexContentResponse:
        items = check_items(request.items)
        result = await embed_with(self.index_model, [item.text for item in items])
        indexed = self._index.upsert(items, result.vectors)
        log.info("content indexed", extra={"fields": {
            "indexed": indexed, "total": len(self._index), "model": self.index_model.name}})
        return embedding_pb2.IndexContentResponse(indexed=indexed, total=len(self._index))

    async def SearchContent(self, request: embedding_pb2.SearchContentRequest,
                            context: grpc.aio.ServicerContext
                            ) -> embedding_pb2.SearchContentResponse:
        request_id = request_id_of(request.request_id)
        query = check_query(request.query)
        check_name("category", request.category)
        top_k = check_top_k(request.top_k)
        result = await embed_with(self.index_model, [query])
        hits = self._index.search(result.vectors[0], top_k, request.category)
        SEARCHES.labels(self.index_model.name).inc()
        log.debug("searched", extra={"fields": {
            "request_id": request_id, "category": request.category, "hits": len(hits),
            "best": hits[0].item.id if hits else None}})
        return embedding_pb2.SearchContentResponse(
            model=self.index_model.name,
            hits=[embedding_pb2.SearchHit(item=item_to_proto(h.item), score=h.score)
                  for h in hits])
