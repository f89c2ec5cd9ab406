"""The front door shared by REST and grpc-web: authenticate, then spend one unit of budget.

The request budget (RATE_LIMIT_RPM) is counted per key and client IP (RATE_LIMIT_SCOPE=key-ip,
the guide's "per user/IP": a mobile app ships one key, and its users must not share one bucket),
or per key alone (key); without keys, per IP. The client IP is the peer's, or the forwarded one
from TRUSTED_PROXIES.

Refusals are APIError (401, 429 with Retry-After and X-RateLimit-*, 503 when the limiter is down
and RATE_LIMIT_FAIL_OPEN is false); the REST middleware renders them as JSON and the grpc-web
interceptor as the matching status code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.metrics.registry import GatewayMetrics
from upcoach_llm.gateway.security.auth import ApiKeyAuth, AuthError
from upcoach_llm.gateway.security.ratelimit import RateDecision, RateLimiter
from upcoach_llm.gateway.store.link import RedisDown

log = get_logger(__name__)
_WARN_EVERY_S = 30.0


@dataclass(frozen=True)
class Admission:
    """An admitted request: who it is, and its budget (None when limiting is off or failed open).

    ``client`` names the caller's token budget (the key identity, or the IP when auth is off);
    ``tenant`` is the key identity alone, None when auth is off.
    """

    client: str
    tenant: str | None
    budget: RateDecision | None

    def headers(self) -> dict[str, str]:
        return self.budget.headers() if self.budget else {}


class Gate:
    """Auth, then the rate limit."""

    def __init__(self, auth: ApiKeyAuth, limiter: RateLimiter, metrics: GatewayMetrics, *,
                 fail_open: bool, per_ip: bool = True) -> None:
        self._auth = auth
        self._limiter = limiter
        self._metrics = metrics
        self._fail_open = fail_open
        self._per_ip = per_ip
        self._warned_at = 0.0

    async def admit(self, headers: Mapping[str, str], client_ip: str | None) -> Admission:
        try:
            identity = self._auth.authenticate(headers)
        except AuthError as exc:
            raise APIError(401, str(exc), code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"}) from None
        ip = f"ip:{client_ip or 'unknown'}"
        client = identity or ip
        if not self._limiter.enabled:
            return Admission(client, identity, None)
        bucket = f"{identity}|{ip}" if identity and self._per_ip else client
        try:
            decision = await self._limiter.hit(bucket)
        except RedisDown as exc:
            return self._limiter_down(client, identity, exc)
        if not decision.allowed:
            self._metrics.rate_limited()
            raise APIError(429, f"rate limit of {decision.limit} requests per minute exceeded; "
                           f"retry in {decision.reset_s}s", code="rate_limit_exceeded",
                           headers=decision.headers())
        return Admission(client, identity, decision)

    def _limiter_down(self, client: str, tenant: str | None, exc: RedisDown) -> Admission:
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_S:
            self._warned_at = now
            action = "allowing requests (fail open)" if self._fail_open else "refusing requests"
            log.warning(f"rate limiter unavailable: {action}",
                        extra={"fields": {"error": str(exc)}})
        if self._fail_open:
            return Admission(client, tenant, None)
        raise APIError(503, "rate limiter unavailable", code="rate_limiter_unavailable")
