"""Gateway settings: read once from the environment into a typed object at start-up.

Every bad value raises ConfigError naming the variable. In production
(ENVIRONMENT=production) the gateway refuses to start without a real API key or without TLS.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from upcoach_llm.api.topology import EMBEDDING, GATEWAY, GENERATION, MODEL_REGISTRY, ROUTER
from upcoach_llm.common.channels import service_address
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.limits import MIN_SECRET_CHARS
from upcoach_llm.common.logging import parse_level
from upcoach_llm.common.variables import VARIABLES as V

DEV_KEYS = frozenset({"dev-key-local-only", "changeme", "change-me", "secret", "test"})


class CacheMode(StrEnum):
    """Which chat replies the response cache stores."""

    REPRODUCIBLE = "reproducible"  # temperature 0 or a seed: the same request gives the same reply
    ALL = "all"
    OFF = "off"


@dataclass(frozen=True)
class Upstreams:
    """host:port of each gRPC service the gateway calls or watches."""

    router: str
    embedding: str
    registry: str
    generation: str


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway reads from the environment."""

    host: str
    port: int
    metrics_port: int  # GATEWAY_METRICS_PORT: /metrics without a key, for the cluster (0: none)
    environment: str
    api_keys: tuple[str, ...]
    rate_limit_rpm: int
    rate_limit_tpm: int
    rate_limit_fail_open: bool
    rate_limit_per_ip: bool
    cache_ttl: int
    cache_mode: CacheMode
    redis_url: str
    redis_timeout_s: float
    redis_prefix: str
    max_body_bytes: int
    cors_origins: tuple[str, ...]
    tls_enabled: bool
    tls_cert_file: str | None
    tls_key_file: str | None
    log_level: str
    admin_key: str | None  # LLM_ADMIN_KEY: /health's details, /metrics while keys are on
    cache_shared_features: frozenset[str]  # features whose cached replies all keys share
    semantic_cache_enabled: bool
    semantic_cache_max_entries: int
    header_timeout_s: float
    body_idle_timeout_s: float
    keepalive_timeout_s: float
    max_connections: int
    trusted_proxies: tuple[str, ...]
    grace_seconds: float
    internal_auth: InternalAuth
    upstreams: Upstreams
    upstream_timeout_s: float
    health_timeout_s: float

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls) -> GatewaySettings:
        """Reads and checks every variable; ConfigError names the first bad one."""
        environment = V.str("ENVIRONMENT").lower()
        log_level = V.str("LOG_LEVEL")
        parse_level(log_level)
        tls_enabled = V.bool("TLS_ENABLED")
        api_keys = tuple(V.list("LLM_API_KEY"))
        if environment == "production":
            check_production(api_keys, tls_enabled)
        cert, key = _tls_files(tls_enabled)
        settings = cls(
            host=V.str("GATEWAY_HOST"),
            port=V.int(GATEWAY.port_env),
            metrics_port=V.int(GATEWAY.metrics_port_env),
            environment=environment,
            api_keys=api_keys,
            rate_limit_rpm=V.int("RATE_LIMIT_RPM"),
            rate_limit_tpm=V.int("RATE_LIMIT_TPM"),
            rate_limit_fail_open=V.bool("RATE_LIMIT_FAIL_OPEN"),
            rate_limit_per_ip=V.str("RATE_LIMIT_SCOPE") == "key-ip",
            cache_ttl=V.int("CACHE_TTL"),
            cache_mode=CacheMode(V.str("CACHE_MODE")),
            redis_url=_redis_url(),
            redis_timeout_s=V.float("REDIS_TIMEOUT_S"),
            redis_prefix=V.str("REDIS_KEY_PREFIX"),
            max_body_bytes=V.int("MAX_BODY_BYTES"),
            cors_origins=tuple(V.list("CORS_ORIGINS")),
            tls_enabled=tls_enabled,
            tls_cert_file=cert,
            tls_key_file=key,
            log_level=log_level,
            admin_key=_admin_key(environment, api_keys),
            cache_shared_features=frozenset(V.list("CACHE_SHARED_FEATURES")),
            semantic_cache_enabled=V.bool("SEMANTIC_CACHE_ENABLED"),
            semantic_cache_max_entries=V.int("SEMANTIC_CACHE_MAX_ENTRIES"),
            header_timeout_s=V.float("GATEWAY_HEADER_TIMEOUT_S"),
            body_idle_timeout_s=V.float("GATEWAY_BODY_IDLE_TIMEOUT_S"),
            keepalive_timeout_s=V.float("GATEWAY_KEEPALIVE_TIMEOUT_S"),
            max_connections=V.int("GATEWAY_MAX_CONNECTIONS"),
            trusted_proxies=_trusted_proxies(),
            grace_seconds=V.float("GATEWAY_GRACE_S"),
            internal_auth=InternalAuth.from_env(),
            upstreams=Upstreams(
                router=service_address(ROUTER),
                embedding=service_address(EMBEDDING),
                registry=service_address(MODEL_REGISTRY),
                generation=service_address(GENERATION),
            ),
            upstream_timeout_s=V.float("UPSTREAM_TIMEOUT_S"),
            health_timeout_s=V.float("HEALTH_TIMEOUT_S"),
        )
        if settings.metrics_port and settings.metrics_port == settings.port:
            raise ConfigError(f"{GATEWAY.metrics_port_env}: must differ from {GATEWAY.port_env} "
                              f"({settings.port}), which serves the API")
        return settings


