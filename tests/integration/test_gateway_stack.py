"""The gateway in front of the real stack (every service a real process, SmolLM2 and MiniLM),
used as clients use it: the official openai package on /v1 and /api, the guide's curl commands,
and the npm grpc-web client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import httpx
import openai
import pytest

from tests.upcoach_llm.gateway import npm_client
from upcoach_llm.api import router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration
PREFIX = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
TIP = [{"role": "user", "content": "Give me a motivation tip"}]


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(env={"REDIS_KEY_PREFIX": PREFIX, "RATE_LIMIT_RPM": "1000",
                              "ROUTER_HEALTH_INTERVAL_S": "0.5"})


@pytest.fixture(scope="module")
def url(stack) -> str:
    return f"http://{stack.spec('gateway').address}"


@pytest.fixture(scope="module", params=["/v1", "/api"])
def client(request, url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + request.param, api_key="not-needed", max_retries=0,
                         timeout=120)


def test_openai_chat(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="mistral", messages=TIP, max_tokens=16,
                                           temperature=0)
    assert reply.model == "smollm2-135m-instruct"
    assert reply.object == "chat.completion"
    assert len(reply.choices[0].message.content.split()) >= 3
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_openai_streaming(client: openai.OpenAI) -> None:
    # Greedy: with sampling the model sometimes ends its tip before 16 tokens (about 1 in 40).
    stream = client.chat.completions.create(model="mistral", messages=TIP, max_tokens=16,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 3
    assert {c.model for c in chunks} == {"smollm2-135m-instruct"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_openai_embeddings(client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model="nomic-embed-text",
                                     input=["I want to sleep better", "How do I rest well?"])
    assert reply.model == "all-minilm-l6-v2"
    assert [len(d.embedding) for d in reply.data] == [384, 384]
    similarity = sum(a * b for a, b in zip(reply.data[0].embedding, reply.data[1].embedding,
                                           strict=True))
    assert similarity > 0.4
    floats = client.embeddings.create(model="nomic-embed-text", input="x",
                                      encoding_format="float")
    assert len(floats.data[0].embedding) == 384


def test_openai_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[:3] == ["mistral", "llama3.2:3b", "nomic-embed-text"]
    assert client.models.retrieve("mistral").id == "mistral"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


def test_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-9", messages=TIP)
    assert unknown.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as negative:
        client.chat.completions.create(model="mistral", messages=TIP, max_tokens=-1)
    assert negative.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(model="mistral", messages=TIP, max_tokens=100000)
    assert too_many.value.body["param"] == "max_tokens"


def test_guide_quick_start_curl_commands_as_written(stack) -> None:
    address = stack.spec("gateway").address
    commands = {
        "health": "curl http://localhost:3100/health",
        "chat": """curl -X POST http://localhost:3100/api/chat/completions \\
  -H "Content-Type: application/json" \\
  -d '{
    "model": "mistral",
    "messages": [{"role": "user", "content": "Give me a motivation tip"}],
    "max_tokens": 100
  }'""",
        "models": "curl http://localhost:3100/api/models",
        "coaching": """curl -X POST http://localhost:3100/api/coaching/chat \\
  -H "Content-Type: application/json" \\
  -d '{
    "messages": [{"role": "user", "content": "Help me build a morning routine"}],
    "context_type": "habits"
  }'""",
        "metrics": "curl http://localhost:3100/api/metrics",
    }
    out = {}
    for name, command in commands.items():
        done = subprocess.run(["bash", "-c", command.replace("localhost:3100", address)],
                              capture_output=True, text=True, timeout=180, check=True)
        out[name] = json.loads(done.stdout)
    assert out["health"]["status"] == "ok"
    assert set(out["health"]["services"]) >= {"router", "generation", "embedding",
                                              "model-registry", "redis", "embedded"}
    assert out["chat"]["model"] == "smollm2-135m-instruct"
    assert out["chat"]["choices"][0]["message"]["content"]
    listed = {m["id"]: m for m in out["models"]["models"]}
    assert listed["mistral"] == {"id": "mistral", "name": "mistral", "size": 4100000000,
                                 "available": False}  # no Ollama here
    assert listed["smollm2-135m-instruct"]["available"]
    assert out["coaching"]["context_type"] == "habits"
    assert out["coaching"]["choices"][0]["message"]["content"]
    assert set(out["metrics"]) == {"requests_total", "cache_hits", "cache_misses",
                                   "errors_total", "active_connections"}
    assert out["metrics"]["requests_total"] >= 4


