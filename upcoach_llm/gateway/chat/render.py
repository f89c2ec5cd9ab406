"""Builds the OpenAI response bodies and SSE events as bytes, without a pydantic round trip.

The pydantic models of protocol.py are the one definition of these shapes (OpenAPI publishes
them); the builders here write the same fields as plain dicts for speed, taking the constant
values from the models, and tests/upcoach_llm/gateway/test_shapes.py fails when a body stops
matching its model exactly.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.gateway.chat.protocol import (
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatMessageOut,
)
from upcoach_llm.gateway.http.jsonbody import dumps

DONE = b"data: [DONE]\n\n"
_WORDS = re.compile(r"\S+\s*|\s+")
_COMPLETION = ChatCompletionResponse.model_fields["object"].default
_CHUNK = ChatCompletionChunk.model_fields["object"].default
_ROLE = ChatMessageOut.model_fields["role"].default


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def logprobs(tokens: Iterable[common_pb2.TokenLogprob]) -> dict[str, Any]:
    """OpenAI's ``choices[].logprobs``: each token, its log probability and the likeliest
    alternatives, with the UTF-8 bytes of each."""
    return {"content": [
        {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
         "top_logprobs": [{"token": a.token, "logprob": a.logprob,
                           "bytes": list(a.token.encode())} for a in t.top_logprobs]}
        for t in tokens]}


def completion(cid: str, model: str, content: str, finish_reason: str | None,
               use: dict[str, int], extra: dict[str, Any] | None = None,
               token_logprobs: dict[str, Any] | None = None) -> bytes:
    """A whole ``chat.completion``; token_logprobs is ``logprobs(...)`` when they were asked."""
    body = {"id": cid, "object": _COMPLETION, "created": now(), "model": model,
            "choices": [{"index": 0, "message": {"role": _ROLE, "content": content,
                                                 "refusal": None},
                         "finish_reason": finish_reason, "logprobs": token_logprobs}],
            "usage": use}
    if extra:
        body.update(extra)
    return dumps(body)


class ChunkWriter:
    """Formats the chunks of one stream (same id, created and model on each).

    As OpenAI does, usage is never counted on a chunk with choices: with
    ``stream_options.include_usage`` every chunk has ``"usage": null`` and the usage comes once,
    on ``usage_only``, the last chunk (a client that adds up the usage of every chunk, as
    LangChain does, then counts it once).
    """

    def __init__(self, cid: str, model: str, *, include_usage: bool = False) -> None:
        # Every event starts with the same bytes: the head, serialised once per stream
        # (b'data: {"id":...,"model":"..."' + b',"choices":['); a text delta is then its text's
        # JSON string between constant parts. The bytes are those of ``event`` of the whole dict.
        head = dumps({"id": cid, "object": _CHUNK, "created": now(), "model": model})
        self._open = b"data: " + head[:-1] + b',"choices":['
        self._text_open = self._open + b'{"index":0,"delta":{"content":'
        self._close = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
        self._text_close = b'},"logprobs":null,"finish_reason":null}' + self._close

    def role(self) -> bytes:
        return self._event({"index": 0, "delta": {"role": _ROLE, "content": ""},
                            "logprobs": None, "finish_reason": None})

    def text(self, text: str, token_logprobs: dict[str, Any] | None = None) -> bytes:
        """A text delta; token_logprobs is ``logprobs(...)`` of its tokens when asked."""
        if token_logprobs is None:
            return self._text_open + dumps(text) + self._text_close
        return self._event({"index": 0, "delta": {"content": text},
                            "logprobs": token_logprobs, "finish_reason": None})

    def finish(self, reason: str) -> bytes:
        return self._event({"index": 0, "delta": {}, "logprobs": None,
                            "finish_reason": reason})

    def usage_only(self, use: dict[str, int]) -> bytes:
        """The last chunk of ``stream_options.include_usage``: no choices, the usage."""
        return self._open + b'],"usage":' + dumps(use) + b"}\n\n"

    def _event(self, choice: dict[str, Any]) -> bytes:
        return self._open + dumps(choice) + self._close


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def server_timing(usage: common_pb2.Usage) -> str:
    """The engine's own timings as a Server-Timing header value (milliseconds)."""
    return (f"engine;dur={usage.generation_ms:.2f};desc=\"generation in the engine\", "
            f"ttft;dur={usage.time_to_first_token_ms:.2f};desc=\"engine time to first token\"")


def timing_comment(usage: common_pb2.Usage) -> bytes:
    """The same timings inside a stream, as an SSE comment line (clients ignore comments)."""
    return (f": server-timing engine;dur={usage.generation_ms:.2f}, "
            f"ttft;dur={usage.time_to_first_token_ms:.2f}\n\n").encode()


def replay_pieces(content: str) -> list[str]:
    """A cached reply cut into word-sized deltas for an SSE replay."""
    return _WORDS.findall(content) or [content]
