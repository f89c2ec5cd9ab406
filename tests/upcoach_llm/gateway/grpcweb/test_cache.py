"""grpc-web and Connect chats share the REST chats' cache (against the upstream double): hits in
the router's own messages with ``x-cache`` metadata a browser may read, entries kept per API key,
``cache-control: no-cache`` honoured. The real stack's semantic cache, crisis replies and token
budget over grpc-web: tests/integration/test_grpcweb_cache.py."""

from __future__ import annotations

import asyncio

import pytest
from connectrpc.client import ResponseMetadata
from connectrpc.protocol import ProtocolType

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.api import common_pb2, router_connect, router_pb2
from upcoach_llm.gateway.grpcweb import convert
from upcoach_llm.gateway.security.auth import key_identity

KEYS = {"LLM_API_KEY": "tenant-a,tenant-b", "RATE_LIMIT_RPM": "0"}
A = {"authorization": "Bearer tenant-a"}
B = {"x-api-key": "tenant-b"}
GREEDY = router_pb2.ChatRequest(
    model="mistral", messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER,
                                                      content="my private goal")],
    sampling=common_pb2.SamplingParams(temperature=0, max_tokens=20))
STREAMED = router_pb2.ChatStreamRequest(model=GREEDY.model, messages=GREEDY.messages,
                                        sampling=GREEDY.sampling)


def router(gw: RunningGateway, protocol: ProtocolType = ProtocolType.GRPC_WEB
           ) -> router_connect.RouterServiceClient:
    return router_connect.RouterServiceClient(gw.url, protocol=protocol)


async def stored(gw: RunningGateway, key: str | None) -> None:
    """The store runs after the reply went out: wait for it."""
    cache_key = gw.deps.cache.key(convert.canonical(GREEDY),
                                  tenant=key_identity(key) if key else None, feature="",
                                  messages=GREEDY.messages)
    for _ in range(100):
        if await gw.deps.cache.get(cache_key) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the reply was not stored")


@pytest.mark.parametrize("protocol", [ProtocolType.GRPC_WEB, ProtocolType.CONNECT])
async def test_a_repeated_chat_is_answered_from_the_cache(gateway, protocol) -> None:
    gw: RunningGateway = await gateway(KEYS)
    client = router(gw, protocol)
    with ResponseMetadata() as first_meta:
        first = await client.chat(GREEDY, headers=A)
    await stored(gw, "tenant-a")
    with ResponseMetadata() as again_meta:
        again = await client.chat(GREEDY, headers=A)
    with ResponseMetadata() as stream_meta:
        streamed = [m async for m in client.chat_stream(STREAMED, headers=A)]
    assert [m.headers.get("x-cache") for m in (first_meta, again_meta, stream_meta)] == [
        "MISS", "HIT", "HIT"]
    assert "x-cache-similarity" not in again_meta.headers
    assert len(gw.double.calls.chat) == 1
    assert again.text == first.text == "echo: my private goal"
    assert (again.route.model, again.route.reason) == (first.route.model, "cache")
    assert again.finish_reason == common_pb2.FINISH_REASON_STOP
    assert again.usage.completion_tokens == first.usage.completion_tokens
    assert streamed[0].route.model == first.route.model
    assert "".join(m.text for m in streamed) == first.text
    assert streamed[-1].finish_reason == common_pb2.FINISH_REASON_STOP


async def test_rest_and_grpc_web_share_entries_and_keys_never_do(gateway) -> None:
    gw: RunningGateway = await gateway(KEYS)
    rest = {"model": "mistral", "messages": [{"role": "user", "content": "my private goal"}],
            "temperature": 0, "max_tokens": 20}
    async with gw.client() as http:
        first = await http.post("/v1/chat/completions", json=rest, headers=A)
    assert first.headers["x-cache"] == "MISS"
    await stored(gw, "tenant-a")
    with ResponseMetadata() as a_meta:
        await router(gw).chat(GREEDY, headers=A)
    with ResponseMetadata() as b_meta:
        b_stream = [m async for m in router(gw).chat_stream(STREAMED, headers=B)]
    assert (a_meta.headers["x-cache"], b_meta.headers["x-cache"]) == ("HIT", "MISS")
    assert len(gw.double.calls.chat) == 2, "B was answered by the upstream, not A's entry"
    assert b_stream[0].route.reason != "cache"
    await stored(gw, "tenant-b")
    async with gw.client() as http:
        b_rest = await http.post("/v1/chat/completions", json=rest, headers=B)
    assert b_rest.headers["x-cache"] == "HIT", "B's own grpc-web entry answers B over REST"


async def test_no_cache_metadata_skips_the_lookup(gateway) -> None:
    gw: RunningGateway = await gateway()
    await router(gw).chat(GREEDY)
    await stored(gw, None)
    with ResponseMetadata() as meta:
        _ = [m async for m in router(gw).chat_stream(STREAMED,
                                                     headers={"cache-control": "no-cache"})]
    assert meta.headers["x-cache"] == "MISS"
    assert len(gw.double.calls.chat) == 2


async def test_a_browser_may_read_the_cache_metadata(gateway) -> None:
    gw: RunningGateway = await gateway({"CORS_ORIGINS": "https://app.upcoach.com"})
    origin = {"origin": "https://app.upcoach.com"}
    await router(gw).chat(GREEDY, headers=origin)
    await stored(gw, None)
    with ResponseMetadata() as meta:
        await router(gw).chat(GREEDY, headers=origin)
    exposed = {h.strip().lower() for h in meta.headers["access-control-expose-headers"].split(",")}
    assert meta.headers["x-cache"] == "HIT"
    assert {"x-cache", "x-cache-similarity", "x-safety-category", "grpc-status",
            "x-ratelimit-remaining-tokens"} <= exposed
