"""The asyncio client: chat through the router, embeddings and search, the model registry.

    async with AsyncUpcoachClient(ServerAddresses.from_env()) as client:
        async for chunk in client.chat_stream([{"role": "user", "content": "A habit tip?"}]):
            print(chunk.text, end="")

Create it inside the event loop that uses it (grpc.aio channels bind to their loop). Every
failure is an UpcoachError carrying the gRPC status code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc

from upcoach_client import convert
from upcoach_client.api import (
    embedding_pb2,
    model_registry_pb2,
    router_pb2,
)
from upcoach_client.api.channel_config import channel_options
from upcoach_client.config import ServerAddresses
from upcoach_client.errors import from_rpc
from upcoach_client.stubs import Stubs
from upcoach_client.types import (
    BackendInfo,
    ChatChunk,
    ChatReply,
    Decision,
    EdgeModels,
    Embeddings,
    MessageLike,
    ModelInfo,
    PullStep,
    Route,
    SearchHit,
)

T = TypeVar("T")


class AsyncUpcoachClient:
    """Typed asyncio gRPC client of the router, embedding and model-registry services."""

    def __init__(self, addresses: ServerAddresses | None = None) -> None:
        self.addresses = addresses or ServerAddresses()
        self._channels = [grpc.aio.insecure_channel(a, options=channel_options()) for a in
                          (self.addresses.router, self.addresses.embedding,
                           self.addresses.registry)]
        stubs = Stubs.over(self._channels, self.addresses)
        self._router, self._embedding = stubs.router, stubs.embedding
        self._registry, self._admin_registry = stubs.registry, stubs.admin_registry

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def __aenter__(self) -> AsyncUpcoachClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _timeout(self, timeout: float | None) -> float:
        return self.addresses.timeout if timeout is None else timeout

    async def _unary(self, call: Any) -> Any:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise from_rpc(exc) from None

    @staticmethod
    async def _streamed(call: Any, convert_one: Callable[[Any], T]) -> AsyncIterator[T]:
        """The converted messages of a server stream; the call is cancelled when the caller
        stops reading."""
        try:
            async for proto in call:
                yield convert_one(proto)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc(exc) from None
        finally:
            call.cancel()

    # -- chat ------------------------------------------------------------------------------

    async def chat_stream(self, messages: Iterable[MessageLike], *, model: str = "",
                          feature: str = "", coaching_context: str = "", locale: str = "",
                          more_locales: Sequence[str] = (), timeout: float | None = None,
                          **sampling: Any,
                          ) -> AsyncIterator[ChatChunk]:
        """Streams a routed reply; the first chunk carries the route, the last the usage.
        ``locale`` (a BCP 47 tag, e.g. "es") is the language of a crisis response, then
        ``more_locales`` (at most 8, most preferred first).
        Sampling: max_tokens, temperature, top_p, stop, seed."""
        request = convert.chat_request(convert.as_messages(messages), model=model,
                                       feature=feature, coaching_context=coaching_context,
                                       locale=locale, more_locales=more_locales, **sampling)
        call = self._router.ChatStream(request, timeout=self._timeout(timeout))
        async for chunk in self._streamed(call, convert.chunk):
            yield chunk

    async def chat(self, messages: Iterable[MessageLike], **options: Any) -> ChatReply:
        """The whole routed reply (the stream, collected)."""
        return await collect(self.chat_stream(messages, **options))

    async def route(self, messages: Iterable[MessageLike], *, model: str = "",
                    feature: str = "", coaching_context: str = "") -> Route:
        reply = await self._unary(self._router.Route(router_pb2.RouteRequest(
            model=model, feature=feature, coaching_context=coaching_context,
            messages=convert.messages_proto(convert.as_messages(messages))),
            timeout=self._timeout(None)))
        return convert.route(reply.route)

    async def decide_inference(self, mode: str, prompt: str = "", *,
                               messages: Iterable[MessageLike] | None = None,
                               server_available: bool = True, on_device_available: bool = True,
                               max_prompt_length: int | None = None, locale: str = "",
                               more_locales: Sequence[str] = (), feature: str = "",
                               coaching_context: str = "", timeout: float | None = None,
                               ) -> Decision:
        """Where to run the prompt, or the last user message of ``messages`` (the crisis check
        then reads the whole conversation); not both. With ``feature`` (or without it, the one
        ``coaching_context`` implies) a server-only one is always the server's, and the decision
        names the feature's edge model."""
        request = convert.decide_request(
            mode, prompt, server_available, on_device_available, max_prompt_length,
            convert.as_messages(messages) if messages is not None else None, locale,
            more_locales, feature, coaching_context)
        return convert.decision(await self._unary(
            self._router.DecideInference(request, timeout=self._timeout(timeout))))

    async def list_backends(self) -> list[BackendInfo]:
        reply = await self._unary(self._router.ListBackends(
            router_pb2.ListBackendsRequest(), timeout=self._timeout(None)))
        return [convert.backend(b) for b in reply.backends]

    # -- embeddings ------------------------------------------------------------------------

    async def embed(self, texts: Iterable[str], *, model: str = "") -> Embeddings:
        return convert.embeddings(await self._unary(self._embedding.Embed(
            convert.embed_request(texts, model), timeout=self._timeout(None))))

    async def search(self, query: str, *, top_k: int = 5, category: str = "") -> list[SearchHit]:
        return convert.hits(await self._unary(self._embedding.SearchContent(
            embedding_pb2.SearchContentRequest(query=query, top_k=top_k, category=category),
            timeout=self._timeout(None))))

    # -- registry --------------------------------------------------------------------------

    async def list_models(self, kind: str | None = None) -> list[ModelInfo]:
        reply = await self._unary(self._registry.ListModels(
            convert.list_models_request(kind), timeout=self._timeout(None)))
        return [convert.model(m) for m in reply.models]

    async def get_model(self, name: str) -> ModelInfo:
        reply = await self._unary(self._registry.GetModel(
            model_registry_pb2.GetModelRequest(name=name), timeout=self._timeout(None)))
        return convert.model(reply.model)

    async def list_edge_models(self, platform: str, ram_gb: float) -> EdgeModels:
        return convert.edge_models(await self._unary(self._registry.ListEdgeModels(
            convert.edge_request(platform, ram_gb), timeout=self._timeout(None))))

    async def pull_model(self, name: str, *, backend: str = "",
                         timeout: float | None = None) -> AsyncIterator[PullStep]:
        call = self._admin_registry.PullModel(
            model_registry_pb2.PullModelRequest(name=name, backend=backend),
            timeout=self._timeout(timeout))
        async for step in self._streamed(call, convert.pull_step):
            yield step


async def collect(chunks: AsyncIterator[ChatChunk]) -> ChatReply:
    """Joins a chunk stream into one reply."""
    joiner = convert.ReplyJoiner()
    async for item in chunks:
        reply = joiner.add(item)
        if reply is not None:
            return reply
    raise RuntimeError("the reply ended without a finish reason")