def test_coaching_contexts_come_from_the_router(url: str) -> None:
    reply = httpx.post(f"{url}/api/coaching/chat", timeout=60, json={
        "messages": TIP, "context_type": "astrology", "max_tokens": 8})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "context_type"
    for context in ("habits", "goals", "motivation", "wellness", "mood"):
        assert context in error["message"]
    streamed = httpx.post(f"{url}/api/coaching/chat", timeout=60, json={
        "messages": TIP, "context_type": "motivation", "max_tokens": 8, "stream": True})
    assert streamed.text.rstrip().endswith("data: [DONE]")
    assert streamed.text.count("chat.completion.chunk") >= 4


def generated_tokens(url: str) -> float:
    """The gateway's gateway_tokens_generated_total, all models: moves only when a model ran."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gateway_tokens_generated_total{"))


def test_greedy_reply_is_cached_and_replayed(url: str) -> None:
    body = {"model": "mistral", "messages": [{"role": "user", "content": "Name a habit."}],
            "max_tokens": 12, "temperature": 0}
    before = generated_tokens(url)
    first = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    generated = generated_tokens(url)
    assert generated > before, "the miss ran the model, and the metric counts it"
    started = time.perf_counter()
    second = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    hit_seconds = time.perf_counter() - started
    assert generated_tokens(url) == generated, "the hit ran the model"
    replay = httpx.post(f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=60)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json()["choices"] == first.json()["choices"]
    # That the hit skipped the model is checked above, from the metric; this only bounds the
    # hit's path (no wait on the router or a timeout), loosely enough for a loaded machine.
    assert hit_seconds < 2.0
    assert replay.headers["x-cache"] == "HIT"
    events = [json.loads(line[6:]) for line in replay.text.splitlines()
              if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == first.json()["choices"][0]["message"]["content"]


def test_a_reply_of_no_text_goes_back_as_history(client: openai.OpenAI) -> None:
    count = [{"role": "user", "content": "Count from 1 to 10 separated by commas"}]
    empty = client.chat.completions.create(model="mistral", messages=count, max_tokens=8,
                                           temperature=0, stop=["1"])
    message = empty.choices[0].message
    assert message.content == "", "the stop sequence comes first: the reply has no text"
    history = [*count, message.model_dump(exclude_none=True),
               {"role": "user", "content": "Name one habit."}]
    reply = client.chat.completions.create(model="mistral", messages=history, max_tokens=4,
                                           temperature=0)  # a 400 before: content was blank
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_a_long_conversation_without_max_tokens_gets_the_room_left(url: str) -> None:
    long = [{"role": "user", "content": "Say hello. " + "hello " * 1820}]
    reply = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                       json={"messages": long, "temperature": 0})
    assert reply.status_code == 200, reply.text
    usage = reply.json()["usage"]
    assert usage["prompt_tokens"] > 2048 - 256, "the default max_tokens would not fit"
    assert usage["total_tokens"] <= 2048


def test_disconnect_mid_stream_cancels_generation(stack, url: str) -> None:
    backends = stack.stub("router", router_pb2_grpc.RouterServiceStub).ListBackends

    def outstanding() -> int:
        reply = backends(router_pb2.ListBackendsRequest(), timeout=5)
        return sum(b.outstanding for b in reply.backends)

    body = {"messages": [{"role": "user", "content": "Write a very long story."}],
            "max_tokens": 2000, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as reply:
        seen = 0
        for line in reply.iter_lines():
            seen += line.startswith("data: {")
            if seen >= 4:
                assert outstanding() == 1
                break
    deadline = time.monotonic() + 5
    while outstanding() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outstanding() == 0


def test_npm_grpc_web_client_streams_a_coaching_chat(url: str) -> None:
    npm_client.generate_ts()
    run = asyncio.run(npm_client.chat_stream(url, "Help me build a morning routine",
                                             "--context", "habits"))
    assert run.code == 0, run.stderr
    summary = run.last["summary"]
    assert summary["messages"] >= 5
    assert summary["model"] == "smollm2-135m-instruct"
    assert len(summary["text"].split()) >= 3
