"""The NDJSON lines of a stream: a bug after the stream started is one error line, logged."""

from __future__ import annotations

import json
import logging
import time

import pytest

from tests.upcoach_llm.gateway.stream_doubles import ScriptedStream
from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.gateway.ollama import render, serving


async def test_a_bug_mid_stream_ends_it_with_an_error_line(
        caplog: pytest.LogCaptureFixture) -> None:
    live = ScriptedStream([router_pb2.ChatStreamResponse(text="Hi")], KeyError("secret"))
    writer = render.Writer(render.CHAT, "m", time.perf_counter())
    with caplog.at_level(logging.ERROR):
        lines = [json.loads(line) async for line in serving._lines(live, writer)]  # type: ignore[arg-type]
    assert lines[0]["message"]["content"] == "Hi"
    assert lines[-1] == {"error": "internal error: KeyError"}
    assert live.closed and "unhandled error" in caplog.text


async def test_the_finishing_messages_logprobs_ride_with_its_text() -> None:
    last = router_pb2.ChatStreamResponse(
        text=" there", finish_reason=common_pb2.FINISH_REASON_STOP,
        logprobs=[common_pb2.TokenLogprob(token=" there", logprob=-0.5)])
    live = ScriptedStream([router_pb2.ChatStreamResponse(text="Hi"), last])
    writer = render.Writer(render.CHAT, "m", time.perf_counter())
    lines = [json.loads(line) async for line in serving._lines(live, writer)]  # type: ignore[arg-type]
    assert lines[1]["message"]["content"] == " there"
    assert lines[1]["logprobs"] == [{"token": " there", "logprob": -0.5, "top_logprobs": []}]
    assert lines[2]["done"] and "logprobs" not in lines[2]
