"""The Redis connection, and whether Redis is usable right now.

When a command fails the link is marked down for ``retry_s`` so requests skip Redis instead of
each waiting for a timeout; the first command after that tries again, so the gateway recovers by
itself when Redis returns. Going down and coming back are each logged once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from upcoach_llm.common.logging import get_logger, without_password

log = get_logger(__name__)
T = TypeVar("T")


class RedisDown(Exception):
    """Redis could not be used for this call; callers bypass or fail open."""


class RedisLink:
    """One Redis client shared by the cache and the rate limiter."""

    def __init__(self, url: str, timeout_s: float, retry_s: float = 1.0) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._url = without_password(url)
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._down_until = 0.0
        self._down = False

    async def call(self, what: str, command: Callable[[], Awaitable[T]]) -> T:
        """Runs a command; raises RedisDown when Redis is down or the command fails."""
        if self._down and time.monotonic() < self._down_until:
            raise RedisDown(f"redis is down; {what} skipped")
        try:
            result = await command()
        except (RedisError, OSError) as exc:
            self._mark_down(what, exc)
            raise RedisDown(f"redis {what} failed: {type(exc).__name__}") from exc
        if self._down:
            self._down = False
            log.warning("redis is back", extra={"fields": {"redis": self._url}})
        return result

    async def ping(self) -> tuple[bool, str]:
        """A real PING, whatever the back-off says; health uses it and it also revives the link."""
        self._down_until = 0.0
        try:
            await self.call("ping", self.client.ping)
        except RedisDown as exc:
            return False, str(exc.__cause__ or exc)
        return True, ""

    def _mark_down(self, what: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_s
        if not self._down:
            self._down = True
            log.warning("redis unavailable: cache bypassed, rate limits follow "
                        "RATE_LIMIT_FAIL_OPEN until it returns",
                        extra={"fields": {"redis": self._url, "during": what,
                                          "error": f"{type(exc).__name__}: {exc}"}})

    async def close(self) -> None:
        await self.client.aclose()
