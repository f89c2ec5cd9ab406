"""The SSE chunk writer's events are byte for byte ``event`` of the whole chunk dict."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from upcoach_llm.gateway.chat import render

HEAD_KEYS = ("id", "object", "created", "model")


NO_USAGE = object()


def whole(writer: render.ChunkWriter, choices: list[dict[str, Any]],
          use: object = NO_USAGE) -> bytes:
    """The event as ``render.event`` writes the whole dict, with the head the writer wrote."""
    written = orjson.loads(writer.role()[len(b"data: "):])
    chunk = {key: written[key] for key in HEAD_KEYS} | {"choices": choices}
    if use is not NO_USAGE:
        chunk["usage"] = use
    return render.event(chunk)


@pytest.mark.parametrize("include_usage", [False, True])
def test_every_event_is_the_whole_chunk_serialised(include_usage: bool) -> None:
    """With include_usage every chunk carries ``"usage": null`` but the last, as OpenAI's."""
    writer = render.ChunkWriter(render.completion_id(), 'model "quoted" \u00e9',
                                include_usage=include_usage)
    none: object = None if include_usage else NO_USAGE
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
            "finish_reason": None}
    assert writer.role() == whole(writer, [role], none)
    for text in ("Hello", " w\u00f6rld \U0001F600", 'a "quote" \\ and\nnewline\t', ""):
        assert writer.text(text) == whole(writer, [
            {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
            none)
    lp = {"content": [{"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}]}
    assert writer.text("a", lp) == whole(writer, [
        {"index": 0, "delta": {"content": "a"}, "logprobs": lp, "finish_reason": None}], none)
    assert writer.finish("stop") == whole(writer, [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], none)
    use = render.usage(3, 5)
    assert writer.usage_only(use) == whole(writer, [], use)
