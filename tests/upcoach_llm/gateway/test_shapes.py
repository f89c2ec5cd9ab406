"""Every body the gateway writes by hand matches its pydantic model exactly, so the models stay
the one definition of the REST shapes: a field added, dropped or retyped on one side fails here."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from upcoach_llm.api import common_pb2, embedding_pb2
from upcoach_llm.gateway.chat import render
from upcoach_llm.gateway.chat.protocol import ChatCompletionChunk, ChatCompletionResponse
from upcoach_llm.gateway.coaching.protocol import CoachingChatResponse
from upcoach_llm.gateway.embeddings.protocol import EmbeddingResponse
from upcoach_llm.gateway.embeddings.serving import response_body
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.http.shutdown import StreamRegistry
from upcoach_llm.gateway.openapi import ErrorResponse

USE = render.usage(3, 4)
TOKENS = [common_pb2.TokenLogprob(token="h\u00e9", logprob=-0.25, top_logprobs=[
    common_pb2.TopLogprob(token="h\u00e9", logprob=-0.25),
    common_pb2.TopLogprob(token="ho", logprob=-2.0)]),
    common_pb2.TokenLogprob(token="!", logprob=0.0)]


def exactly(model: type[BaseModel], body: dict[str, Any]) -> None:
    """Valid for the model, and nothing in the body that the model does not declare."""
    assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body


def event(data: bytes) -> dict[str, Any]:
    assert data.startswith(b"data: ") and data.endswith(b"\n\n")
    return orjson.loads(data[len(b"data: "):-2])


@pytest.mark.parametrize("finish", ["stop", "length", None])
def test_whole_reply(finish: str | None) -> None:
    exactly(ChatCompletionResponse,
            orjson.loads(render.completion("chatcmpl-1", "m", "hi", finish, USE)))


def test_whole_reply_with_logprobs() -> None:
    body = orjson.loads(render.completion("chatcmpl-1", "m", "h\u00e9!", "stop", USE,
                                          token_logprobs=render.logprobs(TOKENS)))
    exactly(ChatCompletionResponse, body)
    [first, second] = body["choices"][0]["logprobs"]["content"]
    assert first["bytes"] == [0x68, 0xC3, 0xA9] and first["top_logprobs"][1]["token"] == "ho"
    assert second == {"token": "!", "logprob": 0.0, "bytes": [0x21], "top_logprobs": []}


def test_coaching_reply() -> None:
    exactly(CoachingChatResponse, orjson.loads(render.completion(
        "chatcmpl-1", "m", "hi", "stop", USE, {"context_type": "habits"})))


def test_every_stream_chunk() -> None:
    writer = render.ChunkWriter("chatcmpl-1", "m")
    for chunk in (writer.role(), writer.text("hi "),
                  writer.text("h\u00e9!", render.logprobs(TOKENS)), writer.finish("stop"),
                  writer.usage_only(USE)):
        exactly(ChatCompletionChunk, event(chunk))


def test_usage_only_on_the_chunk_without_choices() -> None:
    writer = render.ChunkWriter("chatcmpl-1", "m", include_usage=True)
    chunks = [event(c) for c in (writer.role(), writer.text("hi"), writer.finish("length"),
                                 writer.usage_only(USE))]
    for chunk in chunks:
        exactly(ChatCompletionChunk, chunk)
    assert [(c["usage"] is not None, bool(c["choices"])) for c in chunks] == [
        (False, True), (False, True), (False, True), (True, False)]
    plain = render.ChunkWriter("chatcmpl-1", "m")
    assert ["usage" in event(c) for c in (plain.role(), plain.finish("stop"))] == [False, False]


@pytest.mark.parametrize("error", [
    APIError(503, "backend went away", code="upstream_unavailable"),
    APIError(400, "top_p: too high", param="top_p", code="invalid_value"),
    StreamRegistry.error(),
])
def test_error_event(error: APIError) -> None:
    exactly(ErrorResponse, event(render.event(error.body())))


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(encoding: str) -> None:
    reply = embedding_pb2.EmbedResponse(model="e", prompt_tokens=5, dimensions=2, embeddings=[
        embedding_pb2.Embedding(values=[0.1, -0.25]), embedding_pb2.Embedding(values=[1, 0])])
    body = orjson.loads(orjson.dumps(response_body(reply, encoding),
                                     option=orjson.OPT_SERIALIZE_NUMPY))
    exactly(EmbeddingResponse, body)
    assert (body["data"][0]["embedding"] == [0.1, -0.25]) == (encoding == "float")
