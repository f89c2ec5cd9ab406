"""Per-client token budgets (RATE_LIMIT_TPM) shared by every gateway replica through Redis.

The client is the rate-limit bucket of the request's admission: the API key's identity, or the IP
without keys. Like the request limit, the budget is a fixed one-minute window that starts with the
client's first charge; a Redis hash holds the window's id and the tokens charged to it, and every
change is one Lua script, so concurrent requests on any replica never lose a charge.

One request's spend (``TokenSpend``) goes through three steps:

- ``reserve``: before the router call, the prompt's estimate is charged. A request is refused
  (429, ``Retry-After`` and ``X-RateLimit-*-Tokens``) when the tokens already charged to the window
  plus this estimate would exceed the budget; a prompt larger than the whole budget is refused
  without ``Retry-After``, since waiting cannot help.
- ``relayed``: while the reply streams, its tokens are charged as they are relayed, so concurrent
  requests see the spend. The writes are batched: one every ``FLUSH_TOKENS`` tokens or, for a
  slower stream, the first after ``FLUSH_S``; so a stream makes a few Redis calls per second,
  never one per token.
- ``settle``: the router's usage replaces everything charged so far (one write of the difference).
  A stream that ends without usage (cancelled by the client, failed, cut by the shutdown) keeps
  its prompt estimate and the estimate of the text relayed (``close``); a whole-reply call that
  fails keeps its prompt estimate (the prompt may have been evaluated before the failure), unless
  the router refused it before any engine ran (busy, an unknown model, an invalid field: the
  pipeline settles it at 0).

Estimates (``estimate_prompt``, ``estimate_text``): characters / 4 rounded up (BPE tokenizers
average about four characters per English token) plus ``MESSAGE_OVERHEAD`` tokens per message for
the chat template; a streamed chunk that carries log probabilities counts them (one per token)
exactly instead. Only a settle makes the charge exact.

Accuracy: a request is admitted only while the window's charge plus its prompt estimate fits, and
what it generates afterwards is charged as it streams; so a window's total exceeds the budget by
at most the tokens of the requests in flight when it filled (for a client sending one request at a
time: one request's size, its completion plus the error of its prompt estimate), and requests on
other replicas see a stream's spend at most ``FLUSH_TOKENS`` tokens or ``FLUSH_S`` late. A charge
made after its window ended goes to the current window; a settle's refund (an estimate that was
too high) is applied only to the window the request charged, never beyond what it charged there.

Whole-reply calls that report their tokens only at the end (embeddings) go through ``charge``:
the texts' estimate is reserved, then the reply's count replaces it (fewer where a model cut a
text to its window); a failed call keeps the estimate.

Cache hits spend nothing: the budget is reserved after the cache lookup missed. RATE_LIMIT_TPM=0
(the default) turns budgets off without a single Redis call; when Redis is down, requests follow
RATE_LIMIT_FAIL_OPEN as they do for the request limit (let through uncounted, or 503).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.metrics.registry import GatewayMetrics
from upcoach_llm.gateway.store.link import RedisDown, RedisLink

log = get_logger(__name__)
WINDOW_MS = 60_000
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # role markers and separators a chat template adds around each message
FLUSH_TOKENS = 32
FLUSH_S = 0.1
_WARN_EVERY_S = 30.0
R = TypeVar("R")

# KEYS[1] the window hash {w: window id, t: tokens charged}; ARGV limit, estimate, window ms,
# id for a new window. Returns {1 admitted | 0 refused, tokens charged, ms until reset, window id}.
_RESERVE = """
local w = redis.call('HGET', KEYS[1], 'w')
local ttl = redis.call('PTTL', KEYS[1])
if not w or ttl < 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'w', ARGV[4], 't', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  w = ARGV[4]
  ttl = tonumber(ARGV[3])
end
local t = tonumber(redis.call('HGET', KEYS[1], 't'))
local estimate = tonumber(ARGV[2])
if t + estimate > tonumber(ARGV[1]) then
  return {0, t, ttl, w}
