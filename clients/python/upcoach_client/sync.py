"""The blocking client: the same calls as AsyncUpcoachClient, over synchronous gRPC channels.

    with UpcoachClient(ServerAddresses.from_env()) as client:
        reply = client.chat([("user", "Give me a motivation tip")], max_tokens=64)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

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


class UpcoachClient:
    """Typed blocking gRPC client of the router, embedding and model-registry services."""

    def __init__(self, addresses: ServerAddresses | None = None) -> None:
        self.addresses = addresses or ServerAddresses()
        self._channels = [grpc.insecure_channel(a, options=channel_options()) for a in
                          (self.addresses.router, self.addresses.embedding,
                           self.addresses.registry)]
        stubs = Stubs.over(self._channels, self.addresses)
        self._router, self._embedding = stubs.router, stubs.embedding
        self._registry, self._admin_registry = stubs.registry, stubs.admin_registry

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> UpcoachClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=self.addresses.timeout if timeout is None
                          else timeout)
        except grpc.RpcError as exc:
            raise from_rpc(exc) from None

    def _stream(self, method: Any, request: Any, timeout: float | None) -> Iterator[Any]:
        call = self._call(method, request, timeout)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc(exc) from None
        finally:
            call.cancel()

    # -- chat ------------------------------------------------------------------------------

    def chat_stream(self, messages: Iterable[MessageLike], *, model: str = "",
                    feature: str = "", coaching_context: str = "", locale: str = "",
                    more_locales: Sequence[str] = (), timeout: float | None = None,
                    **sampling: Any) -> Iterator[ChatChunk]:
        """Streams a routed reply; the first chunk carries the route, the last the usage.
        ``locale`` (a BCP 47 tag, e.g. "es") is the language of a crisis response, then
        ``more_locales`` (at most 8, most preferred first).
        Sampling: max_tokens, temperature, top_p, stop, seed."""
        request = convert.chat_request(convert.as_messages(messages), model=model,
                                       feature=feature, coaching_context=coaching_context,
                                       locale=locale, more_locales=more_locales, **sampling)
        for proto in self._stream(self._router.ChatStream, request, timeout):
            yield convert.chunk(proto)

    def chat(self, messages: Iterable[MessageLike], **options: Any) -> ChatReply:
        """The whole routed reply (the stream, collected)."""
        joiner = convert.ReplyJoiner()
        for item in self.chat_stream(messages, **options):
            reply = joiner.add(item)
            if reply is not None:
                return reply
        raise RuntimeError("the reply ended without a finish reason")

    def route(self, messages: Iterable[MessageLike], *, model: str = "", feature: str = "",
              coaching_context: str = "") -> Route:
        reply = self._call(self._router.Route, router_pb2.RouteRequest(
            model=model, feature=feature, coaching_context=coaching_context,
            messages=convert.messages_proto(convert.as_messages(messages))))
        return convert.route(reply.route)

    def decide_inference(self, mode: str, prompt: str = "", *,
                         messages: Iterable[MessageLike] | None = None,
                         server_available: bool = True, on_device_available: bool = True,
                         max_prompt_length: int | None = None, locale: str = "",
                         more_locales: Sequence[str] = (), feature: str = "",
                         coaching_context: str = "") -> Decision:
        """Where to run the prompt, or the last user message of ``messages`` (the crisis check
        then reads the whole conversation); not both. With ``feature`` (or without it, the one
        ``coaching_context`` implies) a server-only one is always the server's, and the decision
        names the feature's edge model."""
        request = convert.decide_request(
            mode, prompt, server_available, on_device_available, max_prompt_length,
            convert.as_messages(messages) if messages is not None else None, locale,
            more_locales, feature, coaching_context)
        return convert.decision(self._call(self._router.DecideInference, request))

    def list_backends(self) -> list[BackendInfo]:
        reply = self._call(self._router.ListBackends, router_pb2.ListBackendsRequest())
        return [convert.backend(b) for b in reply.backends]

    # -- embeddings ------------------------------------------------------------------------

    def embed(self, texts: Iterable[str], *, model: str = "") -> Embeddings:
        return convert.embeddings(self._call(self._embedding.Embed,
                                             convert.embed_request(texts, model)))

    def search(self, query: str, *, top_k: int = 5, category: str = "") -> list[SearchHit]:
        return convert.hits(self._call(self._embedding.SearchContent,
                                       embedding_pb2.SearchContentRequest(
                                           query=query, top_k=top_k, category=category)))

    # -- registry --------------------------------------------------------------------------

    def list_models(self, kind: str | None = None) -> list[ModelInfo]:
        reply = self._call(self._registry.ListModels, convert.list_models_request(kind))
        return [convert.model(m) for m in reply.models]

    def get_model(self, name: str) -> ModelInfo:
        reply = self._call(self._registry.GetModel, model_registry_pb2.GetModelRequest(name=name))
        return convert.model(reply.model)

    def list_edge_models(self, platform: str, ram_gb: float) -> EdgeModels:
        return convert.edge_models(self._call(self._registry.ListEdgeModels,
                                              convert.edge_request(platform, ram_gb)))

    def pull_model(self, name: str, *, backend: str = "",
                   timeout: float | None = None) -> Iterator[PullStep]:
        request = model_registry_pb2.PullModelRequest(name=name, backend=backend)
        for proto in self._stream(self._admin_registry.PullModel, request, timeout):
            yield convert.pull_step(proto)
