"""The semantic cache's store: a bounded index of request embeddings per scope, in Redis.

Why not Redis's own vector search: it needs RediSearch (``FT.CREATE ... VECTOR``, Redis Stack
or Redis 8) or vector sets (``VADD``/``VSIM``, Redis 8). The Redis this stack deploys
(``redis:7-alpine`` in docker-compose and Kubernetes, no modules) and is tested with (7.0) has
neither; ``vector_search_available`` checks at start-up and the gateway logs what it found. This
index is used either way: it needs nothing from Redis but lists, and a scope holds few entries
(the paraphrases of one feature's requests for one API key and model), so a linear scan in numpy
costs less than the round trip.

Layout, per scope (``owner`` = the API key's identity, or ``shared`` when auth is off; the hash
covers the served model, the feature, the embedding model, the system prompt, the stop sequences
and the response format):

- ``<prefix>scache:v1:<owner>:<scope>``: a list, newest first, capped at ``max_entries`` with
  LTRIM and expiring ``ttl_s`` after the last store. Each item packs the store time, the entry's
  id, the request's vector quantised to int8 and its text (the guard compares words).
- ``<prefix>scache:v1:<owner>:<scope>:r:<id>``: the reply (``CachedReply``), expiring after
  ``ttl_s``.

A store is one MULTI/EXEC (SET reply, LPUSH, LTRIM, EXPIRE), so concurrent replicas never leave
a list over its bound. A lookup reads the whole list (LRANGE, one round trip), skips entries older
than the TTL, ranks the rest by cosine similarity and, for the best one that passes the threshold
and the guard, GETs its reply (a second round trip, only on a hit). RedisDown propagates: the
caller treats it as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.exceptions import RedisError, ResponseError

from upcoach_llm.gateway.store.cache import CachedReply
from upcoach_llm.gateway.store.link import RedisLink
from upcoach_llm.gateway.store.semantic_guard import Polarity, agree

_HEADER = struct.Struct(">dH16s")  # stored at (unix seconds), dimensions, entry id
_MAX_CANDIDATES = 3  # replies fetched at most per lookup (an entry's reply may have expired)


def quantise(vector: np.ndarray) -> bytes:
    """A vector as int8 bytes scaled to its largest component (cosine survives within ~0.005)."""
    peak = float(np.max(np.abs(vector))) or 1.0
    return np.round(vector / peak * 127).astype(np.int8).tobytes()


def unit(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


@dataclass(frozen=True)
class Entry:
    """One stored request: when, its id, its (quantised) vector and its text."""

    stored_at: float
    entry_id: bytes
    vector: np.ndarray
    text: str

    def pack(self) -> bytes:
        raw = quantise(self.vector)
        return (_HEADER.pack(self.stored_at, len(raw), self.entry_id) + raw
                + self.text.encode())

    @classmethod
    def unpack(cls, raw: bytes) -> Entry:
        stored_at, dims, entry_id = _HEADER.unpack_from(raw)
        start = _HEADER.size
        vector = np.frombuffer(raw, dtype=np.int8, count=dims, offset=start)
        return cls(stored_at, entry_id, vector, raw[start + dims:].decode())


@dataclass(frozen=True)
class Match:
    """A lookup's answer: the stored reply and how close its request was."""

    reply: CachedReply
    similarity: float


def scope_hash(fields: dict[str, Any]) -> str:
    """A short hash of what an entry's reply depends on besides the request's words."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SemanticIndex:
    """Bounded per-scope lists of (vector, text, reply key) in Redis."""

    def __init__(self, link: RedisLink, prefix: str, *, ttl_s: int, max_entries: int) -> None:
        self._link = link
        self._prefix = prefix + "scache:v1:"
        self.ttl_s = ttl_s
        self.max_entries = max_entries

    def bucket(self, owner: str | None, scope: str) -> str:
        """The list's key for an owner (None: auth off, one shared space) and a scope hash."""
        return f"{self._prefix}{owner or 'shared'}:{scope}"

    async def lookup(self, bucket: str, vector: np.ndarray, text: str, threshold: float, *,
                     max_completion_tokens: int | None = None) -> Match | None:
        """The closest stored reply at or above ``threshold`` whose request agrees with ``text``
        (semantic_guard) and fits ``max_completion_tokens``; None when there is none."""
        client = self._link.client
        raw = await self._link.call("semantic lookup",
                                    lambda: client.lrange(bucket, 0, self.max_entries - 1))
        entries = [Entry.unpack(item) for item in raw]
        oldest = time.time() - self.ttl_s
        entries = [e for e in entries if e.stored_at >= oldest and len(e.vector) == len(vector)]
        if not entries:
            return None
        matrix = unit(np.stack([e.vector for e in entries]).astype(np.float32))
        scores = matrix @ unit(np.asarray(vector, dtype=np.float32))
        polarity = Polarity.of(text)
        tried = 0
        for row in np.argsort(-scores):
            score = float(scores[row])
            if score < threshold or tried >= _MAX_CANDIDATES:
                break
            entry = entries[row]
            if not agree(polarity, Polarity.of(entry.text)):
                continue
            tried += 1
            key = self._reply_key(bucket, entry.entry_id)
            found = await self._link.call("semantic get", lambda k=key: client.get(k))
            if not found:
                continue
            reply = CachedReply.loads(found)
            if (max_completion_tokens is not None
                    and reply.completion_tokens > max_completion_tokens):
                continue
            return Match(reply, score)
        return None

    async def store(self, bucket: str, vector: np.ndarray, text: str, reply: CachedReply) -> None:
        """Adds an entry, newest first, dropping the oldest beyond ``max_entries``."""
        entry = Entry(time.time(), os.urandom(16), np.asarray(vector, dtype=np.float32), text)
        reply_key = self._reply_key(bucket, entry.entry_id)

        async def write() -> None:
            async with self._link.client.pipeline(transaction=True) as pipe:
                pipe.set(reply_key, reply.dumps(), ex=self.ttl_s)
                pipe.lpush(bucket, entry.pack())
                pipe.ltrim(bucket, 0, self.max_entries - 1)
                pipe.expire(bucket, self.ttl_s)
                await pipe.execute()

        await self._link.call("semantic store", write)

    def _reply_key(self, bucket: str, entry_id: bytes) -> str:
        return f"{bucket}:r:{entry_id.hex()}"


async def vector_search_available(link: RedisLink) -> str | None:
    """Which native vector search this Redis offers ('FT.SEARCH' or 'VSIM'), None when neither
    or when Redis cannot be asked; called once at start-up to log it.

    Asked on the client directly: an unknown command is an answer here, not Redis being down."""
    probes = (("FT.SEARCH", ("FT._LIST",)), ("VSIM", ("VCARD", "upcoach:probe:none")))
    for name, command in probes:
        try:
            await link.client.execute_command(*command)
        except ResponseError:
            continue
        except (RedisError, OSError):
            return None
        return name
    return None
