"""The semantic cache in the gateway's chat path, with the upstream double: its embeddings are
the subject's length (so a same-length subject is a perfect match), which leaves the guard, the
headers, the replay and the fallbacks to test without a model."""

from __future__ import annotations

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.sse import content, parse

ON = {"SEMANTIC_CACHE_ENABLED": "true"}


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], "feature": "habit_tips",
            "max_tokens": 20, "temperature": 0.7, **extra}


async def test_a_paraphrase_is_answered_whole_and_streamed(gateway) -> None:
    gw: RunningGateway = await gateway(ON)
    async with gw.client() as client:
        first = await client.post("/v1/chat/completions",
                                  json=ask("Give me a tip to drink more water"))
        whole = await client.post("/v1/chat/completions", json=ask("Tip for: drink more water!"))
        streamed = await client.post("/v1/chat/completions",
                                     json=ask("How can I drink more water?", stream=True))
        metrics = (await client.get("/metrics")).text
        summary = (await client.get("/api/metrics")).json()
    assert first.headers["x-cache"] == "MISS" and "x-cache-similarity" not in first.headers
    assert whole.headers["x-cache"] == "HIT"
    assert whole.headers["x-cache-similarity"] == "1.0000"
    answer = first.json()["choices"][0]["message"]["content"]
    assert whole.json()["choices"][0]["message"]["content"] == answer
    assert streamed.headers["x-cache"] == "HIT"
    payloads, done = parse(streamed.text)
    assert done and content(payloads) == answer
    assert len(gw.double.calls.chat) == 1
    assert len(gw.double.calls.route) == 3
    assert [r.texts for r in gw.double.calls.embed] == [["drink more water"]] * 3
    assert 'gateway_semantic_cache_requests_total{result="hit"} 2.0' in metrics
    assert 'gateway_semantic_cache_requests_total{result="miss"} 1.0' in metrics
    # The guide's summary counts chats answered from either cache (temperature 0.7: no exact
    # lookup was made).
    assert (summary["cache_hits"], summary["cache_misses"]) == (2, 1)


async def test_an_opposite_at_the_same_vector_goes_to_the_model(gateway) -> None:
    gw: RunningGateway = await gateway(ON)
    async with gw.client() as client:
        await client.post("/v1/chat/completions", json=ask("Give me a tip to drink more water"))
        opposite = await client.post("/v1/chat/completions",
                                     json=ask("Give me a tip to drink less water"))
    assert opposite.headers["x-cache"] == "MISS"
    assert opposite.json()["choices"][0]["message"]["content"].endswith("drink less water")
    assert len(gw.double.calls.chat) == 2


async def test_no_cache_and_uncacheable_features_skip_it(gateway) -> None:
    gw: RunningGateway = await gateway(ON)
    async with gw.client() as client:
        await client.post("/v1/chat/completions", json=ask("Give me a tip to drink more water"))
        fresh = await client.post("/v1/chat/completions", json=ask("Tip: drink more water"),
                                  headers={"Cache-Control": "no-cache"})
        other = await client.post("/v1/chat/completions",
                                  json=ask("Tip: drink more water", feature="coaching_chat"))
    assert fresh.headers["x-cache"] == "MISS" and other.headers["x-cache"] == "MISS"
    assert len(gw.double.calls.route) == 1
    assert len(gw.double.calls.chat) == 3


async def test_redis_down_is_a_miss(gateway) -> None:
    gw: RunningGateway = await gateway({**ON, "REDIS_URL": "redis://127.0.0.1:1/0"})
    async with gw.client() as client:
        replies = [await client.post("/v1/chat/completions", json=ask("Tip: drink more water"))
                   for _ in range(2)]
        greedy = await client.post("/v1/chat/completions",
                                   json=ask("Tip: drink more water", temperature=0))
        summary = (await client.get("/api/metrics")).json()
    assert [r.status_code for r in replies] == [200, 200] and greedy.status_code == 200
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "MISS"]
    # Neither cache could be read: no lookup, neither a hit nor a miss.
    assert (summary["cache_hits"], summary["cache_misses"]) == (0, 0)
