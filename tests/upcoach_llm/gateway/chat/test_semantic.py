"""The semantic cache's decisions in the chat pipeline, with a scripted router and embedder
(the real MiniLM runs in tests/integration/test_semantic_cache.py) and the machine's Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio

from upcoach_llm.api import common_pb2, embedding_pb2, router_pb2
from upcoach_llm.api.names import ROLE_VALUES
from upcoach_llm.gateway.chat.pipeline import ChatTurn
from upcoach_llm.gateway.chat.semantic import PROBE_TIMEOUT_S, SemanticCache, semantic_cache
from upcoach_llm.gateway.settings import GatewaySettings
from upcoach_llm.gateway.store.cache import CachedReply
from upcoach_llm.gateway.store.link import RedisLink
from upcoach_llm.gateway.store.semantic_index import SemanticIndex
from upcoach_llm.gateway.store.semantic_policy import load_semantic_policy

REPLY = CachedReply("smollm2-135m-instruct", "Sip water every hour.", "stop", 10, 5)
WATER = np.eye(384, dtype=np.float32)[0]


class Failed(grpc.aio.AioRpcError):
    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                         "down")


@dataclass
class Script:
    """The router's and the embedder's answers, and the requests they saw."""

    safety: int = 0
    model: str = "smollm2-135m-instruct"
    embedding_model: str = "all-minilm-l6-v2"
    vector: np.ndarray = field(default_factory=lambda: WATER)
    route_fails: bool = False
    route_delay_s: float = 0.0
    routed: list[Any] = field(default_factory=list)
    embedded: list[Any] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)

    async def Route(self, request: router_pb2.RouteRequest, timeout: float):
        self.routed.append(request)
        self.timeouts.append(timeout)
        await asyncio.sleep(self.route_delay_s)
        if self.route_fails:
            raise Failed()
        return router_pb2.RouteResponse(route=router_pb2.RouteDecision(model=self.model),
                                        safety_category=self.safety)

    async def Embed(self, request: embedding_pb2.EmbedRequest, timeout: float):
        self.embedded.append(request)
        self.timeouts.append(timeout)
        return embedding_pb2.EmbedResponse(
            model=self.embedding_model, dimensions=384,
            embeddings=[embedding_pb2.Embedding(values=self.vector.tolist())])


@dataclass
class Upstream:
    script: Script

    @property
    def router(self) -> Script:
        return self.script

    @property
    def embedding(self) -> Script:
        return self.script


def turn(text: str, *, feature: str = "habit_tips", context: str = "",
         earlier: list[tuple[str, str]] = (), **sampling: Any) -> ChatTurn:
    messages = [common_pb2.ChatMessage(role=ROLE_VALUES[r], content=c)
                for r, c in [*earlier, ("user", text)]]
    return ChatTurn(model="", feature=feature, coaching_context=context, messages=messages,
                    sampling=common_pb2.SamplingParams(**sampling), canonical={})


@pytest_asyncio.fixture
async def cache() -> AsyncIterator[SemanticCache]:
    link = RedisLink("redis://127.0.0.1:6379/0", 0.5)
    prefix = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
    yield SemanticCache(SemanticIndex(link, prefix, ttl_s=60, max_entries=8),
                        load_semantic_policy())
    keys = [k async for k in link.client.scan_iter(prefix + "*")]
    if keys:
        await link.client.delete(*keys)
    await link.close()


async def stored(cache: SemanticCache, upstream: Upstream, text: str,
                 tenant: str | None = "key:a") -> None:
    probe = await cache.probe(upstream, turn(text), tenant, "r1")
    assert probe is not None and probe.match is None and probe.pending is not None
    await cache.store(probe.pending, REPLY)


async def test_a_paraphrase_hits_after_a_store(cache: SemanticCache) -> None:
    upstream = Upstream(Script())
    await stored(cache, upstream, "Give me a tip to drink more water")
    probe = await cache.probe(upstream, turn("Tip for drinking more water?"), "key:a", "r2")
    assert probe is not None and probe.match is not None
    assert probe.match.reply == REPLY and probe.match.similarity == pytest.approx(1.0, abs=1e-3)
    assert [r.texts for r in upstream.script.embedded] == [
        ["drink more water"], ["drinking more water"]]
    assert upstream.script.embedded[0].model == "all-minilm-l6-v2"


async def test_an_opposite_misses_even_at_the_same_vector(cache: SemanticCache) -> None:
    upstream = Upstream(Script())
    await stored(cache, upstream, "Give me a tip to drink more water")
    probe = await cache.probe(upstream, turn("Give me a tip to drink less water"), "key:a", "r")
    assert probe is not None and probe.match is None


async def test_tenants_models_and_system_prompts_are_apart(cache: SemanticCache) -> None:
    upstream = Upstream(Script())
    await stored(cache, upstream, "Give me a tip to drink more water")
    ask = turn("A tip to drink more water")
    assert (await cache.probe(upstream, ask, "key:b", "r")).match is None
    assert (await cache.probe(upstream, ask, None, "r")).match is None
    pirate = turn("A tip to drink more water", earlier=[("system", "Talk like a pirate.")])
    assert (await cache.probe(upstream, pirate, "key:a", "r")).match is None
    other_model = Upstream(Script(model="llama3.2:3b"))
    assert (await cache.probe(other_model, ask, "key:a", "r")).match is None
    assert (await cache.probe(upstream, ask, "key:a", "r")).match is not None


async def test_a_flagged_conversation_is_neither_looked_up_nor_stored(
        cache: SemanticCache) -> None:
    flagged = Upstream(Script(safety=1))
    assert await cache.probe(flagged, turn("Remind me to drink water",
                                           feature="quick_reminders"), "key:a", "r") is None
    assert flagged.script.embedded == []


@pytest.mark.parametrize("ask", [
    turn("Give me a tip to drink more water", feature="mood_analysis"),
    turn("Give me a tip to drink more water", feature="", context="general"),
    turn("Give me a tip to drink more water", earlier=[("user", "I hate water"),
                                                       ("assistant", "Why?")]),
    turn("Give me a tip to drink more water", logprobs=True),
])
async def test_personal_or_uncacheable_requests_skip_it(cache: SemanticCache,
                                                        ask: ChatTurn) -> None:
    upstream = Upstream(Script())
    assert await cache.probe(upstream, ask, "key:a", "r") is None
    assert upstream.script.routed == []


async def test_a_coaching_context_makes_a_request_cacheable(cache: SemanticCache) -> None:
    upstream = Upstream(Script())
    probe = await cache.probe(upstream, turn("An affirmation about courage", feature="",
                                             context="affirmations"), "key:a", "r")
    assert probe is not None and probe.pending is not None


async def test_failures_are_misses(cache: SemanticCache) -> None:
    assert await cache.probe(Upstream(Script(route_fails=True)), turn("Tip: water"),
                             "key:a", "r") is None
    other_embedder = Upstream(Script(embedding_model="nomic-embed-text"))
    assert await cache.probe(other_embedder, turn("Tip: water"), "key:a", "r") is None
    down = SemanticCache(SemanticIndex(RedisLink("redis://127.0.0.1:1/0", 0.2), "x:",
                                       ttl_s=60, max_entries=8), load_semantic_policy())
    assert await down.probe(Upstream(Script()), turn("Tip: water"), "key:a", "r") is None


async def test_only_a_finished_reply_is_stored(cache: SemanticCache) -> None:
    upstream = Upstream(Script())
    probe = await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r")
    await cache.store(probe.pending, CachedReply(REPLY.model, "Sip water", "length", 3, 2))
    assert (await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r")).match is None
    await cache.store(probe.pending, CachedReply(REPLY.model, "Sip water", "stop", 3, 2))
    assert (await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r")).match is not None


async def test_a_fallback_models_reply_is_not_stored_in_the_routed_models_scope(
        cache: SemanticCache) -> None:
    upstream = Upstream(Script())  # Route names smollm2; a fallback then served llama3.2
    probe = await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r")
    await cache.store(probe.pending, CachedReply("llama3.2:3b", "Sip water", "stop", 3, 2))
    assert (await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r")).match is None


async def test_the_lookup_is_bounded_by_its_own_timeout_and_the_callers(
        cache: SemanticCache) -> None:
    upstream = Upstream(Script())
    await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r")
    await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r", deadline_s=0.5)
    await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r", deadline_s=30)
    expected = [PROBE_TIMEOUT_S] * 2 + [0.5] * 2 + [PROBE_TIMEOUT_S] * 2
    assert upstream.script.timeouts == pytest.approx(expected, abs=0.05)
    seen = upstream.script.timeouts
    assert all(embed <= route for route, embed in zip(seen[::2], seen[1::2], strict=True))


async def test_the_embedding_gets_what_the_route_call_left(cache: SemanticCache) -> None:
    """One budget for the whole lookup, so the chat after it keeps the rest of the deadline."""
    upstream = Upstream(Script(route_delay_s=0.3))
    await cache.probe(upstream, turn("Tip to drink water"), "key:a", "r", deadline_s=0.5)
    route, embed = upstream.script.timeouts
    assert route == 0.5 and embed <= 0.2 + 0.01
    slow = Upstream(Script(route_delay_s=0.6))
    assert await cache.probe(slow, turn("Tip to drink water"), "key:a", "r",
                             deadline_s=0.5) is None
    assert slow.script.embedded == []


@pytest.mark.parametrize(("env", "on"), [
    ({}, True), ({"SEMANTIC_CACHE_ENABLED": "false"}, False), ({"CACHE_MODE": "off"}, False),
    ({"CACHE_TTL": "0"}, False)])
def test_settings_turn_it_off(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                              on: bool) -> None:
    for name in ("SEMANTIC_CACHE_ENABLED", "CACHE_MODE", "CACHE_TTL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cache = semantic_cache(GatewaySettings.from_env(), RedisLink("redis://127.0.0.1:6379/0", 1))
    assert (cache is not None) is on
    if cache is not None:
        assert cache.index.max_entries == 128 and cache.index.ttl_s == 300
