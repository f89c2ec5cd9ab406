"""Ollama's API on the gateway in front of the real stack (SmolLM2 and MiniLM), used as Ollama's
own clients use it: the official ``ollama`` package with an API key, and raw HTTP for the error
shape. The guide's /api endpoints keep their OpenAI shape beside it."""

from __future__ import annotations

import json
import uuid

import httpx
import ollama
import pytest

pytestmark = pytest.mark.integration
PREFIX = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
KEY = "ollama-integration-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SERVED = "smollm2-135m-instruct"
TIP = [{"role": "user", "content": "Give me a motivation tip"}]


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(env={"REDIS_KEY_PREFIX": PREFIX, "RATE_LIMIT_RPM": "1000",
                              "LLM_API_KEY": KEY, "ROUTER_HEALTH_INTERVAL_S": "0.5"})


@pytest.fixture(scope="module")
def url(stack) -> str:
    return f"http://{stack.spec('gateway').address}"


@pytest.fixture(scope="module")
def client(url: str) -> ollama.Client:
    return ollama.Client(host=url, headers=AUTH, timeout=120)


def test_list_show_and_ps(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert names[:3] == ["mistral", "llama3.2:3b", "nomic-embed-text"]
    assert {SERVED, "all-minilm-l6-v2"} <= set(names)
    shown = client.show(SERVED)
    assert shown.capabilities == ["completion"] and shown.details.format == "gguf"
    assert shown.modelinfo["upcoach.served"] is True
    assert client.show("nomic-embed-text").capabilities == ["embedding"]
    loaded = {m.model: m for m in client.ps().models}
    assert set(loaded) == {SERVED, "all-minilm-l6-v2"}
    assert loaded[SERVED].size == 98362432 and loaded[SERVED].size_vram == 0


def test_version_answers_with_a_key_only(url: str) -> None:
    assert httpx.get(f"{url}/api/version", headers=AUTH).json() == {"version": "0.12.11"}
    refused = httpx.get(f"{url}/api/version")
    assert refused.status_code == 401 and set(refused.json()) == {"error"}


def test_chat_plain_and_streaming(client: ollama.Client) -> None:
    reply = client.chat(model="mistral", messages=TIP,
                        options={"num_predict": 12, "temperature": 0})
    assert reply.model == SERVED and reply.done
    assert len(reply.message.content.split()) >= 3
    assert reply.done_reason in ("stop", "length")
    assert 0 < reply.eval_count <= 12 and reply.prompt_eval_count > 0
    assert reply.total_duration > reply.eval_duration > 0
    parts = list(client.chat(model="mistral", messages=TIP, stream=True,
                             options={"num_predict": 12, "temperature": 0}))
    assert len([p for p in parts if p.message.content]) >= 3
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert parts[-1].done_reason == "length" and parts[-1].eval_count == 12


def test_generate_plain_and_streaming(client: ollama.Client) -> None:
    reply = client.generate(model="mistral:latest", prompt="Name one healthy habit.",
                            system="Answer in one short sentence.",
                            options={"num_predict": 10, "temperature": 0, "seed": 7})
    assert reply.model == SERVED and reply.response.strip()
    assert 0 < reply.eval_count <= 10
    parts = list(client.generate(model="mistral", prompt="Name one healthy habit.",
                                 stream=True, options={"num_predict": 10}))
    assert "".join(p.response for p in parts).strip()
    assert parts[-1].done and parts[-1].response == "" and parts[-1].eval_count > 0


def test_embed_and_legacy_embeddings(client: ollama.Client) -> None:
    reply = client.embed(model="nomic-embed-text",
                         input=["I want to sleep better", "How do I rest well?"])
    assert reply.model == "all-minilm-l6-v2"
    assert [len(v) for v in reply.embeddings] == [384, 384]
    similarity = sum(a * b for a, b in zip(*reply.embeddings, strict=True))
    assert similarity > 0.4
    legacy = client.embeddings(model="nomic-embed-text", prompt="I want to sleep better")
    assert legacy.embedding == pytest.approx(reply.embeddings[0], abs=1e-5)


def test_the_cache_answers_a_repeated_greedy_chat(url: str) -> None:
    body = {"model": "mistral", "stream": False, "options": {"num_predict": 8, "temperature": 0},
            "messages": [{"role": "user", "content": f"Name a habit {uuid.uuid4().hex[:6]}."}]}
    first = httpx.post(f"{url}/api/chat", json=body, headers=AUTH, timeout=60)
    second = httpx.post(f"{url}/api/chat", json=body, headers=AUTH, timeout=60)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json()["message"] == first.json()["message"]


def test_errors_in_ollamas_shape(url: str) -> None:
    anonymous = httpx.post(f"{url}/api/chat", json={"model": "mistral", "messages": TIP},
                           timeout=30)
    assert anonymous.status_code == 401 and set(anonymous.json()) == {"error"}
    bad = httpx.post(f"{url}/api/chat", headers=AUTH, timeout=30, json={
        "model": "mistral", "messages": TIP, "options": {"top_k": 5}})
    assert bad.status_code == 400 and bad.json()["error"].startswith("options.top_k: ")
    too_long = httpx.post(f"{url}/api/generate", headers=AUTH, timeout=30, json={
        "model": "mistral", "prompt": "hi", "stream": False,
        "options": {"num_predict": 10_000_000}})
    assert too_long.status_code == 400
    assert too_long.json()["error"].startswith("options.num_predict: ")
    for stream in (True, False):
        unknown = httpx.post(f"{url}/api/chat", headers=AUTH, timeout=30, json={
            "model": "gpt-9", "messages": TIP, "stream": stream})
        assert unknown.status_code == 404 and "gpt-9" in unknown.json()["error"]
    with pytest.raises(ollama.ResponseError) as missing:
        ollama.Client(host=url, headers=AUTH).show("gpt-9")
    assert missing.value.status_code == 404


def test_the_guides_api_endpoints_keep_their_shape(url: str) -> None:
    chat = httpx.post(f"{url}/api/chat/completions", headers=AUTH, timeout=60, json={
        "model": "mistral", "messages": TIP, "max_tokens": 8})
    assert chat.json()["object"] == "chat.completion"
    assert chat.json()["choices"][0]["message"]["content"]
    coaching = httpx.post(f"{url}/api/coaching/chat", headers=AUTH, timeout=60, json={
        "messages": TIP, "context_type": "habits", "max_tokens": 8})
    assert coaching.json()["context_type"] == "habits"
    refused = httpx.post(f"{url}/api/chat/completions", headers=AUTH, timeout=30, json={
        "model": "mistral", "messages": TIP, "max_tokens": -1})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "max_tokens"
    anonymous = httpx.post(f"{url}/api/coaching/chat", json={"messages": TIP}, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"]
    embeddings = httpx.post(f"{url}/api/embeddings", headers=AUTH, timeout=30,
                            json={"input": "x"})
    assert embeddings.json()["object"] == "list"


def test_a_streamed_reply_is_ndjson(url: str) -> None:
    with httpx.stream("POST", f"{url}/api/generate", headers=AUTH, timeout=60, json={
            "model": "mistral", "prompt": "Say hello.", "options": {"num_predict": 4}}) as reply:
        assert reply.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in reply.iter_lines() if line]
    assert all(set(line) >= {"model", "created_at", "response", "done"} for line in lines)
    assert lines[-1]["done"] and {"total_duration", "load_duration", "prompt_eval_count",
                                  "eval_count", "eval_duration"} <= set(lines[-1])


def test_format_gives_json(client: ollama.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    reply = client.chat(model="mistral", format=schema, options={"num_predict": 24},
                        messages=[{"role": "user", "content": "Is water wet? Answer in JSON."}])
    assert reply.done_reason == "stop", reply.message.content
    assert isinstance(json.loads(reply.message.content)["ok"], bool)
