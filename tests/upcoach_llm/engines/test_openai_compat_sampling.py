"""OpenAI's sampling fields through the OpenAI-compatible engine, against a recording upstream: a
socket server that keeps each request body and answers with scripted server-sent events in
OpenAI's documented chunk shape (``choices[].logprobs.content``), as vLLM sends them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, ResponseFormat, Sampling
from upcoach_llm.common.errors import UpstreamError
from upcoach_llm.engines.base import Finished, TextChunk
from upcoach_llm.engines.openai_compat import OpenAICompatEngine

ASK = [Message("user", "Give me a tip as JSON.")]
SCHEMA = {"type": "object", "properties": {"tip": {"type": "string"}}, "required": ["tip"]}


def chunk(content: str | None, logprobs: list[dict] | None = None,
          finish: str | None = None) -> str:
    delta = {"content": content} if content is not None else {}
    choice = {"index": 0, "delta": delta, "finish_reason": finish,
              "logprobs": None if logprobs is None else {"content": logprobs}}
    return json.dumps({"choices": [choice]})


def token(text: str, logprob: float, *top: tuple[str, float]) -> dict:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()),
            "top_logprobs": [{"token": t, "logprob": p, "bytes": None} for t, p in top]}


def sse(*events: str) -> bytes:
    body = "".join(f"data: {event}\n\n" for event in events).encode()
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class Recording:
    """The upstream: answers ``raw`` to every request and keeps each request's JSON body."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.bodies: list[dict] = []
        self.server: asyncio.Server | None = None

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = next(int(line.split(":", 1)[1]) for line in head.split("\r\n")
                      if line.lower().startswith("content-length:"))
        self.bodies.append(json.loads(await reader.readexactly(length)))
        writer.write(self.raw)
        await writer.drain()
        writer.close()

    async def engine(self) -> OpenAICompatEngine:
        self.server = await asyncio.start_server(self.answer, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return OpenAICompatEngine(BackendConfig(name="vllm", type="openai",
                                                url=f"http://127.0.0.1:{port}/v1",
                                                models={"mistral": "mistral-7b"}))


@pytest.fixture
async def upstream() -> AsyncIterator[list[Recording]]:
    made: list[Recording] = []
    yield made
    for recording in made:
        if recording.server is not None:
            recording.server.close()


async def run(upstream: list[Recording], raw: bytes,
              sampling: Sampling) -> tuple[dict, list[TextChunk | Finished]]:
    recording = Recording(raw)
    upstream.append(recording)
    engine = await recording.engine()
    try:
        items = [item async for item in engine.stream("mistral-7b", ASK, sampling)]
    finally:
        await engine.close()
    return recording.bodies[-1], items


REPLY = sse(chunk('{"tip"', [token('{"', -0.01, ('{"', -0.01), ("{", -4.6)),
                            token('tip"', -0.2, ('tip"', -0.2))]),
            chunk(': "sip"}', [token(': "', -0.05), token('sip"}', -1.5)]),
            chunk(None, finish="stop"), "[DONE]")


async def test_openai_fields_pass_through_and_logprobs_come_back(upstream) -> None:
    sampling = Sampling(max_tokens=32, temperature=0.0, top_p=1.0, frequency_penalty=1.0,
                        presence_penalty=0.5, logprobs=True, top_logprobs=2,
                        response_format=ResponseFormat("json_schema", json.dumps(SCHEMA), "tip"))
    body, items = await run(upstream, REPLY, sampling)
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "tip", "schema": SCHEMA}}
    assert (body["frequency_penalty"], body["presence_penalty"]) == (1.0, 0.5)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    *chunks, finished = items
    assert isinstance(finished, Finished) and finished.reason == "stop"
    text = "".join(c.text for c in chunks)  # type: ignore[union-attr]
    logprobs = [lp for c in chunks for lp in c.logprobs]  # type: ignore[union-attr]
    assert json.loads(text) == {"tip": "sip"}
    assert "".join(lp.token for lp in logprobs) == text
    assert [lp.logprob for lp in logprobs] == [-0.01, -0.2, -0.05, -1.5]
    assert logprobs[0].top == (('{"', -0.01), ("{", -4.6)) and logprobs[2].top == ()


async def test_json_object_and_no_extras_when_unset(upstream) -> None:
    plain = sse(chunk("{}"), chunk(None, finish="stop"), "[DONE]")
    body, items = await run(upstream, plain, Sampling(
        max_tokens=8, temperature=0.0, top_p=1.0, response_format=ResponseFormat("json_object")))
    assert body["response_format"] == {"type": "json_object"}
    assert not {"frequency_penalty", "presence_penalty", "logprobs", "top_logprobs"} & set(body)
    assert isinstance(items[0], TextChunk) and items[0].logprobs == ()
    body, _ = await run(upstream, plain, Sampling(max_tokens=8, temperature=0.0, top_p=1.0))
    assert "response_format" not in body


async def test_the_repeat_penalty_goes_as_vllms_repetition_penalty_unless_off(upstream) -> None:
    plain = sse(chunk("ok"), chunk(None, finish="stop"), "[DONE]")
    body, _ = await run(upstream, plain, Sampling(max_tokens=8, temperature=0.0, top_p=1.0,
                                                  repeat_penalty=1.15))
    assert body["repetition_penalty"] == 1.15
    body, _ = await run(upstream, plain, Sampling(max_tokens=8, temperature=0.0, top_p=1.0,
                                                  repeat_penalty=1.0))
    assert "repetition_penalty" not in body


async def test_malformed_logprobs_are_a_clean_upstream_error(upstream) -> None:
    broken = sse(json.dumps({"choices": [{"index": 0, "delta": {"content": "x"},
                                          "logprobs": {"content": [{"token": "x"}]}}]}),
                 "[DONE]")
    with pytest.raises(UpstreamError, match=r"choices\[\].logprobs"):
        await run(upstream, broken, Sampling(max_tokens=8, temperature=0.0, top_p=1.0,
                                             logprobs=True))
