"""Token budgets on the gateway's chat paths (REST and grpc-web), against the upstream double.

The double's usage is easy to predict: prompt tokens are the words of the messages, completion
tokens the words of ``echo: <text>``. Without keys the budget is the caller's IP's.
"""

from __future__ import annotations

import asyncio

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.rpc import error_details_pb2

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.api import (
    common_pb2,
    embedding_connect,
    embedding_pb2,
    router_connect,
    router_pb2,
)
from upcoach_llm.gateway.security.token_budget import estimate_prompt, estimate_text

HI = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="hi")]
HI_ESTIMATE = estimate_prompt(["hi"])  # 5
HI_USAGE = 1 + 2  # "hi"; "echo:" " hi"
IP_CLIENT = "ip:127.0.0.1"


async def charged(gw: RunningGateway, client: str = IP_CLIENT) -> int:
    """Tokens charged to the client's window, read straight from Redis."""
    key = f"{gw.deps.settings.redis_prefix}tpm:{client}"
    return int(await gw.deps.redis.client.hget(key, "t") or 0)


def rest_chat(text: str, **fields: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **fields}


async def test_grpc_web_chats_spend_the_ip_budget(gateway) -> None:
    tpm = HI_USAGE * 2 + HI_ESTIMATE  # room for three, the fourth's estimate does not fit
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": str(tpm)})
    client = router_connect.RouterServiceClient(gw.url)
    stream = [m async for m in client.chat_stream(router_pb2.ChatStreamRequest(messages=HI))]
    assert stream[-1].usage.completion_tokens == 2
    assert await charged(gw) == HI_USAGE
    await client.chat(router_pb2.ChatRequest(messages=HI))
    assert await charged(gw) == 2 * HI_USAGE
    _ = [m async for m in client.chat_stream(router_pb2.ChatStreamRequest(messages=HI))]
    with pytest.raises(ConnectError) as caught:
        _ = [m async for m in client.chat_stream(router_pb2.ChatStreamRequest(messages=HI))]
    assert caught.value.code == Code.RESOURCE_EXHAUSTED
    [detail] = caught.value.details
    info = error_details_pb2.RetryInfo.FromString(detail.message_bytes)
    assert 1 <= info.retry_delay.seconds <= 60
    assert len(gw.double.calls.chat) == 3, "a refused call never reaches the router"
    async with gw.client() as http:
        unary = await http.post("/upcoach.llm.v1.RouterService/Chat", json={
            "messages": [{"role": "ROLE_USER", "content": "hi"}]})
    assert unary.status_code == 429
    assert unary.json()["code"] == "resource_exhausted"
    assert unary.headers["x-ratelimit-limit-tokens"] == str(tpm)
    assert unary.headers["x-ratelimit-remaining-tokens"] == str(tpm - 3 * HI_USAGE)
    assert unary.headers["retry-after"] == unary.headers["x-ratelimit-reset-tokens"]


async def test_rest_chats_spend_the_budget_until_429(gateway) -> None:
    tpm = HI_USAGE * 2 + HI_ESTIMATE
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": str(tpm), "CACHE_MODE": "off"})
    async with gw.client() as client:
        whole = await client.post("/v1/chat/completions", json=rest_chat("hi"))
        streamed = await client.post("/v1/chat/completions", json=rest_chat("hi", stream=True))
        coaching = await client.post("/api/coaching/chat", json={
            "messages": [{"role": "user", "content": "hi"}], "context_type": "habits"})
        refused = await client.post("/v1/chat/completions", json=rest_chat("hi", stream=True))
    assert [r.status_code for r in (whole, streamed, coaching)] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining-tokens"] for r in (whole, streamed, coaching)] == [
        str(tpm - HI_ESTIMATE), str(tpm - HI_USAGE - HI_ESTIMATE),
        str(tpm - 2 * HI_USAGE - HI_ESTIMATE)]
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.headers["x-ratelimit-limit-tokens"] == str(tpm)
    assert refused.headers["x-ratelimit-remaining-tokens"] == str(tpm - 3 * HI_USAGE)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-reset-tokens"] == refused.headers["retry-after"]
    assert await charged(gw) == 3 * HI_USAGE


async def test_budgets_are_per_key(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": str(HI_ESTIMATE),
                                        "LLM_API_KEY": "key-a,key-b", "CACHE_MODE": "off"})
    async with gw.client() as client:
        a = [await client.post("/v1/chat/completions", json=rest_chat("hi"),
                               headers={"X-API-Key": "key-a"}) for _ in range(3)]
        b = await client.post("/v1/chat/completions", json=rest_chat("hi"),
                              headers={"X-API-Key": "key-b"})
    assert [r.status_code for r in a] == [200, 429, 429]
    assert b.status_code == 200


async def test_a_cancelled_stream_keeps_what_was_relayed(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": "100000"})
    seen = 0
    async with gw.client() as client, client.stream(
            "POST", "/v1/chat/completions", json=rest_chat("SLOW", stream=True)) as reply:
        async for line in reply.aiter_lines():
            seen += '"content":"tick "' in line
            if seen == 12:
                break
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)
    estimate = estimate_prompt(["SLOW"])
    for _ in range(50):
        if await charged(gw) > estimate:
            break
        await asyncio.sleep(0.02)
    relayed = await charged(gw) - estimate
    # The client read 12 ticks; a few more may have been relayed before the close was seen.
    assert estimate_text(12 * len("tick ")) <= relayed <= estimate_text(20 * len("tick "))


