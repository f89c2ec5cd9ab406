"""The one relay of the router's ChatStream, shared by the REST SSE stream and grpc-web.

It owns everything about the upstream call that does not depend on the client's wire format:
reading it, time to first token and token counts, the graceful-shutdown registry (a stream still
open when the drain ends fails with the shutdown error), cancelling the call when the relay ends,
and which failure ends a stream (the upstream's status, the shutdown, or a router that stopped
before its reply finished). ``StreamFailed`` carries that failure and spells it for either wire.
With tracing on it also puts the reply's GenAI attributes (model served, tokens, finish reason,
time to first chunk) and a first-token event on the request's span.

Every failure seen by ``messages()`` is counted once in the error metric: it reaches the client
inside an already answered response, where the HTTP status does not show it. ``first()`` reads
before anything is answered, so its failures are left to the caller's status (REST: a real HTTP
error, counted with it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
from connectrpc.errors import ConnectError

from upcoach_llm.api import router_pb2
from upcoach_llm.common import tracing
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.errors import APIError, from_grpc
from upcoach_llm.gateway.fields import CHAT
from upcoach_llm.gateway.grpcweb.status import from_refusal, from_rpc_error

log = get_logger(__name__)

class StreamFailed(Exception):
    """Why a chat failed or its stream ended early: the upstream's status, or the gateway's own
    refusal."""

    def __init__(self, upstream: grpc.aio.AioRpcError | None = None,
                 refusal: APIError | None = None) -> None:
        super().__init__(upstream.details() if upstream else refusal.message if refusal else "")
        self.upstream = upstream
        self.refusal = refusal

    def rest(self) -> APIError:
        """The REST error, naming the failed field as the chat request spells it."""
        if self.upstream is not None:
            return from_grpc(self.upstream, CHAT)
        assert self.refusal is not None
        return self.refusal

    def connect(self) -> ConnectError:
        """The grpc-web/Connect error, with the upstream's google.rpc details as they came."""
        if self.upstream is not None:
            return from_rpc_error(self.upstream)
        assert self.refusal is not None
        return from_refusal(self.refusal)


class ChatRelay:
    """One ChatStream call, from the request to the cancelled call."""

    def __init__(self, deps: Dependencies, request: router_pb2.ChatStreamRequest, *,
                 timeout: float, started: float, model: str = "") -> None:
        self._metrics = deps.metrics
        self._streams = deps.streams
        self._call = deps.upstream.router.ChatStream(request, timeout=timeout)
        self._started = started
        self._text_seen = False
        self.model = model
        """The model served (from the router's route message), else the one requested."""

    async def first(self) -> router_pb2.ChatStreamResponse:
        """The router's first message (its route), before the caller answers anything."""
        try:
            message = await self._read()
        except BaseException:
            self._call.cancel()
            raise
        if message is grpc.aio.EOF:
            self._call.cancel()
            raise StreamFailed(refusal=APIError(
                502, "the router ended the stream without a reply",
                code="upstream_protocol_error"))
        self._seen(message)
        return message

    async def messages(self, first: router_pb2.ChatStreamResponse | None = None
                       ) -> AsyncIterator[router_pb2.ChatStreamResponse]:
        """Every message of the stream (``first`` again when given), until the finish.

        Close it with ``contextlib.aclosing`` so the upstream call is cancelled at once when the
        client goes away.
        """
        streams = self._streams
        streams.add(self._call)
        finished = False
        try:
            message = first if first is not None else await self._read()
            while message is not grpc.aio.EOF:
                if message is not first:
                    self._seen(message)
                finished = finished or bool(message.finish_reason)
                yield message
                try:
                    message = await self._read()
                except StreamFailed:
                    if not finished:
                        raise
                    log.info("the router's stream failed after its finish; the reply was whole")
                    return
            if not finished:
                raise StreamFailed(refusal=APIError(
                    502, "the router ended the stream before the reply finished",
                    code="upstream_protocol_error"))
        except StreamFailed:
            self._metrics.error()
            raise
        finally:
            streams.discard(self._call)
            self._call.cancel()

    async def _read(self) -> router_pb2.ChatStreamResponse:
        try:
            return await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise StreamFailed(upstream=exc) from None
        except asyncio.CancelledError:
            if not self._streams.cut_by_shutdown(self._call):
                raise
            raise StreamFailed(refusal=self._streams.error()) from None

    def _seen(self, message: router_pb2.ChatStreamResponse) -> None:
        """Metrics for one message: the model it names, time to first token, tokens."""
        if message.HasField("route"):  # "" for a crisis reply to a model not in the catalog
            self.model = message.route.model
        if message.text and not self._text_seen:
            self._text_seen = True
            first_token_s = time.perf_counter() - self._started
            self._metrics.first_token(self.model, first_token_s)
            if tracing.ENABLED:
                span = tracing.current_span()
                span.add_event(tracing.FIRST_TOKEN_EVENT)
                span.set_attribute(tracing.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, first_token_s)
        if message.HasField("usage"):
            self._metrics.tokens(self.model, message.usage.completion_tokens)
        if tracing.ENABLED and message.finish_reason:
            tracing.set_attributes(tracing.chat_reply_attributes(
                self.model, message.finish_reason,
                message.usage if message.HasField("usage") else None))
