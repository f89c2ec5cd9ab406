"""The Redis response cache: what is cached, the key, HIT/MISS, SSE replay."""

from __future__ import annotations

import json
import shutil

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.sse import content, parse
from upcoach_llm.common.config import PACKAGED_CONFIG_DIR, SAFETY_FILE
from upcoach_llm.gateway.store.cache import canonical_hash

GREEDY = {"model": "mistral", "messages": [{"role": "user", "content": "a tip please"}],
          "temperature": 0, "max_tokens": 20}


def test_key_ignores_key_order() -> None:
    one = {"model": "m", "sampling": {"temperature": 0.0, "max_tokens": 5},
           "messages": [["u", "x"]]}
    two = {"messages": [["u", "x"]], "model": "m",
           "sampling": {"max_tokens": 5, "temperature": 0.0}}
    assert canonical_hash(one) == canonical_hash(two)
    assert canonical_hash(one) != canonical_hash({**one, "model": "n"})


async def test_reproducible_request_is_cached(gateway) -> None:
    gw: RunningGateway = await gateway()
    reordered = json.dumps(dict(reversed(list(GREEDY.items()))), indent=2)
    async with gw.client() as client:
        first = await client.post("/v1/chat/completions", json=GREEDY)
        second = await client.post("/api/chat/completions", content=reordered,
                                   headers={"content-type": "application/json"})
        metrics = (await client.get("/api/metrics")).json()
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert len(gw.double.calls.chat) == 1
    assert second.json()["choices"] == first.json()["choices"]
    assert second.json()["model"] == first.json()["model"] == "smollm2-135m-instruct"
    assert second.json()["usage"] == first.json()["usage"]
    assert second.json()["id"] != first.json()["id"]
    assert (metrics["cache_hits"], metrics["cache_misses"]) == (1, 1)


async def test_an_edit_to_the_crisis_check_retires_every_cached_reply(gateway, tmp_path) -> None:
    """The exact cache answers before the router's crisis check: a reply stored under an older
    safety.yaml must not answer a conversation the edited check has not seen."""
    config = tmp_path / "config"
    shutil.copytree(PACKAGED_CONFIG_DIR, config)
    env = {"UPCOACH_CONFIG_DIR": str(config)}
    before = await gateway(env)
    async with before.client() as client:
        assert (await client.post("/v1/chat/completions", json=GREEDY)).headers["x-cache"] == "MISS"
        assert (await client.post("/v1/chat/completions", json=GREEDY)).headers["x-cache"] == "HIT"
    with (config / SAFETY_FILE).open("a") as safety:
        safety.write("# an operator's edit\n")
    after = await gateway(env)  # the same Redis prefix: the same cache space but for the file
    async with after.client() as client:
        assert (await client.post("/v1/chat/completions", json=GREEDY)).headers["x-cache"] == "MISS"
        assert (await client.post("/v1/chat/completions", json=GREEDY)).headers["x-cache"] == "HIT"


async def test_stream_is_answered_from_the_cache_as_sse(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        streamed = await client.post("/v1/chat/completions", json={**GREEDY, "stream": True})
        whole = await client.post("/v1/chat/completions", json=GREEDY)
        replay = await client.post("/v1/chat/completions", json={**GREEDY, "stream": True})
    assert streamed.headers["x-cache"] == "MISS"
    assert whole.headers["x-cache"] == "HIT"
    assert whole.json()["choices"][0]["message"]["content"] == "echo: a tip please"
    assert replay.headers["x-cache"] == "HIT"
    assert replay.headers["content-type"].startswith("text/event-stream")
    payloads, done = parse(replay.text)
    assert done and content(payloads) == "echo: a tip please"
    assert len(payloads) > 3
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert len(gw.double.calls.chat) == 1


async def test_sampled_requests_are_not_cached_by_default(gateway) -> None:
    gw: RunningGateway = await gateway()
    sampled = {**GREEDY, "temperature": 0.8}
    default = {k: v for k, v in GREEDY.items() if k != "temperature"}
    async with gw.client() as client:
        replies = [await client.post("/v1/chat/completions", json=body)
                   for body in (sampled, sampled, default, default)]
        seeded = [await client.post("/v1/chat/completions", json={**sampled, "seed": 7})
                  for _ in range(2)]
    assert [r.headers["x-cache"] for r in replies] == ["MISS"] * 4
    assert [r.headers["x-cache"] for r in seeded] == ["MISS", "HIT"]
    assert len(gw.double.calls.chat) == 5


async def test_differences_that_matter_miss(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        await client.post("/v1/chat/completions", json=GREEDY)
        other_tokens = await client.post("/v1/chat/completions", json={**GREEDY, "max_tokens": 21})
        other_model = await client.post("/v1/chat/completions",
                                        json={**GREEDY, "model": "llama3.2:3b"})
        coaching = await client.post("/api/coaching/chat", json={**GREEDY, "context_type": "goals"})
    assert [r.headers["x-cache"] for r in (other_tokens, other_model, coaching)] == ["MISS"] * 3


async def test_cache_mode_all(gateway) -> None:
    sampled = {**GREEDY, "temperature": 0.8}
    gw_all: RunningGateway = await gateway({"CACHE_MODE": "all"})
    async with gw_all.client() as client:
        replies = [await client.post("/v1/chat/completions", json=sampled) for _ in range(2)]
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "HIT"]


async def test_cache_off(gateway) -> None:
    gw: RunningGateway = await gateway({"CACHE_MODE": "off"})
    async with gw.client() as client:
        replies = [await client.post("/v1/chat/completions", json=GREEDY) for _ in range(2)]
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "MISS"]


async def test_no_cache_header_skips_the_lookup(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        await client.post("/v1/chat/completions", json=GREEDY)
        fresh = await client.post("/v1/chat/completions", json=GREEDY,
                                  headers={"Cache-Control": "no-cache"})
    assert fresh.headers["x-cache"] == "MISS"
    assert len(gw.double.calls.chat) == 2


async def test_failed_streams_are_not_cached(gateway) -> None:
    gw: RunningGateway = await gateway()
    failing = {**GREEDY, "stream": True,
               "messages": [{"role": "user", "content": "FAIL_AFTER 1"}]}
    async with gw.client() as client:
        await client.post("/v1/chat/completions", json=failing)
        again = await client.post("/v1/chat/completions", json=failing)
    assert again.headers["x-cache"] == "MISS"
