"""Per-client request budgets shared by every gateway replica through Redis.

A fixed one-minute window per client that starts with the client's first request: one Lua script
increments the counter and sets its expiry atomically, so concurrent replicas never lose a count.
The client is the API key (by its hash, never the key itself) or, without a key, the IP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from upcoach_llm.gateway.store.link import RedisLink

WINDOW_MS = 60_000

# KEYS[1] counter; ARGV[1] window in ms. Returns {count after this request, ms until reset}.
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class RateDecision:
    """The outcome for one request, and the headers that describe the budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit),
                   "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": str(self.reset_s)}
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


class RateLimiter:
    """RATE_LIMIT_RPM requests per client per minute; 0 turns limiting off."""

    def __init__(self, link: RedisLink, rpm: int, prefix: str) -> None:
        self.rpm = rpm
        self._link = link
        self._prefix = prefix + "rl:"
        self._script = link.client.register_script(_SCRIPT)

    @property
    def enabled(self) -> bool:
        return self.rpm > 0

    async def hit(self, client_id: str) -> RateDecision:
        """Counts one request; raises RedisDown when Redis cannot be used."""
        key = self._prefix + client_id
        count, ttl_ms = await self._link.call(
            "rate limit", lambda: self._script(keys=[key], args=[WINDOW_MS]))
        count, ttl_ms = int(count), int(ttl_ms)
        return RateDecision(allowed=count <= self.rpm, limit=self.rpm,
                            remaining=max(0, self.rpm - count),
                            reset_s=max(1, math.ceil(ttl_ms / 1000)))
