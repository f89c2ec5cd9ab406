"""The Ollama engine against the Ollama contract double (tests/doubles/ollama_double.py).

Ollama's server cannot run on these machines, so these tests talk real HTTP to a double that
follows Ollama's documented API: NDJSON chunks, a final ``done: true`` object with
``prompt_eval_count``/``eval_count``, error objects, streamed pull and create progress.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.doubles.ollama_double import DEFAULT_REPLY, OllamaDouble
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, ResponseFormat, Sampling
from upcoach_llm.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
    UpstreamError,
)
from upcoach_llm.dev.ports import free_port
from upcoach_llm.engines.base import Finished, TextChunk
from upcoach_llm.engines.ollama import OllamaEngine
from upcoach_llm.engines.probes import probe_backend
from upcoach_llm.engines.remote_settings import RemoteSettings

MODELS = {"mistral": "mistral", "llama3.2:3b": "llama3.2:3b",
          "nomic-embed-text": "nomic-embed-text"}
ASK = [Message("system", "You are a coach."), Message("user", "Give me one tip")]
SAMPLING = Sampling(max_tokens=256, temperature=0.7, top_p=0.95)


@pytest.fixture
def ollama() -> Iterator[OllamaDouble]:
    with OllamaDouble(installed=["mistral", "nomic-embed-text"]) as double:
        yield double


def backend_at(url: str) -> BackendConfig:
    return BackendConfig(name="ollama", type="ollama", url=url, models=MODELS)


@pytest.fixture
async def engine(ollama: OllamaDouble) -> AsyncIterator[OllamaEngine]:
    engine = OllamaEngine(backend_at(ollama.url),
                          RemoteSettings(ollama_num_ctx=4096, ollama_keep_alive="60m"))
    yield engine
    await engine.close()


async def collect(engine: OllamaEngine, model: str = "mistral",
                  sampling: Sampling = SAMPLING) -> list[TextChunk | Finished]:
    return [item async for item in engine.stream(model, ASK, sampling)]




async def test_streams_the_reply_then_usage_from_the_final_counts(engine, ollama) -> None:
    items = await collect(engine)
    *chunks, finished = items
    assert chunks and all(isinstance(c, TextChunk) and c.text for c in chunks)
    assert "".join(c.text for c in chunks) == DEFAULT_REPLY
    assert isinstance(finished, Finished) and finished.reason == "stop"
    assert finished.completion_tokens == len(DEFAULT_REPLY.split())  # eval_count: one per word
    assert finished.prompt_tokens == sum(len(m.content.split()) for m in ASK)
    assert 0 < finished.time_to_first_token_ms <= finished.generation_ms


async def test_options_and_keep_alive_are_passed_through(engine, ollama) -> None:
    sampling = Sampling(max_tokens=3, temperature=0.2, top_p=0.5, stop=("\n\n",), seed=42)
    *chunks, finished = await collect(engine, sampling=sampling)
    body = ollama.requests[-1].body
    assert body["model"] == "mistral" and body["stream"] is True
    assert body["keep_alive"] == "60m"
    assert body["options"] == {"temperature": 0.2, "top_p": 0.5, "num_predict": 3,
                               "stop": ["\n\n"], "seed": 42, "repeat_penalty": 1.0,
                               "num_ctx": 4096}
    assert body["messages"] == [{"role": "system", "content": "You are a coach."},
                                {"role": "user", "content": "Give me one tip"}]
    assert "".join(c.text for c in chunks) == "Start small: pick " and finished.reason == "length"


async def test_a_model_not_pulled_says_how_to_pull_it(engine) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await collect(engine, model="llama3.2:3b")
    message = caught.value.message
    assert "'llama3.2:3b' is not installed on backend ollama" in message
    assert "ollama pull llama3.2:3b" in message and "scripts/setup_models.py" in message
    assert "PullModel" in message


async def test_a_malformed_line_is_a_clean_upstream_error(engine, ollama) -> None:
    ollama.malformed_next_stream(after=2)
    with pytest.raises(UpstreamError, match="malformed NDJSON line in /api/chat"):
        await collect(engine)
    assert isinstance((await collect(engine))[-1], Finished)  # the engine is still fine


async def test_a_stream_cut_before_done_is_an_error_after_the_chunks_sent(engine, ollama) -> None:
    ollama.cut_next_stream(after=3)
    received: list[str] = []
    with pytest.raises(UpstreamError, match="backend ollama") as caught:
        async for item in engine.stream("mistral", ASK, SAMPLING):
            received.append(item.text)
    assert "".join(received) == "Start small: pick "
    assert "closed the connection" in caught.value.message or "truncated" in caught.value.message


async def test_an_error_object_mid_stream_is_an_upstream_error(engine, ollama) -> None:
    ollama.error_next_stream(after=2, error="llama runner process has terminated")
    with pytest.raises(UpstreamError, match="failed mid-reply: llama runner process has"):
        await collect(engine)


async def test_http_5xx_is_unavailable_with_ollamas_message(engine, ollama) -> None:
    ollama.fail_next(500, "llama runner process has terminated", path="/api/chat")
    with pytest.raises(Unavailable, match="HTTP 500: llama runner process has terminated"):
        await collect(engine)


async def test_an_unreachable_server_is_unavailable_naming_backend_and_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    engine = OllamaEngine(backend_at(url), RemoteSettings(connect_timeout=1))
    try:
        with pytest.raises(Unavailable, match=rf"backend ollama \(ollama at {url}\) is "
                                              "unreachable"):
            await collect(engine)
        health = await engine.health()
        assert not health.healthy and url in health.detail
    finally:
        await engine.close()


async def test_lines_that_arrive_apart_are_a_chunk_each(engine, ollama) -> None:
    # Lines 0.2 s apart: a reader stalled longer than the gap (a loaded machine) would see two
    # lines in one read and rightly join them; 0.05 s left too little room.
    ollama.chunk_delay = 0.2
    chunks = [c.text for c in await collect(engine) if isinstance(c, TextChunk)]
    assert chunks == re.findall(r"\S+\s*", DEFAULT_REPLY)  # the double's one word per line


async def test_closing_the_iterator_closes_the_upstream_stream(engine, ollama) -> None:
    ollama.chunk_delay = 0.05
    stream = engine.stream("mistral", ASK, SAMPLING)
    first = await anext(stream)
    assert isinstance(first, TextChunk)
    await stream.aclose()
    for _ in range(300):
        if ollama.aborted_streams:
            break
        await asyncio.sleep(0.05)
    assert ollama.aborted_streams == 1


async def test_embeddings_are_normalised_vectors_in_input_order(engine, ollama) -> None:
    texts = ["build a morning routine", "a morning routine to build", "quarterly tax filing"]
    result = await engine.embed("nomic-embed-text", texts)
    assert result.dimensions == 768 and len(result.vectors) == 3
    assert all(math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-6) for vec in result.vectors)
    assert result.vectors[0] == pytest.approx(ollama.embed(texts[0]), abs=1e-6)
    assert result.prompt_tokens == sum(len(t.split()) for t in texts)
    assert ollama.requests[-1].body["keep_alive"] == "60m"


async def test_tags_and_health_map_names_back_to_the_catalog(engine, ollama) -> None:
    assert set(await engine.tags()) == {"mistral:latest", "nomic-embed-text:latest"}
    health = await engine.health()
    assert health.healthy and set(health.models) == {"mistral", "nomic-embed-text"}
    assert health.detail == "not pulled: llama3.2:3b"
    probed = await probe_backend(backend_at(ollama.url), timeout=2)
    assert probed.models == health.models


async def test_pull_streams_progress_until_success(engine, ollama) -> None:
    steps = [step async for step in engine.pull("llama3.2:3b")]
    assert steps[0].status == "pulling manifest" and steps[-1].status == "success"
    assert steps[-1].done and not any(s.done for s in steps[:-1])
    layers = [s for s in steps if s.digest]
    assert layers and all(s.total > 0 for s in layers)
    assert max(s.completed for s in layers) == max(s.total for s in layers)
    assert "llama3.2:3b" in (await engine.health()).models


async def test_pull_of_an_unknown_model_fails_with_ollamas_message(engine) -> None:
    with pytest.raises(FailedPrecondition, match="pull of nosuch failed: pull model manifest"):
        [step async for step in engine.pull("nosuch")]


async def test_create_builds_the_coaching_model_from_an_installed_one(engine, ollama) -> None:
    steps = [s async for s in engine.create("upcoach-assistant", "mistral",
                                            system="You are UpCoach.",
                                            parameters={"temperature": 0.7})]
    assert steps[-1].done and steps[-1].status == "success"
    created = ollama.models["upcoach-assistant:latest"]
    assert created.parent == "mistral:latest" and created.system == "You are UpCoach."
    assert created.parameters == {"temperature": 0.7}
    with pytest.raises(FailedPrecondition, match="not installed"):
        [s async for s in engine.create("x", "llama3.2:3b")]


async def test_json_formats_and_penalties_are_ollamas_format_and_options(engine, ollama) -> None:
    sampling = Sampling(max_tokens=64, temperature=0.0, top_p=1.0, frequency_penalty=0.5,
                        presence_penalty=-0.25, repeat_penalty=1.1,
                        response_format=ResponseFormat("json_object"))
    *chunks, _ = await collect(engine, sampling=sampling)
    body = ollama.requests[-1].body
    assert body["format"] == "json"
    assert {k: body["options"][k] for k in ("frequency_penalty", "presence_penalty",
                                            "repeat_penalty")} == {
        "frequency_penalty": 0.5, "presence_penalty": -0.25, "repeat_penalty": 1.1}
    assert json.loads("".join(c.text for c in chunks)) == {"reply": DEFAULT_REPLY}

    schema = {"type": "object", "properties": {"tip": {"type": "string"},
                                               "minutes": {"type": "integer"}}}
    *chunks, _ = await collect(engine, sampling=Sampling(
        max_tokens=64, temperature=0.0, top_p=1.0,
        response_format=ResponseFormat("json_schema", json.dumps(schema), "tip")))
    assert ollama.requests[-1].body["format"] == schema
    reply = json.loads("".join(c.text for c in chunks))
    assert set(reply) == {"tip", "minutes"} and isinstance(reply["minutes"], int)
    assert "frequency_penalty" not in ollama.requests[-1].body["options"]


async def test_logprobs_are_refused_before_anything_is_sent(engine, ollama) -> None:
    before = len(ollama.requests)
    with pytest.raises(InvalidArgument, match="sampling.logprobs: .*does not return log "
                                              "probabilities"):
        await collect(engine, sampling=Sampling(max_tokens=8, temperature=0.0, top_p=1.0,
                                                logprobs=True))
    assert len(ollama.requests) == before
