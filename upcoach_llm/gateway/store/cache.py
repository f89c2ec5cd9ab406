"""The chat response cache: a reply stored under a hash of the canonical request.

The canonical request is the model, coaching context, feature, messages and sampling parameters
serialised with sorted keys, so neither JSON key order nor whitespace changes the key. By default
only reproducible requests (temperature 0 or a seed) are stored (CACHE_MODE).

Entries belong to the caller's key identity (``key:<hash>``): a reply is never served to another
API key. A single-turn request (system messages, then one user message) whose ``feature`` is in
CACHE_SHARED_FEATURES, whose answers are not personal, and every request while auth is off, use
the one shared space. A conversation with earlier turns stays its key's whatever the feature it
claims: the feature is the caller's word, and another key could otherwise learn from an
``X-Cache: HIT`` that someone had that exact conversation.

The router's crisis check runs before a model is called, the exact cache before the router: a hit
is a reply a model gave to this same conversation, which the check therefore let through. Keys
also carry ``safety``, the fingerprint of config/safety.yaml (gateway and router read the same
config folder: the image's, or the one ConfigMap in Kubernetes), so after an edit to the check's
patterns or exemplars no reply stored under the old file answers: each conversation goes through
the new check first. The fingerprint is the gateway's copy: while a rollout of the edit is under
way a router still on the old file may store under the new one, and SAFETY_CHECK (the router's)
is not in it; both answer for at most CACHE_TTL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import ROLE_VALUES
from upcoach_llm.gateway.settings import CacheMode
from upcoach_llm.gateway.store.link import RedisLink

_USER = ROLE_VALUES["user"]
_SYSTEM = ROLE_VALUES["system"]


@dataclass(frozen=True)
class CachedReply:
    """Enough of a finished reply to answer again, whole or as an SSE replay."""

    model: str
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> CachedReply:
        return cls(**json.loads(raw))


def canonical_hash(request: dict[str, Any]) -> str:
    """sha256 of the request's sorted-key, whitespace-free JSON."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def single_turn(messages: Sequence[common_pb2.ChatMessage]) -> bool:
    """System messages, then one user message: no earlier turn carries the user's story."""
    return (bool(messages) and messages[-1].role == _USER
            and all(m.role == _SYSTEM for m in messages[:-1]))


class ResponseCache:
    """get/put of CachedReply in Redis with a TTL; RedisDown propagates to the caller."""

    def __init__(self, link: RedisLink, ttl_s: int, mode: CacheMode, prefix: str, *,
                 shared_features: frozenset[str], safety: str) -> None:
        self._link = link
        self._prefix = f"{prefix}cache:v2:{safety}:"
        self.ttl_s = ttl_s
        self.mode = mode
        self.shared_features = shared_features

    def applies(self, *, temperature: float | None, seed: int | None) -> bool:
        """Whether a request with these sampling values may be answered from the cache."""
        if self.mode is CacheMode.OFF or self.ttl_s == 0:
            return False
        if self.mode is CacheMode.ALL:
            return True
        return temperature == 0 or seed is not None

    def key(self, request: dict[str, Any], *, tenant: str | None, feature: str | None,
            messages: Sequence[common_pb2.ChatMessage]) -> str:
        """The Redis key of a canonical request of ``messages`` asked by ``tenant`` (None: auth
        is off)."""
        shared = tenant is None or (feature in self.shared_features and single_turn(messages))
        owner = "shared" if shared else tenant
        return f"{self._prefix}{owner}:{canonical_hash(request)}"

    async def get(self, key: str) -> CachedReply | None:
        raw = await self._link.call("cache get", lambda: self._link.client.get(key))
        return CachedReply.loads(raw) if raw else None

    async def put(self, key: str, reply: CachedReply) -> None:
        await self._link.call(
            "cache set", lambda: self._link.client.set(key, reply.dumps(), ex=self.ttl_s))
