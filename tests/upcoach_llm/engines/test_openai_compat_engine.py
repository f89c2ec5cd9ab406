"""The OpenAI-compatible engine against a real ``llama_cpp.server`` serving SmolLM2.

Broken upstreams (an event that is not JSON, a stream cut before ``[DONE]``, an error event) come
from a scripted socket server that writes exactly those bytes, since a healthy server never
sends them; a killed ``llama_cpp.server`` gives the real cut-mid-stream case.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.llama_server import LlamaServer
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, ResponseFormat, Sampling
from upcoach_llm.common.errors import Unavailable, UpstreamError
from upcoach_llm.dev.ports import free_port
from upcoach_llm.engines.base import Finished, TextChunk
from upcoach_llm.engines.openai_compat import OpenAICompatEngine, base_url
from upcoach_llm.engines.probes import probe_backend
from upcoach_llm.engines.remote_settings import RemoteSettings

pytestmark = pytest.mark.integration
ASK = [Message("user", "Give me one tip for a morning routine.")]
GREEDY = Sampling(max_tokens=16, temperature=0.0, top_p=1.0, seed=1)


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    with LlamaServer(alias="smollm2") as running:
        yield running


def backend_at(url: str, served: str = "smollm2") -> BackendConfig:
    return BackendConfig(name="vllm", type="openai", url=url, models={"mistral": served})


@pytest.fixture
async def engine(server: LlamaServer) -> AsyncIterator[OpenAICompatEngine]:
    engine = OpenAICompatEngine(backend_at(f"{server.url}/v1"))
    yield engine
    await engine.close()


async def collect(engine: OpenAICompatEngine,
                  sampling: Sampling = GREEDY) -> list[TextChunk | Finished]:
    return [item async for item in engine.stream("smollm2", ASK, sampling)]


def test_base_url_accepts_both_forms() -> None:
    assert base_url("http://vllm:8000/v1/") == base_url("http://vllm:8000") == "http://vllm:8000"


async def test_streams_real_tokens_then_finished(engine) -> None:
    *chunks, finished = await collect(engine)
    assert chunks and all(isinstance(c, TextChunk) and c.text for c in chunks)
    assert "".join(c.text for c in chunks).strip()
    assert isinstance(finished, Finished) and finished.reason == "length"
    assert finished.completion_tokens == 16
    assert 0 < finished.time_to_first_token_ms <= finished.generation_ms


async def test_sampling_is_passed_through(engine) -> None:
    first = "".join(c.text for c in (await collect(engine))[:-1])
    assert first == "".join(c.text for c in (await collect(engine))[:-1])  # greedy, seeded
    words = first.split()
    assert len(words) >= 4
    stop = f" {words[2]}"
    *chunks, finished = await collect(engine, Sampling(max_tokens=16, temperature=0.0,
                                                       top_p=1.0, seed=1, stop=(stop,)))
    stopped = "".join(c.text for c in chunks)
    assert finished.reason == "stop" and stop not in stopped
    assert first.startswith(stopped) and len(stopped) < len(first)


async def test_json_mode_reaches_a_real_server(engine) -> None:
    json_mode = Sampling(max_tokens=48, temperature=0.0, top_p=1.0, seed=1,
                         response_format=ResponseFormat("json_object"))
    items = [item async for item in engine.stream(
        "smollm2", [Message("user", 'Return {"mood": "happy"} as JSON.')], json_mode)]
    *chunks, finished = items
    assert finished.reason == "stop"
    assert isinstance(json.loads("".join(c.text for c in chunks)), dict)


async def test_health_lists_the_configured_model_the_server_serves(server, engine) -> None:
    assert await engine.served_models() == ["smollm2"]
    health = await engine.health()
    assert health.healthy and health.models == ("mistral",)
    wrong = await probe_backend(backend_at(server.url, served="mistralai/Mistral-7B"), 5)
    assert not wrong.healthy
    assert "serves smollm2, not mistralai/Mistral-7B" in wrong.detail


async def test_embeddings_from_a_pooled_server_are_unit_vectors() -> None:
    with LlamaServer(alias="smollm2", embedding=True) as embedder:
        engine = OpenAICompatEngine(backend_at(embedder.url))
        try:
            texts = ["build a morning routine", "a morning routine to build", "tax forms"]
            result = await engine.embed("smollm2", texts)
            again = await engine.embed("smollm2", texts[:1])
        finally:
            await engine.close()
    assert len(result.vectors) == 3 and result.dimensions == 576
    assert all(math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-5)
               for vec in result.vectors)
    assert again.vectors[0] == pytest.approx(result.vectors[0], abs=1e-5)
    assert result.prompt_tokens > 0


async def test_an_unreachable_server_is_unavailable_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    engine = OpenAICompatEngine(backend_at(url))
    try:
        with pytest.raises(Unavailable, match=rf"backend vllm \(openai at {url}\) is "
                                              "unreachable"):
            await collect(engine)
        assert url in (await engine.health()).detail
    finally:
        await engine.close()


async def test_a_server_killed_mid_stream_ends_with_an_upstream_error() -> None:
    with LlamaServer(alias="smollm2") as doomed:
        engine = OpenAICompatEngine(backend_at(doomed.url))
        received = []
        try:
            with pytest.raises(UpstreamError, match="backend vllm"):
                async for item in engine.stream("smollm2", ASK, Sampling(
                        max_tokens=400, temperature=0.0, top_p=1.0)):
                    received.append(item)
                    if len(received) == 2:
                        doomed.kill()
        finally:
            await engine.close()
    assert len(received) >= 2 and not any(isinstance(i, Finished) for i in received)


# -- scripted upstreams --------------------------------------------------------------------

def sse(*events: str) -> bytes:
    body = "".join(f"data: {event}\n\n" for event in events).encode()
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


CHUNK = '{"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}'


@pytest.fixture
def scripted() -> Iterator:
    """Starts a socket server that answers every request with the given raw bytes."""
    servers = []

    async def start(raw: bytes, settings: RemoteSettings | None = None,
                    heads: list[bytes] | None = None) -> OpenAICompatEngine:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            if heads is not None:
                heads.append(head)
            writer.write(raw)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return OpenAICompatEngine(backend_at(f"http://127.0.0.1:{port}"), settings)

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(("raw", "error", "message"), [
    (sse(CHUNK, "{not json"), UpstreamError, "malformed server-sent event"),
    (sse(CHUNK, CHUNK), UpstreamError, "without \\[DONE\\] \\(truncated reply\\)"),
    (sse(CHUNK, "[DONE]"), UpstreamError, "before any finish_reason"),
    (sse(CHUNK, '{"error": {"message": "CUDA out of memory"}}'), UpstreamError,
     "failed mid-reply: CUDA out of memory"),
    (sse('{"choices": ["x"]}'), UpstreamError, "malformed chat chunk"),
    (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 36\r\n\r\n"
     b'{"error": {"message": "overloaded"}}', Unavailable, "HTTP 503: overloaded"),
])
async def test_broken_upstreams_are_clean_errors(scripted, raw, error, message) -> None:
    engine = await scripted(raw)
    try:
        with pytest.raises(error, match=message):
            await collect(engine)
    finally:
        await engine.close()


async def test_usage_comes_from_the_usage_chunk_when_sent(scripted) -> None:
    usage = '{"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}'
    stop = '{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}'
    engine = await scripted(sse(CHUNK, CHUNK, stop, usage, "[DONE]"))
    try:
        *chunks, finished = await collect(engine)
    finally:
        await engine.close()
    assert [c.text for c in chunks] == ["HiHi"]  # what one network read brought: one chunk
    assert (finished.reason, finished.prompt_tokens, finished.completion_tokens) == (
        "stop", 11, 2)


async def test_token_level_vectors_are_a_malformed_reply(scripted) -> None:
    # What llama_cpp.server answers for a model without pooling: one vector per token.
    body = b'{"data": [{"index": 0, "embedding": [[0.1, 0.2], [0.3, 0.4]]}], "usage": {}}'
    engine = await scripted(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    try:
        with pytest.raises(UpstreamError, match="malformed /v1/embeddings reply: vector 0"):
            await engine.embed("smollm2", ["two words"])
    finally:
        await engine.close()


async def test_the_api_key_is_sent_as_a_bearer_token(scripted) -> None:
    heads: list[bytes] = []
    body = b'{"object": "list", "data": [{"id": "smollm2"}]}'
    engine = await scripted(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
                            RemoteSettings(openai_api_key="s3cret"), heads)
    try:
        assert (await engine.health()).models == ("mistral",)
    finally:
        await engine.close()
    assert b"authorization: Bearer s3cret" in heads[0].lower().replace(b"bearer", b"Bearer")


async def test_replies_in_a_row_reuse_one_connection() -> None:
    """The end of a chunked reply comes after its [DONE]: the engine reads it, so httpx keeps
    the connection for the next reply instead of opening one per request."""
    stop = '{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}'
    events = "".join(f"data: {e}\n\n" for e in (CHUNK, stop, "[DONE]")).encode()
    connections = 0

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n"
                             + f"{len(events):x}\r\n".encode() + events + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)  # the last chunk arrives after the [DONE] was read
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = OpenAICompatEngine(backend_at(f"http://127.0.0.1:{port}"))
    try:
        for _ in range(3):
            *_, finished = await collect(engine)
            assert finished.reason == "stop"
    finally:
        await engine.close()
        server.close()
    assert connections == 1
