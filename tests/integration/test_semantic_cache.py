"""The semantic cache through the real stack (gateway, router, embedding with MiniLM, generation
with SmolLM2, Redis): a paraphrase hits with its similarity, whole and streamed; a contrast, another
API key and a feature that is not cacheable never get the stored reply; a conversation the crisis
check flags is never looked up."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
import redis

pytestmark = pytest.mark.integration
PREFIX = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
ADMIN_KEY = "operator-key-for-metrics"
KEYS = ("semantic-key-one", "semantic-key-two")
# A stop sequence ends the reply with "stop" (only finished replies are stored) in few tokens.
SAMPLING = {"max_tokens": 40, "temperature": 0, "stop": ["."]}
STORED = "Give me a tip to drink more water"
PARAPHRASE = "How can I drink more water every day?"
STREAMED = "tip for drinking more water"
CONTRAST = "Give me a tip to drink less water"


@pytest.fixture(scope="module")
def url(stack_factory) -> str:
    stack = stack_factory(env={"REDIS_KEY_PREFIX": PREFIX, "RATE_LIMIT_RPM": "1000",
                               "LLM_API_KEY": ",".join(KEYS), "LLM_ADMIN_KEY": ADMIN_KEY,
                               "ROUTER_HEALTH_INTERVAL_S": "0.5"})
    return f"http://{stack.spec('gateway').address}"


def chat(url: str, text: str, *, key: str = KEYS[0], feature: str = "habit_tips",
         stream: bool = False) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}], "feature": feature,
            "stream": stream, **SAMPLING}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {key}"})


def content(reply: httpx.Response) -> str:
    return reply.json()["choices"][0]["message"]["content"]


def entries_asking(text: str) -> int:
    """Stored entries whose request was ``text`` (an entry packs its request's text)."""
    client = redis.Redis()
    lists = [k for k in client.scan_iter(f"{PREFIX}scache:v1:*") if client.type(k) == b"list"]
    return sum(item.endswith(text.encode()) for k in lists for item in client.lrange(k, 0, -1))


def until_stored(text: str) -> None:
    """The store runs after the reply went out: wait for it."""
    deadline = time.monotonic() + 10
    while not entries_asking(text):
        assert time.monotonic() < deadline, "the reply was not stored"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def stored(url: str) -> str:
    first = chat(url, STORED)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "MISS" and "x-cache-similarity" not in first.headers
    assert first.json()["choices"][0]["finish_reason"] == "stop"
    until_stored(STORED)
    return content(first)


def test_a_paraphrase_hits_with_its_similarity(url: str, stored: str) -> None:
    reply = chat(url, PARAPHRASE)
    assert reply.headers["x-cache"] == "HIT"
    assert 0.75 <= float(reply.headers["x-cache-similarity"]) <= 1.0
    assert content(reply) == stored


def test_a_streamed_paraphrase_replays_the_reply(url: str, stored: str) -> None:
    reply = chat(url, STREAMED, stream=True)
    assert reply.headers["x-cache"] == "HIT"
    assert float(reply.headers["x-cache-similarity"]) >= 0.75
    events = [json.loads(line[6:]) for line in reply.text.splitlines()
              if line.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                   if e["choices"]) == stored


def test_a_contrast_misses(url: str, stored: str) -> None:
    reply = chat(url, CONTRAST)
    assert reply.status_code == 200
    assert reply.headers["x-cache"] == "MISS" and "x-cache-similarity" not in reply.headers


def test_another_api_key_never_sees_the_entry(url: str, stored: str) -> None:
    reply = chat(url, PARAPHRASE, key=KEYS[1])
    assert reply.headers["x-cache"] == "MISS"


def test_a_feature_that_is_not_cacheable_never_uses_it(url: str, stored: str) -> None:
    for text in (STORED, PARAPHRASE):
        reply = chat(url, text, feature="mood_analysis")
        assert reply.status_code == 200
        assert reply.headers["x-cache"] == "MISS"
    time.sleep(0.5)
    assert entries_asking(STORED) == 1  # the habit tip's own entry, nothing for mood_analysis


def semantic_lookups(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10,
                     headers={"Authorization": f"Bearer {ADMIN_KEY}"}).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gateway_semantic_cache_requests_total{"))


def test_a_flagged_conversation_is_never_looked_up(url: str, stored: str) -> None:
    before = semantic_lookups(url)
    reply = chat(url, "Remind me that I want to kill myself tonight", feature="quick_reminders")
    assert reply.headers["x-safety-category"] == "self_harm"
    assert reply.headers["x-cache"] == "MISS" and "x-cache-similarity" not in reply.headers
    assert semantic_lookups(url) == before
    chat(url, "Remind me to drink a glass of water", feature="quick_reminders")
    assert semantic_lookups(url) == before + 1
