"""The semantic cache in the chat pipeline: on an exact-cache miss, a reply to a close paraphrase.

Only for the features of config/semantic_cache.yaml (daily affirmations, habit tips, quick
reminders: impersonal and asked for in endless paraphrases), and only for an impersonal request
(``SemanticPolicy.impersonal_text``: system messages then one short user message; a conversation
with earlier turns carries the user's own story). Neither a lookup nor a store happens for:

- a conversation the router's crisis check flags (``RouteResponse.safety_category``): it gets the
  crisis response, never a cached reply, and its reply is never stored;
- a request that asks for logprobs (a cached reply has none);
- ``Cache-Control: no-cache``, CACHE_MODE=off, CACHE_TTL=0 or SEMANTIC_CACHE_ENABLED=false.

The lookup asks the router's ``Route`` which model would serve (entries are scoped by API key,
served model, feature, embedding model, system prompt, stop sequences and response format), embeds
the request's subject (semantic_text) with the configured MiniLM model, and takes the closest
stored request at or above the feature's threshold that passes the negation and opposite-meaning
guard (store/semantic_guard.py). Unlike the exact cache it does not need temperature 0 or a seed:
for these features any good reply answers a paraphrase. Redis, the router or the embedding
service failing, or taking longer than PROBE_TIMEOUT_S (or the caller's own deadline), makes it a
miss, never an error. A reply is stored only when the model that served it is the one ``Route``
named (a fallback's reply does not belong to the scope of the model that failed).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import numpy as np

from upcoach_llm.api import embedding_pb2, router_pb2
from upcoach_llm.api.names import ROLE_VALUES
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.settings import CacheMode, GatewaySettings
from upcoach_llm.gateway.store.cache import CachedReply
from upcoach_llm.gateway.store.link import RedisDown, RedisLink
from upcoach_llm.gateway.store.semantic_index import (
    Match,
    SemanticIndex,
    scope_hash,
    vector_search_available,
)
from upcoach_llm.gateway.store.semantic_policy import SemanticPolicy, load_semantic_policy
from upcoach_llm.gateway.store.semantic_text import subject

if TYPE_CHECKING:
    from upcoach_llm.gateway.chat.pipeline import ChatTurn
    from upcoach_llm.gateway.upstream import Upstream

log = get_logger(__name__)
_SYSTEM = ROLE_VALUES["system"]
# The lookup's two calls (Route, Embed of one short message) take milliseconds; a busy or hung
# service makes the lookup a miss after this long instead of delaying the reply.
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Pending:
    """A lookup that missed: what to store once the reply has finished with "stop"."""

    bucket: str
    vector: np.ndarray
    text: str
    model: str  # the model the bucket is scoped to


@dataclass(frozen=True)
class Probe:
    """A lookup's outcome: a match to answer from, or where to store the coming reply."""

    match: Match | None
    pending: Pending | None


class SemanticCache:
    """Lookup before the router call and store after a finished reply."""

    def __init__(self, index: SemanticIndex, policy: SemanticPolicy) -> None:
        self.index = index
        self.policy = policy

    async def probe(self, upstream: Upstream, turn: ChatTurn, tenant: str | None,
                    request_id: str, deadline_s: float | None = None) -> Probe | None:
        """None when the semantic cache does not apply to this request, else its outcome;
        ``deadline_s``, the caller's own timeout, bounds the lookup further."""
        feature = self.policy.feature_of(turn.feature, turn.coaching_context)
        threshold = self.policy.threshold(feature)
        text = self.policy.impersonal_text(turn.messages) if threshold is not None else None
        if threshold is None or text is None or turn.sampling.logprobs:
            return None
        # One budget for both calls: the chat that follows gets what the lookup left.
        timeout = PROBE_TIMEOUT_S if deadline_s is None else min(PROBE_TIMEOUT_S, deadline_s)
        ends = time.monotonic() + timeout
        try:
            route = await upstream.router.Route(router_pb2.RouteRequest(
                model=turn.model, feature=turn.feature, coaching_context=turn.coaching_context,
                messages=turn.messages), timeout=timeout)
            left = ends - time.monotonic()
            if route.safety_category or left <= 0:
                return None
            embedded = await upstream.embedding.Embed(embedding_pb2.EmbedRequest(
                request_id=request_id, model=self.policy.embedding_model,
                texts=[subject(text)]), timeout=left)
        except grpc.aio.AioRpcError:
            return None  # the router call that follows reports a real failure
        if embedded.model != self.policy.embedding_model or not embedded.embeddings:
            return None
        vector = np.asarray(embedded.embeddings[0].values, dtype=np.float32)
        bucket = self.index.bucket(tenant, scope_hash({
            "model": route.route.model, "feature": feature, "embedding": embedded.model,
            "context": turn.coaching_context,
            "system": [m.content for m in turn.messages if m.role == _SYSTEM],
            "stop": list(turn.sampling.stop),
            "format": turn.sampling.response_format.SerializeToString(deterministic=True).hex(),
        }))
        try:
            match = await self.index.lookup(bucket, vector, text, threshold,
                                            max_completion_tokens=turn.max_tokens)
        except RedisDown:
            return None
        return Probe(match, None if match else Pending(bucket, vector, text, route.route.model))

    async def store(self, pending: Pending, reply: CachedReply) -> None:
        """Stores a reply that finished with "stop" (a cut-off reply answers no one) from the
        model the lookup was scoped to."""
        if reply.finish_reason != "stop" or not reply.content or reply.model != pending.model:
            return
        with contextlib.suppress(RedisDown):
            await self.index.store(pending.bucket, pending.vector, pending.text, reply)


def semantic_cache(settings: GatewaySettings, link: RedisLink) -> SemanticCache | None:
    """The semantic cache the settings ask for (config/semantic_cache.yaml loaded and checked
    here, at start-up), or None when it is off."""
    if (not settings.semantic_cache_enabled or settings.cache_mode is CacheMode.OFF
            or settings.cache_ttl == 0):
        return None
    index = SemanticIndex(link, settings.redis_prefix, ttl_s=settings.cache_ttl,
                          max_entries=settings.semantic_cache_max_entries)
    return SemanticCache(index, load_semantic_policy())


async def log_vector_search(link: RedisLink) -> None:
    """Logs, once at start-up, which vector search Redis has and what the cache uses."""
    native = await vector_search_available(link)
    log.info("semantic cache index", extra={"fields": {
        "redis_vector_search": native or "none",
        "index": "bounded per-scope lists scanned in numpy (store/semantic_index.py)"}})
