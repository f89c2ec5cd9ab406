"""One chat through the gateway, whatever protocol asked for it: cache, router, then settling.

Every chat protocol (OpenAI's chat completions, the guide's coaching chat, Ollama's ``/api/chat``
and ``/api/generate``, and grpc-web/Connect's Chat and ChatStream) turns its request into a
``ChatTurn`` and its caller into a ``Caller``, and renders what the pipeline returns: REST through
``ChatPipeline.answer`` (failures as the REST error), grpc-web through ``ChatPipeline.reply``
(failures as ``StreamFailed``, which spells them for either wire). The pipeline speaks the
router's own messages:
a whole reply is a ``router_pb2.ChatResponse`` (``WholeReply``) and a stream is the router's
``ChatStreamResponse`` messages (``LiveStream``); a cache hit comes back in the same shapes,
so a renderer never knows where a reply came from. After an exact-cache miss the semantic cache
(chat/semantic.py) may answer with a paraphrase's reply (``X-Cache-Similarity``); otherwise a
reply that finishes is stored for it.

A streamed request waits for the router's first message before answering, so routing failures
(unknown model or context) are real errors of the call; a failure after that reaches the renderer
as ``StreamFailed`` from ``LiveStream.messages()``. When the client goes away the router call is
cancelled. What happens after a reply (the cache store) runs once the response has gone out:
``WholeReply.after`` is a background task for the response (``WholeReply.done()`` schedules it
where the response has none), ``LiveStream.done()`` schedules it when the renderer's stream ends,
however it ends.

``ChatTurn.locales`` are the router's ``locale`` and ``more_locales``, the languages a crisis
response may be in: a grpc-web request's own fields, or a REST request's ``Accept-Language``
(http/language.py, checked before anything else). They are not part of the cache key: a cached
reply is a model's, never a crisis response (those finish with content_filter, which is never
stored).

The caller's token budget (RATE_LIMIT_TPM, security/token_budget.py) is charged only when the
router is called (a cache hit spends nothing): the prompt's estimate before the call, a stream's
text as it passes, the router's usage when the reply finishes; a stream that ends otherwise keeps
what it relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.requests import Request

from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.api.names import (
    FINISH_REASON_NAMES,
    FINISH_REASON_VALUES,
    SAFETY_CATEGORY_NAMES,
)
from upcoach_llm.common import tracing
from upcoach_llm.common.locales import locale_fields
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.chat.render import replay_pieces
from upcoach_llm.gateway.chat.semantic import Pending, Probe
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.http.access import CLIENT_KEY, MODEL_KEY, REQUEST_ID_KEY, TENANT_KEY
from upcoach_llm.gateway.http.language import HEADER as ACCEPT_LANGUAGE
from upcoach_llm.gateway.http.language import preferred_locales
from upcoach_llm.gateway.relay import ChatRelay, StreamFailed
from upcoach_llm.gateway.security.token_budget import UNCOUNTED, TokenSpend, estimate_prompt
from upcoach_llm.gateway.store.cache import CachedReply
from upcoach_llm.gateway.store.link import RedisDown

log = get_logger(__name__)
_CACHEABLE_FINISH = frozenset({"stop", "length"})
# Statuses with which the router refuses a chat before any engine evaluates it: the request's
# token reservation is given back, so a client retrying after "every backend is busy" (429) or a
# mistake of its own spends nothing for work never done.
_REFUSED_BEFORE_WORK = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})


async def _refund_if_refused(spend: TokenSpend, failure: StreamFailed) -> None:
    if failure.upstream is not None and failure.upstream.code() in _REFUSED_BEFORE_WORK:
        await spend.settle(0, 0)


@dataclass(frozen=True)
class ChatTurn:
    """A chat request in the router's terms, and what the cache needs to know about it.

    ``canonical`` is everything that decides the reply and nothing else (the cache key's input);
    ``temperature`` and ``seed`` are what the caller set (None when unset), which decide whether
    the cache applies at all.
    """

    model: str
    feature: str
    coaching_context: str
    messages: list[common_pb2.ChatMessage]
    sampling: common_pb2.SamplingParams
    canonical: dict[str, Any]
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    locales: tuple[str, ...] = ()

    def fields(self, request_id: str) -> dict[str, Any]:
        return {"request_id": request_id, "model": self.model, "feature": self.feature,
                "coaching_context": self.coaching_context, "messages": self.messages,
                "sampling": self.sampling, **locale_fields(self.locales)}


def no_cache(headers: Mapping[str, str]) -> bool:
    """Whether the request's ``Cache-Control`` (an HTTP header, or grpc-web/Connect metadata)
    says ``no-cache``: neither cache is read for it, though its reply may still be stored."""
    return "no-cache" in headers.get("cache-control", "")


@dataclass(frozen=True)
class Caller:
    """Who asked for a chat, in the terms every protocol shares.

    ``tenant`` scopes cache entries (the key identity, None when auth is off); ``client`` is the
    token budget's bucket; ``state`` is the request's ASGI scope state, where the served model is
    reported for the metrics; ``timeout_s`` bounds the router call (None: UPSTREAM_TIMEOUT_S).
    """

    tenant: str | None
    client: str
    request_id: str
    no_cache: bool
    state: dict[str, Any]
    timeout_s: float | None = None

    @classmethod
    def of(cls, request: Request) -> Caller:
        """A REST request's caller, as the access middleware admitted it."""
        state = request.scope["state"]
        return cls(tenant=state.get(TENANT_KEY), client=state.get(CLIENT_KEY, ""),
                   request_id=state.get(REQUEST_ID_KEY, ""), no_cache=no_cache(request.headers),
                   state=state)


@dataclass
class WholeReply:
    """A whole reply (from the router or the cache) and the headers to send with it."""

    reply: router_pb2.ChatResponse
    headers: dict[str, str]
    after: BackgroundTask | None = None

    @property
    def finish_reason(self) -> str | None:
        return FINISH_REASON_NAMES.get(self.reply.finish_reason)

    def done(self) -> None:
        """Schedules ``after`` for a renderer whose response cannot run it once sent."""
        if self.after is not None:
            _background(self.after())


@dataclass
class LiveStream:
    """A streamed reply whose first message has arrived; render ``messages()`` then ``done()``."""

    model: str
    headers: dict[str, str]
    _source: AsyncIterator[router_pb2.ChatStreamResponse]
    _after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _parts: list[str] = field(default_factory=list)
    _last: router_pb2.ChatStreamResponse | None = None
    _spend: TokenSpend = UNCOUNTED  # the token budget, charged as messages pass

    async def messages(self) -> AsyncIterator[router_pb2.ChatStreamResponse]:
        """Every message, the first (with the route) included; raises StreamFailed."""
        spend = self._spend
        async with contextlib.aclosing(self._source) as source:
            async for message in source:
                if message.text:
                    self._parts.append(message.text)
                if message.finish_reason:
                    self._last = message
                if spend.counting:
                    await spend.follow(message)
                yield message

    @property
    def text(self) -> str:
        """The text relayed so far."""
        return "".join(self._parts)

    @property
    def finished(self) -> router_pb2.ChatStreamResponse | None:
        """The last message, once the reply finished; None while open or when it failed."""
        return self._last

    def done(self) -> None:
        """Schedules the work that follows the reply (runs however the stream ended)."""
        self._spend.close_later()
        if self._after:
            _background(self._run_after())

    async def _run_after(self) -> None:
        for step in self._after:
            await step()


_PENDING: set[asyncio.Task[None]] = set()


def _background(work: Awaitable[None]) -> None:
    task = asyncio.ensure_future(work)
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


class ChatPipeline:
    """Cache lookup, the router call (whole or streamed), and the cache store afterwards."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def answer(self, request: Request, turn: ChatTurn, *,
                     stream: bool) -> WholeReply | LiveStream:
        """For a REST renderer: a failure before the reply is the REST error (APIError)."""
        locales = preferred_locales(request.headers.get(ACCEPT_LANGUAGE))
        if locales != turn.locales:
            turn = replace(turn, locales=locales)
        try:
            return await self.reply(Caller.of(request), turn, stream=stream)
        except StreamFailed as failure:
            raise failure.rest() from None

    async def reply(self, caller: Caller, turn: ChatTurn, *,
                    stream: bool) -> WholeReply | LiveStream:
        """The reply, from a cache or the router. Raises StreamFailed when the router call fails
        before a reply, and the token budget's APIError (429, 503) when it refuses the call."""
        started = time.perf_counter()
        deps = self._deps
        state = caller.state
        headers = {"X-Cache": "MISS"}
        if tracing.ENABLED:
            tracing.set_attributes(tracing.chat_request_attributes(
                turn.model, turn.max_tokens, turn.temperature))
        cache_key = None
        looked = False
        # The cache keeps text, not logprobs: a reply asked with logprobs is never cached.
        if not turn.sampling.logprobs and deps.cache.applies(temperature=turn.temperature,
                                                             seed=turn.seed):
            cache_key = deps.cache.key(turn.canonical, tenant=caller.tenant,
                                       feature=turn.feature, messages=turn.messages)
            if not caller.no_cache:
                looked, hit = await self._lookup(cache_key)
                if hit is not None:
                    deps.metrics.answered(from_cache=True)
                    state[MODEL_KEY] = hit.model
                    headers["X-Cache"] = "HIT"
                    if tracing.ENABLED:
                        tracing.set_attributes({tracing.GEN_AI_RESPONSE_MODEL: hit.model,
                                                "upcoach.cache": "hit"})
                    return _from_cache(hit, headers, stream=stream)
        probe = await self._semantic_probe(caller, turn)
        if probe is not None and probe.match is not None:
            deps.metrics.answered(from_cache=True)
            state[MODEL_KEY] = probe.match.reply.model
            headers["X-Cache"] = "HIT"
            headers["X-Cache-Similarity"] = f"{probe.match.similarity:.4f}"
            if tracing.ENABLED:
                tracing.set_attributes({tracing.GEN_AI_RESPONSE_MODEL: probe.match.reply.model,
                                        "upcoach.cache": "semantic"})
            return _from_cache(probe.match.reply, headers, stream=stream)
        if looked or probe is not None:
            deps.metrics.answered(from_cache=False)
        pending = probe.pending if probe is not None else None
        spend = UNCOUNTED if not deps.tokens.enabled else await deps.tokens.reserve(
            caller.client, estimate_prompt(m.content for m in turn.messages))
        headers.update(spend.headers())
        fields = turn.fields(caller.request_id)
        # The caller's own deadline (grpc-web's grpc-timeout) less what the lookups took.
        timeout = (deps.settings.upstream_timeout_s if caller.timeout_s is None
                   else max(0.001, caller.timeout_s - (time.perf_counter() - started)))
        if stream:
            return await self._stream(caller, turn, fields, headers, cache_key, started, spend,
                                      pending, timeout)
        try:
            reply = await deps.upstream.router.Chat(router_pb2.ChatRequest(**fields),
                                                    timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            failure = StreamFailed(upstream=exc)
            await _refund_if_refused(spend, failure)
            raise failure from None
        await spend.finish(reply.usage if reply.HasField("usage") else None)
        model = reply.route.model
        state[MODEL_KEY] = model
        deps.metrics.tokens(model, reply.usage.completion_tokens)
        if tracing.ENABLED:
            tracing.set_attributes(tracing.chat_reply_attributes(model, reply.finish_reason,
                                                                 reply.usage))
        _safety_header(headers, reply.safety_category)
        whole = WholeReply(reply, headers)
        finish = whole.finish_reason
        if cache_key and finish in _CACHEABLE_FINISH:
            whole.after = BackgroundTask(self._store, cache_key, CachedReply(
                model, reply.text, finish, reply.usage.prompt_tokens,
                reply.usage.completion_tokens))
        if pending is not None:
            tasks = BackgroundTasks([whole.after] if whole.after else [])
            tasks.add_task(self._store_semantic, pending, CachedReply(
                model, reply.text, finish or "", reply.usage.prompt_tokens,
                reply.usage.completion_tokens))
            whole.after = tasks
        return whole

    async def _stream(self, caller: Caller, turn: ChatTurn, fields: dict[str, Any],
                      headers: dict[str, str], cache_key: str | None, started: float,
                      spend: TokenSpend, pending: Pending | None, timeout: float) -> LiveStream:
        deps = self._deps
        relay = ChatRelay(deps, router_pb2.ChatStreamRequest(**fields), timeout=timeout,
                          started=started, model=turn.model)
        try:
            first = await relay.first()
        except StreamFailed as failure:
            await _refund_if_refused(spend, failure)
            raise
        caller.state[MODEL_KEY] = relay.model
        _safety_header(headers, first.safety_category)
        live = LiveStream(relay.model, headers, relay.messages(first), _spend=spend)
        if cache_key:
            live._after.append(lambda: self._store_stream(cache_key, live))
        if pending is not None:
            live._after.append(lambda: self._store_semantic_stream(pending, live))
        return live

    async def _store_stream(self, key: str, live: LiveStream) -> None:
        last = live.finished
        reason = FINISH_REASON_NAMES.get(last.finish_reason) if last else None
        if last is None or reason not in _CACHEABLE_FINISH:
            return
        await self._store(key, CachedReply(live.model, live.text, reason,
                                           last.usage.prompt_tokens,
                                           last.usage.completion_tokens))

    async def _semantic_probe(self, caller: Caller, turn: ChatTurn) -> Probe | None:
        """The semantic cache's lookup (chat/semantic.py), None where it does not apply."""
        semantic = self._deps.semantic
        if semantic is None or caller.no_cache:
            return None
        probe = await semantic.probe(self._deps.upstream, turn, caller.tenant, caller.request_id,
                                     caller.timeout_s)
        if probe is not None:
            self._deps.metrics.semantic_cache(probe.match is not None)
        return probe

    async def _store_semantic(self, pending: Pending, reply: CachedReply) -> None:
        if self._deps.semantic is not None:
            await self._deps.semantic.store(pending, reply)

    async def _store_semantic_stream(self, pending: Pending, live: LiveStream) -> None:
        last = live.finished
        if last is not None:
            await self._store_semantic(pending, CachedReply(
                live.model, live.text, FINISH_REASON_NAMES.get(last.finish_reason, ""),
                last.usage.prompt_tokens, last.usage.completion_tokens))

    async def _lookup(self, key: str) -> tuple[bool, CachedReply | None]:
        """Whether the exact cache could be read, and its reply if it has one."""
        try:
            hit = await self._deps.cache.get(key)
        except RedisDown:
            return False, None
        self._deps.metrics.exact_cache(hit is not None)
        return True, hit

    async def _store(self, key: str, reply: CachedReply) -> None:
        with contextlib.suppress(RedisDown):
            await self._deps.cache.put(key, reply)


def _safety_header(headers: dict[str, str], category: int) -> None:
    """``X-Safety-Category`` when the router's crisis check answered instead of a model."""
    if category:
        headers["X-Safety-Category"] = SAFETY_CATEGORY_NAMES.get(category, "unknown")


def _from_cache(hit: CachedReply, headers: dict[str, str], *,
                stream: bool) -> WholeReply | LiveStream:
    """A cached reply in the router's shapes: whole, or replayed as word-sized messages."""
    route = router_pb2.RouteDecision(requested_model=hit.model, model=hit.model,
                                     reason="cache")
    usage = common_pb2.Usage(prompt_tokens=hit.prompt_tokens,
                             completion_tokens=hit.completion_tokens,
                             total_tokens=hit.prompt_tokens + hit.completion_tokens)
    finish = FINISH_REASON_VALUES[hit.finish_reason]
    if not stream:
        return WholeReply(router_pb2.ChatResponse(route=route, text=hit.content,
                                                  finish_reason=finish, usage=usage), headers)
    pieces = replay_pieces(hit.content)
    messages = [router_pb2.ChatStreamResponse(route=route, text=pieces[0]),
                *(router_pb2.ChatStreamResponse(text=piece) for piece in pieces[1:]),
                router_pb2.ChatStreamResponse(finish_reason=finish, usage=usage)]
    return LiveStream(hit.model, headers, _replayed(messages))


async def _replayed(messages: list[router_pb2.ChatStreamResponse],
                    ) -> AsyncIterator[router_pb2.ChatStreamResponse]:
    for message in messages:
        yield message
