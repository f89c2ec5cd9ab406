"""The semantic cache's Redis index on the machine's Redis, under a unique key prefix."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from upcoach_llm.gateway.store.cache import CachedReply
from upcoach_llm.gateway.store.link import RedisDown, RedisLink
from upcoach_llm.gateway.store.semantic_index import (
    Entry,
    SemanticIndex,
    quantise,
    scope_hash,
    unit,
    vector_search_available,
)

REPLY = CachedReply("smollm2-135m-instruct", "I am calm.", "stop", 12, 4)
rng = np.random.default_rng(7)


def vector(seed: np.ndarray | None = None, noise: float = 0.0) -> np.ndarray:
    base = seed if seed is not None else rng.normal(size=384)
    return unit(base + noise * rng.normal(size=384)).astype(np.float32)


@pytest_asyncio.fixture
async def link() -> AsyncIterator[RedisLink]:
    link = RedisLink("redis://127.0.0.1:6379/0", 0.5)
    yield link
    await link.close()


@pytest_asyncio.fixture
async def index(link: RedisLink) -> AsyncIterator[SemanticIndex]:
    prefix = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
    yield SemanticIndex(link, prefix, ttl_s=60, max_entries=5)
    keys = [k async for k in link.client.scan_iter(prefix + "*")]
    if keys:
        await link.client.delete(*keys)


async def test_quantised_vectors_keep_their_cosine() -> None:
    for _ in range(20):
        a = vector()
        b = vector(a, noise=0.8)
        exact = float(a @ b)
        stored = Entry.unpack(Entry(1.0, b"x" * 16, a, "text").pack())
        assert abs(float(unit(stored.vector.astype(np.float32)) @ b) - exact) < 0.01
    assert len(quantise(a)) == 384


async def test_a_close_agreeing_request_hits(index: SemanticIndex) -> None:
    stored = vector()
    bucket = index.bucket("key:a", scope_hash({"model": "m"}))
    await index.store(bucket, stored, "an affirmation about feeling calm", REPLY)
    match = await index.lookup(bucket, vector(stored, 0.02), "affirmation for feeling calm", 0.9)
    assert match is not None and match.reply == REPLY and 0.9 <= match.similarity <= 1.0
    assert await index.lookup(bucket, vector(), "affirmation for feeling calm", 0.9) is None


async def test_the_guard_refuses_an_opposite(index: SemanticIndex) -> None:
    stored = vector()
    bucket = index.bucket("key:a", "scope")
    await index.store(bucket, stored, "an affirmation about feeling calm", REPLY)
    assert await index.lookup(bucket, stored, "an affirmation about not feeling calm", 0.5) is None


async def test_owners_and_scopes_are_apart(index: SemanticIndex) -> None:
    stored = vector()
    await index.store(index.bucket("key:a", "s1"), stored, "drink water", REPLY)
    assert await index.lookup(index.bucket("key:b", "s1"), stored, "drink water", 0.5) is None
    assert await index.lookup(index.bucket("key:a", "s2"), stored, "drink water", 0.5) is None
    assert await index.lookup(index.bucket(None, "s1"), stored, "drink water", 0.5) is None
    assert await index.lookup(index.bucket("key:a", "s1"), stored, "drink water", 0.5)


async def test_the_index_keeps_only_the_newest_entries(index: SemanticIndex,
                                                       link: RedisLink) -> None:
    bucket = index.bucket("key:a", "bounded")
    first = vector()
    await index.store(bucket, first, "the first", REPLY)
    for n in range(6):
        await index.store(bucket, vector(), f"entry {n}", REPLY)
    assert await link.client.llen(bucket) == 5
    assert await index.lookup(bucket, first, "the first", 0.99) is None
    assert 0 < await link.client.ttl(bucket) <= 60


async def test_expired_entries_and_long_replies_are_skipped(index: SemanticIndex,
                                                            link: RedisLink) -> None:
    bucket = index.bucket("key:a", "old")
    stored = vector()
    old = Entry(time.time() - 120, b"o" * 16, stored, "stale")
    await link.client.lpush(bucket, old.pack())
    await link.client.set(f"{bucket}:r:{old.entry_id.hex()}", REPLY.dumps())
    assert await index.lookup(bucket, stored, "stale", 0.5) is None
    await index.store(bucket, stored, "fresh", REPLY)
    assert await index.lookup(bucket, stored, "fresh", 0.5, max_completion_tokens=3) is None
    assert await index.lookup(bucket, stored, "fresh", 0.5, max_completion_tokens=4)


async def test_redis_down_is_raised_for_the_caller() -> None:
    down = RedisLink("redis://127.0.0.1:1/0", 0.2)
    index = SemanticIndex(down, "upcoach:test:down:", ttl_s=60, max_entries=5)
    with pytest.raises(RedisDown):
        await index.lookup(index.bucket(None, "s"), vector(), "x", 0.5)
    with pytest.raises(RedisDown):
        await index.store(index.bucket(None, "s"), vector(), "x", REPLY)
    assert await vector_search_available(down) is None
    await down.close()


async def test_this_redis_has_no_vector_search(link: RedisLink) -> None:
    """The machine's Redis 7.0 has neither RediSearch nor vector sets (hence the own index)."""
    info = await link.client.info("server")
    native = await vector_search_available(link)
    if str(info["redis_version"]).startswith("7.0"):
        assert native is None
    assert native in (None, "FT.SEARCH", "VSIM")
