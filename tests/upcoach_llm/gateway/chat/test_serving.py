"""The SSE events of a stream: a bug after the stream started is one error event and [DONE]."""

from __future__ import annotations

import json
import logging

import pytest

from tests.upcoach_llm.gateway.stream_doubles import ScriptedStream
from upcoach_llm.api import router_pb2
from upcoach_llm.gateway.chat import serving


async def test_a_bug_mid_stream_ends_it_with_an_error_event(
        caplog: pytest.LogCaptureFixture) -> None:
    live = ScriptedStream([router_pb2.ChatStreamResponse(text="Hi")], KeyError("secret"))
    with caplog.at_level(logging.ERROR):
        events = [event async for event in serving._events(live, "c1", False,  # type: ignore[arg-type]
                                                           logprobs=False)]
    assert events[-1] == b"data: [DONE]\n\n"
    error = json.loads(events[-2].removeprefix(b"data: "))
    assert error["error"]["message"] == "internal error: KeyError"
    assert error["error"]["code"] == "internal"
    assert live.closed and "unhandled error" in caplog.text