end
t = redis.call('HINCRBY', KEYS[1], 't', estimate)
return {1, t, ttl, w}
"""

# KEYS[1] the window hash; ARGV the window the request charged, delta, window ms, id for a new
# window. A delta goes to the request's window while it lasts; after it ended a charge goes to the
# current window (opened if none) and a refund is dropped. Returns {window id charged, tokens}.
_ADJUST = """
local w = redis.call('HGET', KEYS[1], 'w')
local delta = tonumber(ARGV[2])
if w == ARGV[1] then
  local t = redis.call('HINCRBY', KEYS[1], 't', delta)
  if t < 0 then
    redis.call('HSET', KEYS[1], 't', 0)
    t = 0
  end
  return {w, t}
end
if delta <= 0 then
  return {'', 0}
end
if not w or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'w', ARGV[4], 't', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  w = ARGV[4]
end
return {w, redis.call('HINCRBY', KEYS[1], 't', delta)}
"""


def estimate_text(chars: int) -> int:
    """Tokens in ``chars`` characters of text: characters / 4, rounded up."""
    return -(-chars // CHARS_PER_TOKEN)


def estimate_prompt(contents: Iterable[str]) -> int:
    """A prompt's tokens from its messages' texts: their estimate plus the template's overhead."""
    return sum(estimate_text(len(text)) + MESSAGE_OVERHEAD for text in contents)


@dataclass(frozen=True)
class TokenDecision:
    """The budget as one reservation left it, and the headers that describe it."""

    limit: int
    charged: int
    reset_s: int

    def headers(self, *, refused: bool = False) -> dict[str, str]:
        headers = {"X-RateLimit-Limit-Tokens": str(self.limit),
                   "X-RateLimit-Remaining-Tokens": str(max(0, self.limit - self.charged)),
                   "X-RateLimit-Reset-Tokens": str(self.reset_s)}
        if refused:
            headers["Retry-After"] = str(self.reset_s)
        return headers


class TokenBudget:
    """RATE_LIMIT_TPM tokens per client per minute; 0 turns budgets off."""

    def __init__(self, link: RedisLink, tpm: int, prefix: str, metrics: GatewayMetrics, *,
                 fail_open: bool, window_ms: int = WINDOW_MS) -> None:
        self.tpm = tpm
        self._link = link
        self._prefix = prefix + "tpm:"
        self._metrics = metrics
        self._fail_open = fail_open
        self._window_ms = window_ms
        self._warned_at = 0.0
        self._reserve = link.client.register_script(_RESERVE)
        self._adjust = link.client.register_script(_ADJUST)

    @property
    def enabled(self) -> bool:
        return self.tpm > 0

    async def reserve(self, client: str, prompt_estimate: int) -> TokenSpend:
        """Charges the prompt's estimate, or raises APIError (429; 503 when Redis is down and
        RATE_LIMIT_FAIL_OPEN is false). The spend counts nothing when budgets are off or failed
        open."""
        if not self.enabled:
            return UNCOUNTED
        estimate = max(1, prompt_estimate)
        if estimate > self.tpm:
            self._metrics.rate_limited()
            raise APIError(429, f"this request's prompt (about {estimate} tokens) exceeds the "
                           f"budget of {self.tpm} tokens per minute", code="request_too_large",
                           headers={"X-RateLimit-Limit-Tokens": str(self.tpm)})
        key = self._prefix + client
        try:
            admitted, charged, ttl_ms, window = await self._link.call(
                "token budget", lambda: self._reserve(
                    keys=[key], args=[self.tpm, estimate, self._window_ms, _new_window()]))
        except RedisDown as exc:
            self._budget_down(exc)
            return UNCOUNTED
        decision = TokenDecision(self.tpm, int(charged), max(1, math.ceil(int(ttl_ms) / 1000)))
        if not int(admitted):
            self._metrics.rate_limited()
            raise APIError(429, f"token budget of {self.tpm} tokens per minute exceeded; "
                           f"retry in {decision.reset_s}s", code="rate_limit_exceeded",
                           headers=decision.headers(refused=True))
        return TokenSpend(self, key, _text(window), estimate, decision)

    async def charge(self, client: str, estimate: int, call: Callable[[], Awaitable[R]],
                     tokens: Callable[[R], int]) -> tuple[R, TokenSpend]:
        """Runs a whole-reply ``call`` within ``client``'s budget: ``estimate`` is reserved first
        (429 when it does not fit), the reply's ``tokens`` settle it; a failed call keeps the
        estimate. ``call`` is only made once admitted."""
        spend = await self.reserve(client, estimate)
        try:
            reply = await call()
        except BaseException:
            spend.close_later()
            raise
        await spend.settle(tokens(reply), 0)
        return reply, spend

    async def adjust(self, key: str, window: str, delta: int) -> str:
        """Adds ``delta`` tokens (negative: a refund); returns the window charged ('' if none)."""
        window_now, _ = await self._link.call("token budget", lambda: self._adjust(
            keys=[key], args=[window, delta, self._window_ms, _new_window()]))
        return _text(window_now)

    def _budget_down(self, exc: RedisDown) -> None:
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_S:
            self._warned_at = now
            action = "allowing requests (fail open)" if self._fail_open else "refusing requests"
            log.warning(f"token budget unavailable: {action}",
                        extra={"fields": {"error": str(exc)}})
        if not self._fail_open:
            raise APIError(503, "rate limiter unavailable", code="rate_limiter_unavailable")


