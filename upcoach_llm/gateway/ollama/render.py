"""Builds Ollama's chat and generate bodies and NDJSON lines as bytes (protocol.py has the models;
tests/upcoach_llm/gateway/ollama/test_render.py holds the two together).

A stream is one JSON object per line: a line per piece of text with ``done: false``, then a last
line with ``done: true``, the ``done_reason`` (stop, length, content_filter) and the metrics.
Durations are nanoseconds: ``total_duration`` is the gateway's own time for the request,
``load_duration`` is 0 (the served models are loaded at start-up), ``prompt_eval_duration`` is
the engine's time to the first token and ``eval_duration`` the rest of its generation. A reply
from the cache has no engine timings: its ``eval_duration`` is the gateway's time and its
``prompt_eval_duration`` 1 ns, since clients divide the counts by them (Ollama never sends 0).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.gateway.http.jsonbody import dumps

NDJSON = "application/x-ndjson"
CHAT = "chat"
GENERATE = "generate"
_NS_PER_MS = 1_000_000


def created_at() -> str:
    """Now in UTC, RFC 3339 with microseconds, as Ollama writes ``created_at``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def line(payload: dict[str, Any]) -> bytes:
    return dumps(payload) + b"\n"


def metrics(usage: common_pb2.Usage, started: float) -> dict[str, int]:
    """Ollama's counts and durations (ns) from the router's usage and the request's start."""
    first = max(0.0, usage.time_to_first_token_ms)
    rest = max(0.0, usage.generation_ms - first)
    total = max(1, int((time.perf_counter() - started) * 1e9))
    prompt_ns = int(first * _NS_PER_MS)
    eval_ns = int(rest * _NS_PER_MS)
    return {"total_duration": total,
            "load_duration": 0,
            "prompt_eval_count": usage.prompt_tokens,
            "prompt_eval_duration": prompt_ns or (1 if usage.prompt_tokens else 0),
            "eval_count": usage.completion_tokens,
            "eval_duration": eval_ns or (total if usage.completion_tokens else 0)}


def logprobs(tokens: Iterable[common_pb2.TokenLogprob]) -> list[dict[str, Any]]:
    return [{"token": t.token, "logprob": t.logprob,
             "top_logprobs": [{"token": top.token, "logprob": top.logprob}
                              for top in t.top_logprobs]}
            for t in tokens]


class Writer:
    """The bodies of one reply of /api/chat or /api/generate (``kind``), for one model."""

    def __init__(self, kind: str, model: str, started: float) -> None:
        self.kind = kind
        self.model = model
        self.started = started

    def _body(self, text: str, done: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "created_at": created_at()}
        if self.kind == CHAT:
            body["message"] = {"role": "assistant", "content": text}
        else:
            body["response"] = text
        body["done"] = done
        return body

    def piece(self, text: str, tokens: Iterable[common_pb2.TokenLogprob] = ()) -> bytes:
        """One line of a stream: text generated since the previous line."""
        body = self._body(text, False)
        listed = logprobs(tokens)
        if listed:
            body["logprobs"] = listed
        return line(body)

    def final(self, reason: str, usage: common_pb2.Usage, text: str = "",
              tokens: Iterable[common_pb2.TokenLogprob] = ()) -> dict[str, Any]:
        """The last line of a stream (text empty), or the whole reply (the text)."""
        body = self._body(text, True)
        body["done_reason"] = reason
        body.update(metrics(usage, self.started))
        listed = logprobs(tokens)
        if listed:
            body["logprobs"] = listed
        return body

    def loaded(self, reason: str) -> bytes:
        """The answer to a request without a prompt (Ollama's load and unload)."""
        body = self._body("", True)
        body["done_reason"] = reason
        return dumps(body)
