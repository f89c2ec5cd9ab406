"""Chat completions through the router: cache lookup, then a whole reply or an SSE stream.

A cache hit is answered without calling the router, whole or replayed as SSE. A streamed request
waits for the router's first message before answering, so routing failures (unknown model or
context) are real HTTP errors; a failure after that is an error event inside the stream followed
by ``[DONE]``. When the client goes away the router call is cancelled. A finished reply is stored
in the cache after the response has gone out, so the store adds nothing to the latency.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from upcoach_llm.api import router_pb2
from upcoach_llm.api.names import FINISH_REASON_NAMES
from upcoach_llm.common import tracing
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.chat import convert, render
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.fields import CHAT
from upcoach_llm.gateway.http.access import MODEL_KEY, REQUEST_ID_KEY, TENANT_KEY
from upcoach_llm.gateway.relay import ChatRelay, StreamFailed
from upcoach_llm.gateway.store.cache import CachedReply
from upcoach_llm.gateway.store.link import RedisDown
from upcoach_llm.gateway.upstream import call_unary

log = get_logger(__name__)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChatServing:
    """Serves chat completions and coaching chats."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def create(self, request: Request, body: ChatCompletionRequest, *,
                     coaching_context: str = "", extra: dict[str, str] | None = None) -> Response:
        started = time.perf_counter()
        deps = self._deps
        cid = render.completion_id()
        request_id = request.scope["state"].get(REQUEST_ID_KEY, "")
        headers = {"X-Cache": "MISS"}
        if tracing.ENABLED:
            tracing.set_attributes(tracing.chat_request_attributes(
                body.model, body.token_limit(), body.temperature))
        cache_key = None
        if deps.cache.applies(temperature=body.temperature, seed=body.seed):
            cache_key = deps.cache.key(convert.canonical(body, coaching_context),
                                       tenant=request.scope["state"].get(TENANT_KEY),
                                       feature=body.feature)
            if "no-cache" not in request.headers.get("cache-control", ""):
                hit = await self._lookup(cache_key)
                if hit is not None:
                    request.scope["state"][MODEL_KEY] = hit.model
                    headers["X-Cache"] = "HIT"
                    if tracing.ENABLED:
                        tracing.set_attributes({tracing.GEN_AI_RESPONSE_MODEL: hit.model,
                                                "upcoach.cache": "hit"})
                    return _replay(hit, body, cid, headers, extra)
        fields = {"request_id": request_id, "model": body.model or "",
                  "feature": body.feature or "", "coaching_context": coaching_context,
                  "messages": convert.messages(body), "sampling": convert.sampling(body)}
        if body.stream:
            return await self._stream(request, body, fields, cid, headers, cache_key, started)
        reply = await call_unary(deps.upstream.router.Chat(
            router_pb2.ChatRequest(**fields), timeout=deps.settings.upstream_timeout_s), CHAT)
        model = reply.route.model
        request.scope["state"][MODEL_KEY] = model
        finish = FINISH_REASON_NAMES.get(reply.finish_reason)
        deps.metrics.tokens(model, reply.usage.completion_tokens)
        if tracing.ENABLED:
            tracing.set_attributes(tracing.chat_reply_attributes(model, reply.finish_reason,
                                                                 reply.usage))
        store = None
        if cache_key and finish:
            store = BackgroundTask(self._store, cache_key, CachedReply(
                model, reply.text, finish, reply.usage.prompt_tokens,
                reply.usage.completion_tokens))
        content = render.completion(cid, model, reply.text, finish,
                                    render.usage(reply.usage.prompt_tokens,
                                                 reply.usage.completion_tokens), extra)
        headers["Server-Timing"] = render.server_timing(reply.usage)
        return Response(content, media_type="application/json", headers=headers,
                        background=store)

    async def _stream(self, request: Request, body: ChatCompletionRequest, fields: dict,
                      cid: str, headers: dict[str, str], cache_key: str | None,
                      started: float) -> Response:
        deps = self._deps
        relay = ChatRelay(deps, router_pb2.ChatStreamRequest(**fields),
                          timeout=deps.settings.upstream_timeout_s, started=started,
                          model=body.model or "")
        try:
            first = await relay.first()
        except StreamFailed as failure:
            raise failure.rest() from None
        request.scope["state"][MODEL_KEY] = relay.model
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = self._events(relay, first, cid, include_usage, cache_key)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={**headers, **SSE_HEADERS})

    async def _events(self, relay: ChatRelay, first: router_pb2.ChatStreamResponse, cid: str,
                      include_usage: bool, cache_key: str | None) -> AsyncIterator[bytes]:
        """The relay's messages as SSE chunks; a failure is one error event before [DONE]."""
        writer = render.ChunkWriter(cid, relay.model)
        parts: list[str] = []
        reply: CachedReply | None = None
        try:
            async with contextlib.aclosing(relay.messages(first)) as messages:
                async for message in messages:
                    if message is first:
                        yield writer.role()
                    if message.text:
                        parts.append(message.text)
                        yield writer.text(message.text)
                    if message.finish_reason:
                        reason = FINISH_REASON_NAMES.get(message.finish_reason, "stop")
                        use = render.usage(message.usage.prompt_tokens,
                                           message.usage.completion_tokens)
                        yield writer.finish(reason, use)
                        yield render.timing_comment(message.usage)
                        if include_usage:
                            yield writer.usage_only(use)
                        reply = CachedReply(relay.model, "".join(parts), reason,
                                            use["prompt_tokens"], use["completion_tokens"])
        except StreamFailed as failure:
            reply = None
            yield render.event(failure.rest().body())
        yield render.DONE
        if cache_key and reply is not None:
            await self._store(cache_key, reply)

    async def _lookup(self, key: str) -> CachedReply | None:
        try:
            hit = await self._deps.cache.get(key)
        except RedisDown:
            return None
        if hit is None:
            self._deps.metrics.cache_miss()
        else:
            self._deps.metrics.cache_hit()
        return hit

    async def _store(self, key: str, reply: CachedReply) -> None:
        with contextlib.suppress(RedisDown):
            await self._deps.cache.put(key, reply)


def _replay(hit: CachedReply, body: ChatCompletionRequest, cid: str, headers: dict[str, str],
            extra: dict[str, str] | None) -> Response:
    use = render.usage(hit.prompt_tokens, hit.completion_tokens)
    if not body.stream:
        return Response(render.completion(cid, hit.model, hit.content, hit.finish_reason, use,
                                          extra),
                        media_type="application/json", headers=headers)
    writer = render.ChunkWriter(cid, hit.model)
    events = [writer.role(), *(writer.text(p) for p in render.replay_pieces(hit.content)),
              writer.finish(hit.finish_reason, use)]
    if body.stream_options and body.stream_options.include_usage:
        events.append(writer.usage_only(use))
    events.append(render.DONE)
    return Response(b"".join(events), media_type="text/event-stream",
                    headers={**headers, **SSE_HEADERS})
