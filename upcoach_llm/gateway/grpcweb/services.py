"""The app-facing RPCs, served over grpc-web and Connect by proxying to the gRPC services.

Requests and responses are the same protobuf messages, passed through untouched; a failed call's
status code reaches the client unchanged. Chat and ChatStream go through the chat pipeline the
REST chats share (upcoach_llm.gateway.chat.pipeline): the exact cache (scoped by API key as on
REST, skipped with ``cache-control: no-cache`` request metadata), the semantic cache for the
cacheable features, the caller's token budget (RATE_LIMIT_TPM), then the router. A cache hit comes
back as the router's own messages, with ``x-cache: HIT`` (and ``x-cache-similarity`` for a
paraphrase) in the response metadata; every reply carries ``x-cache``, the ``X-RateLimit-*-Tokens``
headers when the router was called, and ``x-safety-category`` for a crisis reply. A token budget
refusal is RESOURCE_EXHAUSTED with the ``X-RateLimit-*-Tokens`` headers and a RetryInfo.
ChatStream is relayed message by message, cancelled when the client goes away, and a stream still
open when the gateway's drain runs out ends with UNAVAILABLE "server shutting down".
RPCs not listed here (ListBackends, IndexContent, PullModel) stay UNIMPLEMENTED on the public port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from starlette.types import ASGIApp

from upcoach_llm.api import (
    embedding_connect,
    embedding_pb2,
    model_registry_connect,
    model_registry_pb2,
    router_connect,
    router_pb2,
)
from upcoach_llm.common.errors import ServiceError
from upcoach_llm.common.locales import check_locales
from upcoach_llm.gateway.chat.pipeline import (
    Caller,
    ChatPipeline,
    LiveStream,
    WholeReply,
    no_cache,
)
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.embeddings.serving import charged_embed
from upcoach_llm.gateway.errors import APIError, public_message
from upcoach_llm.gateway.grpcweb import convert
from upcoach_llm.gateway.grpcweb.codecs import quiet_codecs
from upcoach_llm.gateway.grpcweb.dispatch import SCOPE_STATE
from upcoach_llm.gateway.grpcweb.interceptors import ADMISSION, GateInterceptor
from upcoach_llm.gateway.grpcweb.status import from_refusal, from_rpc_error, from_service_error
from upcoach_llm.gateway.http.access import REQUEST_ID_KEY
from upcoach_llm.gateway.relay import StreamFailed
from upcoach_llm.gateway.security.gate import Admission

T = TypeVar("T")


class _Proxy:
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    def _timeout(self, ctx: RequestContext) -> float:
        remaining = ctx.timeout_ms
        default = self._deps.settings.upstream_timeout_s
        return min(default, remaining / 1000) if remaining is not None else default

    async def _unary(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None


class RouterProxy(_Proxy, router_connect.RouterService):
    """ChatStream (chat and coaching chat), Chat, Route and DecideInference."""

    def __init__(self, deps: Dependencies) -> None:
        super().__init__(deps)
        self._pipeline = ChatPipeline(deps)

    async def chat_stream(self, request: router_pb2.ChatStreamRequest,
                          ctx: RequestContext) -> AsyncIterator[router_pb2.ChatStreamResponse]:
        try:
            answer = await self._answer(request, ctx, stream=True)
        except StreamFailed as failure:
            # The router failed before its first message. REST answers that with an HTTP error
            # status; here the call's HTTP status is 200, so it is counted as a relayed one is.
            self._deps.metrics.error()
            raise failure.connect() from None
        assert isinstance(answer, LiveStream)
        try:
            async with contextlib.aclosing(answer.messages()) as messages:
                async for message in messages:
                    yield message
        except StreamFailed as failure:
            raise failure.connect() from None
        finally:
            answer.done()

    async def chat(self, request: router_pb2.ChatRequest,
                   ctx: RequestContext) -> router_pb2.ChatResponse:
        try:
            answer = await self._answer(request, ctx, stream=False)
        except StreamFailed as failure:
            raise failure.connect() from None
        assert isinstance(answer, WholeReply)
        answer.done()
        return answer.reply

    async def _answer(self, request: router_pb2.ChatRequest | router_pb2.ChatStreamRequest,
                      ctx: RequestContext, *, stream: bool) -> WholeReply | LiveStream:
        """The pipeline's answer, its headers set as response metadata; a token budget refusal
        is RESOURCE_EXHAUSTED (or UNAVAILABLE) with its headers. The locale is checked first,
        as the router checks it: a cached reply must not answer a request the router refuses."""
        try:
            check_locales(request.locale, request.more_locales)
        except ServiceError as error:
            raise from_service_error(error) from None
        try:
            answer = await self._pipeline.reply(self._caller(request, ctx),
                                                convert.turn(request), stream=stream)
        except APIError as refusal:
            _set_headers(ctx, refusal.headers)
            raise from_refusal(refusal) from None
        _set_headers(ctx, answer.headers)
        return answer

    def _caller(self, request: router_pb2.ChatRequest | router_pb2.ChatStreamRequest,
                ctx: RequestContext) -> Caller:
        """The caller as the gate interceptor admitted it (``_admitted``)."""
        admission = _admitted()
        state = SCOPE_STATE.get() or {}
        return Caller(tenant=admission.tenant, client=admission.client,
                      request_id=request.request_id or state.get(REQUEST_ID_KEY, ""),
                      no_cache=no_cache(ctx.request_headers), state=state,
                      timeout_s=self._timeout(ctx))

    async def route(self, request: router_pb2.RouteRequest,
                    ctx: RequestContext) -> router_pb2.RouteResponse:
        return await self._unary(self._deps.upstream.router.Route(
            request, timeout=self._timeout(ctx)))

    async def decide_inference(self, request: router_pb2.DecideInferenceRequest,
                               ctx: RequestContext) -> router_pb2.DecideInferenceResponse:
        return await self._unary(self._deps.upstream.router.DecideInference(
            request, timeout=self._timeout(ctx)))


class EmbeddingProxy(_Proxy, embedding_connect.EmbeddingService):
    """Embed and SearchContent."""

    async def embed(self, request: embedding_pb2.EmbedRequest,
                    ctx: RequestContext) -> embedding_pb2.EmbedResponse:
        admission = _admitted()
        try:
            reply, spend = await charged_embed(
                self._deps, admission.client, request, lambda: self._unary(
                    self._deps.upstream.embedding.Embed(request, timeout=self._timeout(ctx))))
        except APIError as refusal:
            _set_headers(ctx, refusal.headers)
            raise from_refusal(refusal) from None
        _set_headers(ctx, spend.headers())
        return reply

    async def search_content(self, request: embedding_pb2.SearchContentRequest,
                             ctx: RequestContext) -> embedding_pb2.SearchContentResponse:
        return await self._unary(self._deps.upstream.embedding.SearchContent(
            request, timeout=self._timeout(ctx)))


class RegistryProxy(_Proxy, model_registry_connect.ModelRegistryService):
    """ListModels, GetModel and ListEdgeModels (the app picks its on-device model with these)."""

    async def list_models(self, request: model_registry_pb2.ListModelsRequest,
                          ctx: RequestContext) -> model_registry_pb2.ListModelsResponse:
        reply = await self._unary(self._deps.upstream.registry.ListModels(
            request, timeout=self._timeout(ctx)))
        for model in reply.models:
            _without_addresses(model)
        return reply

    async def get_model(self, request: model_registry_pb2.GetModelRequest,
                        ctx: RequestContext) -> model_registry_pb2.GetModelResponse:
        reply = await self._unary(self._deps.upstream.registry.GetModel(
            request, timeout=self._timeout(ctx)))
        _without_addresses(reply.model)
        return reply

    async def list_edge_models(self, request: model_registry_pb2.ListEdgeModelsRequest,
                               ctx: RequestContext) -> model_registry_pb2.ListEdgeModelsResponse:
        return await self._unary(self._deps.upstream.registry.ListEdgeModels(
            request, timeout=self._timeout(ctx)))


def _without_addresses(model: model_registry_pb2.Model) -> None:
    """A model's availability as callers outside the stack see it (errors.public_message)."""
    for availability in model.availability:
        availability.detail = public_message(availability.detail)


def _admitted() -> Admission:
    """The caller as the gate interceptor admitted it. Without an admission the call is refused
    rather than served with no key scope (the cache and budgets would be shared)."""
    admission = ADMISSION.get()
    if admission is None:
        raise ConnectError(Code.INTERNAL, "the call was not admitted")
    return admission


def _set_headers(ctx: RequestContext, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        ctx.response_headers[name] = value


def build_apps(deps: Dependencies) -> dict[str, ASGIApp]:
    """The Connect ASGI apps by service path (``/upcoach.llm.v1.RouterService``)."""
    options = {"interceptors": [GateInterceptor(deps.gate)],
               "read_max_bytes": deps.settings.max_body_bytes, "codecs": quiet_codecs()}
    apps = [
        router_connect.RouterServiceASGIApplication(RouterProxy(deps), **options),
        embedding_connect.EmbeddingServiceASGIApplication(EmbeddingProxy(deps), **options),
        model_registry_connect.ModelRegistryServiceASGIApplication(RegistryProxy(deps),
                                                                  **options),
    ]
    return {app.path: app for app in apps}