async def test_cache_hits_spend_nothing(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": "1000"})
    body = rest_chat("cache me", temperature=0)
    async with gw.client() as client:
        first = await client.post("/v1/chat/completions", json=body)
        spent = await charged(gw)
        hit = await client.post("/v1/chat/completions", json=body)
    assert first.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "HIT"
    assert spent == first.json()["usage"]["total_tokens"]
    assert await charged(gw) == spent
    assert "x-ratelimit-remaining-tokens" not in hit.headers


async def test_off_by_default(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json=rest_chat("hi"))
    assert reply.status_code == 200
    assert "x-ratelimit-limit-tokens" not in reply.headers
    assert await charged(gw) == 0


async def test_ollama_chat_spends_the_same_budget(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": str(HI_USAGE + HI_ESTIMATE - 1),
                                        "CACHE_MODE": "off"})
    body = {"model": "mistral", "messages": [{"role": "user", "content": "hi"}],
            "stream": False}
    async with gw.client() as client:
        first = await client.post("/api/chat", json=body)
        streamed = await client.post("/api/chat", json={**body, "stream": True})
    assert first.status_code == 200, first.text
    assert await charged(gw) == HI_USAGE
    assert streamed.status_code == 429
    assert set(streamed.json()) == {"error"}, "Ollama's error shape"
    assert streamed.headers["x-ratelimit-remaining-tokens"] == str(HI_ESTIMATE - 1)
    assert "retry-after" in streamed.headers


async def test_a_cancelled_grpc_web_stream_keeps_what_was_relayed(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": "100000"})
    slow = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="SLOW")]
    stream = router_connect.RouterServiceClient(gw.url).chat_stream(
        router_pb2.ChatStreamRequest(messages=slow))
    ticks = 0
    async for message in stream:
        ticks += message.text.count("tick")
        if ticks >= 8:
            break
    await stream.aclose()
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)
    estimate = estimate_prompt(["SLOW"])
    for _ in range(50):
        if await charged(gw) >= estimate + estimate_text(ticks * len("tick ")):
            break
        await asyncio.sleep(0.02)
    assert estimate_text(ticks * len("tick ")) <= await charged(gw) - estimate


async def test_embeddings_spend_their_tokens_on_every_path(gateway) -> None:
    """REST, Ollama's two shapes and grpc-web embeddings reserve their texts' estimate
    (characters / 4) and are charged the service's count (the double: words)."""
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": "10"})
    async with gw.client() as client:
        too_large = await client.post("/v1/embeddings", json={"input": "x" * 41})
        assert too_large.status_code == 429 and "retry-after" not in too_large.headers
        rest = await client.post("/v1/embeddings", json={"input": ["one two", "three"]})
        assert rest.status_code == 200, rest.text
        assert rest.headers["x-ratelimit-remaining-tokens"] == "6"  # reserved: 2 + 2
        assert await charged(gw) == 3
        ollama = await client.post("/api/embed", json={"model": "all-minilm-l6-v2",
                                                       "input": "four five six"})  # reserves 4
        legacy = await client.post("/api/embeddings", json={"model": "all-minilm-l6-v2",
                                                            "prompt": "seven"})  # reserves 2
        assert [ollama.status_code, legacy.status_code] == [200, 200]
        assert await charged(gw) == 7
    embedding = embedding_connect.EmbeddingServiceClient(gw.url)
    await embedding.embed(embedding_pb2.EmbedRequest(texts=["eight nine"]))  # 7 + 3 fits
    assert await charged(gw) == 9
    with pytest.raises(ConnectError) as caught:
        await embedding.embed(embedding_pb2.EmbedRequest(texts=["ten", "eleven"]))
    assert caught.value.code == Code.RESOURCE_EXHAUSTED
    async with gw.client() as client:
        refused = await client.post("/v1/embeddings", json={"input": ["a", "b"]})
        last = await client.post("/api/embeddings", json={"model": "all-minilm-l6-v2",
                                                          "prompt": "a b"})  # 9 + 1 fits
        legacy = await client.post("/api/embeddings", json={"model": "all-minilm-l6-v2",
                                                            "prompt": "c"})
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-tokens"] == "1"
    assert last.status_code == 200
    assert legacy.status_code == 429 and set(legacy.json()) == {"error"}, "Ollama's shape"
    assert len(gw.double.calls.embed) == 5, "a refused call never reaches the service"
    assert await charged(gw) == 11


async def test_a_chat_the_router_refuses_before_any_work_spends_nothing(gateway) -> None:
    """Busy (429) and unknown models are refused before an engine runs: the reservation is
    given back, whole or streamed, REST or grpc-web; a failure after the stream started keeps
    what was relayed."""
    gw: RunningGateway = await gateway({"RATE_LIMIT_TPM": "1000", "CACHE_MODE": "off"})
    async with gw.client() as client:
        busy = await client.post("/v1/chat/completions", json=rest_chat("BUSY"))
        busy_stream = await client.post("/v1/chat/completions",
                                        json=rest_chat("BUSY", stream=True))
    assert (busy.status_code, busy_stream.status_code) == (429, 429)
    rpc = router_connect.RouterServiceClient(gw.url)
    with pytest.raises(ConnectError) as refused:
        await rpc.chat(router_pb2.ChatRequest(messages=[common_pb2.ChatMessage(
            role=common_pb2.ROLE_USER, content="BUSY")]))
    assert refused.value.code == Code.RESOURCE_EXHAUSTED
    assert await charged(gw) == 0
    async with gw.client() as client:
        cut = await client.post("/v1/chat/completions", json=rest_chat("FAIL_AFTER 2",
                                                                       stream=True))
    assert cut.status_code == 200 and "error" in cut.text
    assert await charged(gw) > 0
