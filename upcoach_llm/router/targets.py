"""Where the router runs a chat on one backend: remote engines directly, in-process ones through
the generation service.

A remote backend (Ollama, an OpenAI-compatible server such as vLLM) is called by its type's chat
engine in the router's own process, so its tokens cross one Python process, not two. An
in-process backend (embedded llama.cpp) lives in the generation service, reached over
GenerateStream. Both give the same ``Piece`` values and raise errors the executor tells apart:
``grpc.aio.AioRpcError`` from the generation service, ServiceError from an engine. With tracing
on, each attempt is a ``chat {model}`` CLIENT span (``traced_pieces``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from upcoach_llm.api import common_pb2, generation_pb2, generation_pb2_grpc
from upcoach_llm.api.names import FINISH_REASON_VALUES
from upcoach_llm.common import tracing
from upcoach_llm.common.backends import BackendConfig, BackendsFile
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.metrics import engine_meter
from upcoach_llm.engines.base import ChatEngine, Finished
from upcoach_llm.engines.types import engines_for, type_of


@dataclass(frozen=True, slots=True)
class Piece:
    """Text produced since the last piece, with its tokens' log probabilities when asked for;
    the last piece carries the finish reason and usage."""

    text: str = ""
    finish_reason: int = common_pb2.FINISH_REASON_UNSPECIFIED
    usage: common_pb2.Usage | None = None
    logprobs: tuple[common_pb2.TokenLogprob, ...] = ()

    @classmethod
    def joined(cls, pieces: list[Piece]) -> Piece:
        """One text piece of a run of them: the texts, and their log probabilities in order."""
        if len(pieces) == 1:
            return pieces[0]
        return cls("".join(p.text for p in pieces),
                   logprobs=tuple(lp for p in pieces for lp in p.logprobs))


@dataclass(frozen=True)
class Chat:
    """What every target needs: the request as protobuf (for generation) and as values."""

    request_id: str
    model: str
    messages: list[Message]
    sampling: Sampling
    messages_proto: list[common_pb2.ChatMessage]
    sampling_proto: common_pb2.SamplingParams


class RemoteEngines:
    """The chat engines of the remote backends, built once by their types."""

    def __init__(self, catalog: ModelsFile, backends: list[BackendConfig]) -> None:
        remote = BackendsFile(backends=[b for b in backends if not type_of(b).in_process])
        self.engines: dict[str, ChatEngine] = {
            backend.name: engine for backend, _, engine in engines_for(catalog, remote, "chat")}

    async def load(self) -> None:
        for engine in self.engines.values():
            await engine.load()

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.close()


async def engine_pieces(engine: ChatEngine, backend: BackendConfig,
                        chat: Chat) -> AsyncIterator[Piece]:
    """A remote engine's reply, called from this process (and counted in its engine metrics:
    the generation service never sees it)."""
    items = engine.stream(backend.engine_model(chat.model), chat.messages, chat.sampling)
    async with aclosing(items):
        async for item in items:
            if isinstance(item, Finished):
                engine_meter(chat.model, backend.name, backend.type).finished(
                    item.completion_tokens, item.time_to_first_token_ms)
                yield Piece(finish_reason=FINISH_REASON_VALUES[item.reason], usage=item.usage())
            else:
                yield Piece(item.text, logprobs=tuple(lp.to_proto() for lp in item.logprobs))


async def generation_pieces(stub: generation_pb2_grpc.GenerationServiceStub, backend: str,
                            chat: Chat, timeout: float | None) -> AsyncIterator[Piece]:
    """An in-process backend's reply, streamed by the generation service."""
    call = stub.GenerateStream(generation_pb2.GenerateStreamRequest(
        request_id=chat.request_id, model=chat.model, backend=backend,
        messages=chat.messages_proto, sampling=chat.sampling_proto), timeout=timeout)
    try:
        async for chunk in call:
            yield Piece(chunk.text, chunk.finish_reason,
                        chunk.usage if chunk.HasField("usage") else None, tuple(chunk.logprobs))
    finally:
        call.cancel()


async def traced_pieces(pieces: AsyncIterator[Piece], backend: BackendConfig,
                        chat: Chat) -> AsyncIterator[Piece]:
    """``pieces`` inside a CLIENT span ``chat {model}`` (tracing on), with the GenAI attributes of
    the request and of the reply and the time to the first text. The span is current while the
    first piece is read: the call to the backend, made then, carries it as its parent (gRPC
    metadata, HTTP headers); making it current for every later piece would only cost time."""
    span = tracing.client_span(f"{tracing.CHAT} {chat.model}", {
        tracing.GEN_AI_OPERATION_NAME: tracing.CHAT, tracing.GEN_AI_PROVIDER_NAME: backend.type,
        tracing.GEN_AI_REQUEST_MODEL: chat.model,
        tracing.GEN_AI_REQUEST_MAX_TOKENS: chat.sampling.max_tokens,
        tracing.GEN_AI_REQUEST_TEMPERATURE: chat.sampling.temperature,
        "upcoach.backend": backend.name})
    started = time.perf_counter()
    try:
        async with aclosing(pieces):
            token = tracing.attach(span)
            try:
                piece = await anext(pieces, None)
            finally:
                tracing.detach(token)
            # Until the first text, then plain relaying: this layer costs each piece little.
            while piece is not None and not piece.text:
                _finished(span, chat, piece)
                yield piece
                piece = await anext(pieces, None)
            if piece is None:
                return
            span.add_event(tracing.FIRST_TOKEN_EVENT)
            span.set_attribute(tracing.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                               time.perf_counter() - started)
            _finished(span, chat, piece)
            yield piece
            async for piece in pieces:
                if piece.finish_reason:
                    _finished(span, chat, piece)
                yield piece
    except GeneratorExit:
        raise
    except BaseException as exc:
        tracing.failed(span, exc)
        raise
    finally:
        span.end()


def _finished(span: object, chat: Chat, piece: Piece) -> None:
    """The reply's GenAI attributes on the span, from the piece that finishes it (if this is)."""
    if piece.finish_reason:
        tracing.set_attributes(tracing.chat_reply_attributes(
            chat.model, piece.finish_reason, piece.usage), span)