class TokenSpend:
    """One admitted request's charge: counted while its reply streams, settled at its end."""

    def __init__(self, budget: TokenBudget | None, key: str, window: str, estimate: int,
                 decision: TokenDecision | None) -> None:
        self.decision = decision
        self._budget = budget
        self._key = key
        self._window = window
        self._here = estimate  # charged to ``_window`` by this request
        self._written = estimate  # charged by this request in all
        self._pending = 0
        self._chars = 0
        self._text_tokens = 0
        self._flushed_at = time.monotonic()
        self._closed = budget is None

    def headers(self) -> dict[str, str]:
        return self.decision.headers() if self.decision else {}

    @property
    def counting(self) -> bool:
        """Whether ``follow`` would still count anything (never for UNCOUNTED)."""
        return not self._closed

    @property
    def charged(self) -> int:
        """Tokens charged by this request so far, those not yet written included."""
        return self._written + self._pending

    async def relayed(self, text: str, tokens: int | None = None) -> None:
        """Counts a relayed chunk: ``tokens`` when known (log probabilities), else its text's
        estimate; written when the batch is full or old enough."""
        if self._closed:
            return
        if tokens is None:
            self._chars += len(text)
            estimate = estimate_text(self._chars)
            tokens, self._text_tokens = estimate - self._text_tokens, estimate
        self._pending += tokens
        if self._pending >= FLUSH_TOKENS or (
                self._pending and time.monotonic() - self._flushed_at >= FLUSH_S):
            await self._write(self._pending)

    async def follow(self, message: router_pb2.ChatStreamResponse) -> None:
        """Counts one message of the router's stream; the last one settles the request."""
        if message.finish_reason:
            await self.finish(message.usage if message.HasField("usage") else None)
        elif message.text or message.logprobs:
            await self.relayed(message.text, len(message.logprobs) or None)

    async def finish(self, usage: common_pb2.Usage | None) -> None:
        """Settles with the router's usage; without one, what was charged stays."""
        if usage is None:
            await self.close()
        else:
            await self.settle(usage.prompt_tokens, usage.completion_tokens)

    async def settle(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Replaces everything charged with the router's usage."""
        if self._closed:
            return
        self._closed = True
        self._pending = 0
        await self._write(prompt_tokens + completion_tokens - self._written)

    async def close(self) -> None:
        """Ends a reply that gave no usage: what was charged and relayed stays charged."""
        if self._closed:
            return
        self._closed = True
        await self._write(self._pending)

    def close_later(self) -> None:
        """``close`` on a task of its own, for a stream's cleanup that must not wait."""
        if not self._closed:
            task = asyncio.ensure_future(self.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    async def _write(self, delta: int) -> None:
        assert self._budget is not None
        self._flushed_at = time.monotonic()
        self._pending = 0
        if delta < 0:
            delta = max(delta, -self._here)
        if delta == 0:
            return
        try:  # shielded: a client leaving mid-write must not lose the charge
            window = await asyncio.shield(self._budget.adjust(self._key, self._window, delta))
        except RedisDown:
            return  # the reply went out; its charge is lost with Redis
        if not window:  # a refund for a window that has ended
            self._here = 0
            return
        if window == self._window:
            self._here += delta
        else:
            self._window, self._here = window, delta
        self._written += delta


UNCOUNTED = TokenSpend(None, "", "", 0, None)
"""The spend of a request no budget applies to (budgets off, or Redis down and failing open)."""
_CLOSING: set[asyncio.Task[None]] = set()


def _new_window() -> str:
    return secrets.token_hex(6)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