def check_production(api_keys: tuple[str, ...], tls_enabled: bool) -> None:
    """The deployment rule: a real key and TLS, or no start."""
    if not api_keys:
        raise ConfigError("LLM_API_KEY: must be set in production (auth would be off)")
    if any(is_dev_key(key) for key in api_keys):
        raise ConfigError("LLM_API_KEY: a development key is not allowed in production")
    if any(len(key) < MIN_SECRET_CHARS for key in api_keys):
        raise ConfigError(f"LLM_API_KEY: each key needs at least {MIN_SECRET_CHARS} characters "
                          "in production (a short key can be guessed)")
    if not tls_enabled:
        raise ConfigError("TLS_ENABLED: must be true in production")


def is_dev_key(key: str) -> bool:
    """True for the guide's development key, a dev- prefixed key, or an obvious placeholder."""
    lowered = key.lower()
    return lowered in DEV_KEYS or lowered.startswith("dev-") or lowered.startswith("${")


def _tls_files(enabled: bool) -> tuple[str | None, str | None]:
    if not enabled:
        return None, None
    paths = []
    for name in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
        value = V.str(name)
        if not value:
            raise ConfigError(f"{name}: must be set when TLS_ENABLED is true")
        if not Path(value).is_file():
            raise ConfigError(f"{name}: {value} is not a readable file")
        paths.append(value)
    return paths[0], paths[1]


def _trusted_proxies() -> tuple[str, ...]:
    """TRUSTED_PROXIES: the IPs or CIDRs whose X-Forwarded-For is believed (none by default)."""
    proxies = tuple(V.list("TRUSTED_PROXIES"))
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {proxy!r} is not an IP address or CIDR") from None
    return proxies


def _redis_url() -> str:
    url = V.str("REDIS_URL")
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"REDIS_URL: {url!r} must start with redis://, rediss:// or unix://")
        return url
    host = V.str("REDIS_HOST")
    port = V.int("REDIS_PORT")
    return f"redis://{host}:{port}/0"


def _admin_key(environment: str, api_keys: tuple[str, ...]) -> str | None:
    """LLM_ADMIN_KEY, or None; in production neither a development key nor a client's key."""
    key = V.str("LLM_ADMIN_KEY") or None
    if key and environment == "production":
        if is_dev_key(key):
            raise ConfigError("LLM_ADMIN_KEY: a development key is not allowed in production")
        if len(key) < MIN_SECRET_CHARS:
            raise ConfigError(f"LLM_ADMIN_KEY: at least {MIN_SECRET_CHARS} characters are "
                              "required in production")
        if key in api_keys:
            raise ConfigError("LLM_ADMIN_KEY: must differ from every LLM_API_KEY in production")
    return key


