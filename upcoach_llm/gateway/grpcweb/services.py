"""The app-facing RPCs, served over grpc-web and Connect by proxying to the gRPC services.

Requests and responses are the same protobuf messages, passed through untouched; a failed call's
status code reaches the client unchanged. ChatStream goes through the relay it shares with the
REST SSE stream (upcoach_llm.gateway.relay): message by message, cancelled when the client goes
away, and a
stream still open when the gateway's drain runs out ends with UNAVAILABLE "server shutting down".
ChatStream and Chat charge the caller's token budget (RATE_LIMIT_TPM) as the REST chats do: a
refusal is RESOURCE_EXHAUSTED with the ``X-RateLimit-*-Tokens`` headers and a RetryInfo.
RPCs not listed here (ListBackends, IndexContent, PullModel) stay UNIMPLEMENTED on the public port.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import TypeVar

import grpc
from connectrpc.request import RequestContext
from starlette.types import ASGIApp

from upcoach_llm.api import (
    common_pb2,
    embedding_connect,
    embedding_pb2,
    model_registry_connect,
    model_registry_pb2,
    router_connect,
    router_pb2,
)
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.grpcweb.interceptors import ADMISSION, GateInterceptor
from upcoach_llm.gateway.grpcweb.status import from_refusal, from_rpc_error
from upcoach_llm.gateway.relay import ChatRelay, StreamFailed
from upcoach_llm.gateway.security.token_budget import TokenSpend, estimate_prompt

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

    async def chat_stream(self, request: router_pb2.ChatStreamRequest,
                          ctx: RequestContext) -> AsyncIterator[router_pb2.ChatStreamResponse]:
        spend = await self._reserve(request.messages, ctx)
        relay = ChatRelay(self._deps, request, timeout=self._timeout(ctx),
                          started=time.perf_counter())
        try:
            async with contextlib.aclosing(relay.messages()) as messages:
                async for message in messages:
                    await spend.follow(message)
                    yield message
        except StreamFailed as failure:
            raise failure.connect() from None
        finally:
            spend.close_later()

    async def chat(self, request: router_pb2.ChatRequest,
                   ctx: RequestContext) -> router_pb2.ChatResponse:
        spend = await self._reserve(request.messages, ctx)
        reply = await self._unary(self._deps.upstream.router.Chat(
            request, timeout=self._timeout(ctx)))
        self._deps.metrics.tokens(reply.route.model, reply.usage.completion_tokens)
        await spend.finish(reply.usage if reply.HasField("usage") else None)
        return reply

    async def _reserve(self, messages: Iterable[common_pb2.ChatMessage],
                       ctx: RequestContext) -> TokenSpend:
        """Charges the prompt's estimate to the caller's token budget, or refuses the call."""
        admission = ADMISSION.get()
        client = admission.client if admission else "unknown"
        try:
            spend = await self._deps.tokens.reserve(
                client, estimate_prompt(m.content for m in messages))
        except APIError as refusal:
            _set_headers(ctx, refusal.headers)
            raise from_refusal(refusal) from None
        _set_headers(ctx, spend.headers())
        return spend

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
        return await self._unary(self._deps.upstream.embedding.Embed(
            request, timeout=self._timeout(ctx)))

    async def search_content(self, request: embedding_pb2.SearchContentRequest,
                             ctx: RequestContext) -> embedding_pb2.SearchContentResponse:
        return await self._unary(self._deps.upstream.embedding.SearchContent(
            request, timeout=self._timeout(ctx)))


class RegistryProxy(_Proxy, model_registry_connect.ModelRegistryService):
    """ListModels, GetModel and ListEdgeModels (the app picks its on-device model with these)."""

    async def list_models(self, request: model_registry_pb2.ListModelsRequest,
                          ctx: RequestContext) -> model_registry_pb2.ListModelsResponse:
        return await self._unary(self._deps.upstream.registry.ListModels(
            request, timeout=self._timeout(ctx)))

    async def get_model(self, request: model_registry_pb2.GetModelRequest,
                        ctx: RequestContext) -> model_registry_pb2.GetModelResponse:
        return await self._unary(self._deps.upstream.registry.GetModel(
            request, timeout=self._timeout(ctx)))

    async def list_edge_models(self, request: model_registry_pb2.ListEdgeModelsRequest,
                               ctx: RequestContext) -> model_registry_pb2.ListEdgeModelsResponse:
        return await self._unary(self._deps.upstream.registry.ListEdgeModels(
            request, timeout=self._timeout(ctx)))


def _set_headers(ctx: RequestContext, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        ctx.response_headers[name] = value


def build_apps(deps: Dependencies) -> dict[str, ASGIApp]:
    """The Connect ASGI apps by service path (``/upcoach.llm.v1.RouterService``)."""
    interceptors = [GateInterceptor(deps.gate)]
    limit = deps.settings.max_body_bytes
    apps = [
        router_connect.RouterServiceASGIApplication(
            RouterProxy(deps), interceptors=interceptors, read_max_bytes=limit),
        embedding_connect.EmbeddingServiceASGIApplication(
            EmbeddingProxy(deps), interceptors=interceptors, read_max_bytes=limit),
        model_registry_connect.ModelRegistryServiceASGIApplication(
            RegistryProxy(deps), interceptors=interceptors, read_max_bytes=limit),
    ]
    return {app.path: app for app in apps}
