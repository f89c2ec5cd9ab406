"""The bodies render.py writes are exactly the response models of protocol.py (the shapes
OpenAPI publishes), with Ollama's durations in nanoseconds."""

from __future__ import annotations

import json
import time

import pytest

from upcoach_llm.api import common_pb2
from upcoach_llm.gateway.ollama import render
from upcoach_llm.gateway.ollama.protocol import OllamaChatResponse, OllamaGenerateResponse

USAGE = common_pb2.Usage(prompt_tokens=5, completion_tokens=7, total_tokens=12,
                         time_to_first_token_ms=1.5, generation_ms=4.0)
TOKENS = [common_pb2.TokenLogprob(token="Hi", logprob=-0.25, top_logprobs=[
    common_pb2.TopLogprob(token="Hey", logprob=-1.5)])]
MODELS = {render.CHAT: OllamaChatResponse, render.GENERATE: OllamaGenerateResponse}


def exactly(kind: str, body: dict) -> dict:
    """The body, after checking that its model reads it without losing or adding a field."""
    model = MODELS[kind].model_validate(body)
    assert model.model_dump(exclude_none=True) == body
    return body


@pytest.mark.parametrize("kind", [render.CHAT, render.GENERATE])
def test_every_line_and_the_whole_reply(kind: str) -> None:
    writer = render.Writer(kind, "smollm2", time.perf_counter() - 0.5)
    piece = exactly(kind, json.loads(writer.piece("Hi", TOKENS)))
    assert piece["done"] is False
    assert piece["logprobs"] == [{"token": "Hi", "logprob": -0.25,
                                  "top_logprobs": [{"token": "Hey", "logprob": -1.5}]}]
    last = exactly(kind, writer.final("length", USAGE))
    whole = exactly(kind, writer.final("stop", USAGE, "Hi there", TOKENS))
    text = (lambda b: b["message"]["content"]) if kind == render.CHAT else (
        lambda b: b["response"])
    assert (text(piece), text(last), text(whole)) == ("Hi", "", "Hi there")
    assert last["done"] and last["done_reason"] == "length"
    assert last["prompt_eval_count"] == 5 and last["eval_count"] == 7
    assert last["prompt_eval_duration"] == 1_500_000 and last["eval_duration"] == 2_500_000
    assert last["load_duration"] == 0 and last["total_duration"] >= 500_000_000
    loaded = exactly(kind, json.loads(writer.loaded("load")))
    assert loaded["done_reason"] == "load" and text(loaded) == ""


def test_a_cached_reply_never_has_a_zero_duration_beside_a_count() -> None:
    """Clients compute tokens per second as eval_count / eval_duration (Ollama's docs)."""
    usage = common_pb2.Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    body = render.Writer(render.CHAT, "m", time.perf_counter() - 0.01).final("stop", usage, "ok")
    assert body["prompt_eval_duration"] == 1
    assert body["eval_duration"] == body["total_duration"] >= 10_000_000
    empty = render.Writer(render.CHAT, "m", time.perf_counter()).final("stop", common_pb2.Usage())
    assert (empty["prompt_eval_duration"], empty["eval_duration"]) == (0, 0)


def test_lines_are_one_json_object_each() -> None:
    line = render.line({"error": "gone\naway"})
    assert line.count(b"\n") == 1 and json.loads(line) == {"error": "gone\naway"}
    assert render.created_at().endswith("Z")
