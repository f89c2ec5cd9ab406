"""The response cache keeps API keys apart, except for the features CACHE_SHARED_FEATURES names."""

from __future__ import annotations

from tests.upcoach_llm.gateway.conftest import RunningGateway

GREEDY = {"model": "mistral", "messages": [{"role": "user", "content": "my private goal"}],
          "temperature": 0, "max_tokens": 20}
KEYS = {"LLM_API_KEY": "tenant-a,tenant-b", "RATE_LIMIT_RPM": "0"}
A = {"Authorization": "Bearer tenant-a"}
B = {"X-API-Key": "tenant-b"}
# A shared feature claimed for a conversation with earlier turns: the conversation is personal.
STORY = {**GREEDY, "feature": "daily_affirmations", "messages": [
    {"role": "user", "content": "my divorce came through today"},
    {"role": "assistant", "content": "That is a lot to carry."},
    {"role": "user", "content": "give me an affirmation"}]}


async def test_two_keys_never_share_an_entry(gateway) -> None:
    gw: RunningGateway = await gateway(KEYS)
    async with gw.client() as client:
        a_first = await client.post("/v1/chat/completions", json=GREEDY, headers=A)
        b_first = await client.post("/v1/chat/completions", json=GREEDY, headers=B)
        a_again = await client.post("/api/chat/completions", json=GREEDY, headers=A)
        b_again = await client.post("/v1/chat/completions", json={**GREEDY, "stream": True},
                                    headers=B)
    assert [r.status_code for r in (a_first, b_first, a_again, b_again)] == [200] * 4
    assert [r.headers["x-cache"] for r in (a_first, b_first, a_again, b_again)] == [
        "MISS", "MISS", "HIT", "HIT"]
    assert len(gw.double.calls.chat) == 2, "B was answered by the upstream, not A's entry"
    assert b_first.json()["choices"][0]["message"]["content"] == "echo: my private goal"


async def test_shared_features_are_shared_and_others_are_not(gateway) -> None:
    gw: RunningGateway = await gateway({**KEYS, "CACHE_SHARED_FEATURES": "daily_affirmations"})
    shared = {**GREEDY, "feature": "daily_affirmations"}
    personal = {**GREEDY, "feature": "goal_setting"}
    async with gw.client() as client:
        shared_a = await client.post("/v1/chat/completions", json=shared, headers=A)
        shared_b = await client.post("/v1/chat/completions", json=shared, headers=B)
        personal_a = await client.post("/v1/chat/completions", json=personal, headers=A)
        personal_b = await client.post("/v1/chat/completions", json=personal, headers=B)
        plain_a = await client.post("/v1/chat/completions", json=GREEDY, headers=A)
        plain_b = await client.post("/v1/chat/completions", json=GREEDY, headers=B)
        story_a = await client.post("/v1/chat/completions", json=STORY, headers=A)
        story_b = await client.post("/v1/chat/completions", json=STORY, headers=B)
    assert [r.headers["x-cache"] for r in (shared_a, shared_b)] == ["MISS", "HIT"]
    assert [r.headers["x-cache"] for r in (personal_a, personal_b)] == ["MISS", "MISS"]
    assert [r.headers["x-cache"] for r in (plain_a, plain_b)] == ["MISS", "MISS"]
    assert [r.headers["x-cache"] for r in (story_a, story_b)] == ["MISS", "MISS"]
    assert len(gw.double.calls.chat) == 7


async def test_without_auth_there_is_one_shared_space(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with gw.client() as client:
        first = await client.post("/v1/chat/completions", json=GREEDY)
        second = await client.post("/v1/chat/completions", json=GREEDY)
    assert [r.headers["x-cache"] for r in (first, second)] == ["MISS", "HIT"]
