"""The fake OpenAI upstream of the peer benchmark (bench/fake_upstream.py), read by the ``openai``
package: replies that parse, the chunk count asked for, usage when asked, delays that space the
chunks, OpenAI's errors, keep-alive with pipelined requests."""

from __future__ import annotations

import itertools
import socket
import statistics
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from bench.fake_upstream import FakeUpstream, Settings
from upcoach_llm.dev.ports import free_port

MESSAGES = [{"role": "user", "content": "One tip, please."}]


def text(count: int) -> str:
    return "".join(Settings().pieces(count))


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(free_port(), chunks=5) as server:
        yield server


@pytest.fixture(scope="module")
def client(upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0) as c:
        yield c


def test_the_json_reply_parses(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert reply.object == "chat.completion"
    assert reply.model == "fake-model"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == text(5)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 5)
    assert reply.usage.total_tokens == 8
    assert reply.id != client.chat.completions.create(model="fake-model", messages=MESSAGES).id


def test_the_stream_has_the_content_chunks_asked_for(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="fake-model", messages=MESSAGES,
                                                 stream=True))
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(contents) == 5
    assert "".join(contents) == text(5)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)  # not asked for

    asked = [{"role": "user", "content": "Tip? [fake-upstream chunks=23]"}]
    chunks = list(client.chat.completions.create(model="fake-model", messages=asked,
                                                 stream=True))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 23


def test_usage_comes_last_when_asked(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="fake-model", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True}))
    *rest, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 5)
    assert all(c.usage is None for c in rest)
    assert rest[-1].choices[0].finish_reason == "stop"


def test_max_tokens_caps_the_reply(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="fake-model", messages=MESSAGES, max_tokens=2)
    assert reply.choices[0].message.content == text(2)
    assert reply.choices[0].finish_reason == "length"


def test_models_health_and_errors(upstream: FakeUpstream, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["fake-model"]
    assert httpx.get(f"{upstream.url}/health").json() == {"status": "ok"}
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert error.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fake-model", messages=[])
    assert httpx.get(f"{upstream.url}/v1/nothing").status_code == 404


def test_keep_alive_serves_pipelined_requests(upstream: FakeUpstream) -> None:
    body = b'{"model":"fake-model","messages":[{"role":"user","content":"hi"}],"stream":true}'
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))
    with socket.create_connection(("127.0.0.1", upstream.port), timeout=5) as sock:
        sock.sendall(request * 2 + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b'{"status":"ok"}' not in received:
            data = sock.recv(65536)
            assert data, received[-300:]
            received += data
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.count(b"data: [DONE]") == 2


def _content_arrivals(client: openai.OpenAI, messages: list[dict]) -> list[float]:
    arrivals = []
    for chunk in client.chat.completions.create(model="fake-model", messages=messages,
                                                stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
    return arrivals


def _median_gap(arrivals: list[float]) -> float:
    return statistics.median(b - a for a, b in itertools.pairwise(arrivals))


def test_the_delay_option_spaces_the_chunks() -> None:
    # 0.1 s apart: a reader stalled by a loaded machine may see two pieces at once, but the
    # median of five gaps only drops below 0.03 s when three of them collapse.
    with FakeUpstream(free_port(), chunks=6, token_delay_ms=100) as slow, \
            openai.OpenAI(base_url=f"{slow.url}/v1", api_key="sk-test", max_retries=0) as client:
        started = time.perf_counter()
        arrivals = _content_arrivals(client, MESSAGES)
        assert len(arrivals) == 6
        assert arrivals[0] - started >= 0.1  # the delay comes before every piece
        assert arrivals[-1] - started >= 6 * 0.1
        assert _median_gap(arrivals) >= 0.03  # a busy reader may see two at once, not most
        # per request: no delay, more pieces; the server's delay would make them take 4 s
        started = time.perf_counter()
        arrivals = _content_arrivals(
            client, [{"role": "user", "content": "[fake-upstream chunks=40 token-delay-ms=0]"}])
        assert len(arrivals) == 40
        assert arrivals[-1] - started < 0.025 * 40


def test_a_request_may_ask_for_a_delay(client: openai.OpenAI) -> None:
    arrivals = _content_arrivals(
        client, [{"role": "user", "content": "Tip? [fake-upstream token-delay-ms=40]"}])
    assert len(arrivals) == 5
    assert _median_gap(arrivals) >= 0.02
