"""The typed container of everything the gateway's handlers use, built once at start-up.

``Dependencies.build(settings)`` must run inside the event loop that serves (the gRPC channels
and the Redis pool bind to it); ``close()`` releases them at shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from upcoach_llm.common.catalog import load_models
from upcoach_llm.common.config import SAFETY_FILE, config_fingerprint
from upcoach_llm.gateway.chat.semantic import SemanticCache, semantic_cache
from upcoach_llm.gateway.http.shutdown import StreamRegistry
from upcoach_llm.gateway.metrics.registry import GatewayMetrics
from upcoach_llm.gateway.security.auth import ApiKeyAuth
from upcoach_llm.gateway.security.gate import Gate
from upcoach_llm.gateway.security.ratelimit import RateLimiter
from upcoach_llm.gateway.security.token_budget import TokenBudget
from upcoach_llm.gateway.settings import GatewaySettings
from upcoach_llm.gateway.store.cache import ResponseCache
from upcoach_llm.gateway.store.link import RedisLink
from upcoach_llm.gateway.upstream import Upstream


@dataclass
class Dependencies:
    """Settings, upstream stubs, Redis, cache, rate limit, token budget, auth, metrics and live
    streams."""

    settings: GatewaySettings
    upstream: Upstream
    redis: RedisLink
    cache: ResponseCache
    gate: Gate
    tokens: TokenBudget
    metrics: GatewayMetrics
    streams: StreamRegistry = field(default_factory=StreamRegistry)
    semantic: SemanticCache | None = None  # None: SEMANTIC_CACHE_ENABLED=false or caching off

    @classmethod
    def build(cls, settings: GatewaySettings) -> Dependencies:
        metrics = GatewayMetrics(m.name for m in load_models().models)
        redis = RedisLink(settings.redis_url, settings.redis_timeout_s)
        limiter = RateLimiter(redis, settings.rate_limit_rpm, settings.redis_prefix)
        gate = Gate(ApiKeyAuth(settings.api_keys), limiter, metrics,
                    fail_open=settings.rate_limit_fail_open,
                    per_ip=settings.rate_limit_per_ip)
        return cls(
            settings=settings,
            upstream=Upstream.connect(settings.upstreams, settings.internal_auth),
            redis=redis,
            cache=ResponseCache(redis, settings.cache_ttl, settings.cache_mode,
                                settings.redis_prefix,
                                shared_features=settings.cache_shared_features,
                                safety=config_fingerprint(SAFETY_FILE)),
            gate=gate,
            tokens=TokenBudget(redis, settings.rate_limit_tpm, settings.redis_prefix, metrics,
                               fail_open=settings.rate_limit_fail_open),
            metrics=metrics,
            semantic=semantic_cache(settings, redis),
        )

    async def close(self) -> None:
        await self.upstream.close()
        await self.redis.close()
