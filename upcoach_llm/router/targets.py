"""Where the router runs a chat on one backend: remote engines directly, in-process ones through
the generation service.

A remote backend (Ollama, an OpenAI-compatible server such as vLLM) is called by its type's chat
engine in the router's own process, so its tokens cross one Python process, not two. An
in-process backend (embedded llama.cpp) lives in the generation service, reached over
GenerateStream. Both give the same ``Piece`` values and raise errors the executor tells apart:
``grpc.aio.AioRpcError`` from the generation service, ServiceError from an engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from upcoach_llm.api import common_pb2, generation_pb2, generation_pb2_grpc
from upcoach_llm.api.names import FINISH_REASON_VALUES
from upcoach_llm.common.backends import BackendConfig, BackendsFile
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.engines.base import ChatEngine, Finished
from upcoach_llm.engines.types import engines_for, type_of


@dataclass(frozen=True, slots=True)
class Piece:
    """Text produced since the last piece; the last piece carries the finish reason and usage."""

    text: str = ""
    finish_reason: int = common_pb2.FINISH_REASON_UNSPECIFIED
    usage: common_pb2.Usage | None = None


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
    """A remote engine's reply, called from this process."""
    items = engine.stream(backend.engine_model(chat.model), chat.messages, chat.sampling)
    async with aclosing(items):
        async for item in items:
            if isinstance(item, Finished):
                yield Piece(finish_reason=FINISH_REASON_VALUES[item.reason], usage=item.usage())
            else:
                yield Piece(item.text)


async def generation_pieces(stub: generation_pb2_grpc.GenerationServiceStub, backend: str,
                            chat: Chat, timeout: float | None) -> AsyncIterator[Piece]:
    """An in-process backend's reply, streamed by the generation service."""
    call = stub.GenerateStream(generation_pb2.GenerateStreamRequest(
        request_id=chat.request_id, model=chat.model, backend=backend,
        messages=chat.messages_proto, sampling=chat.sampling_proto), timeout=timeout)
    try:
        async for chunk in call:
            yield Piece(chunk.text, chunk.finish_reason,
                        chunk.usage if chunk.HasField("usage") else None)
    finally:
        call.cancel()
