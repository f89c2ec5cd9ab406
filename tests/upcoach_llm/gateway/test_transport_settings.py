"""The gateway's transport settings: timeouts, connection cap, trusted proxies, drain, and how
they reach uvicorn."""

from __future__ import annotations

import pytest

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.gateway.http.timeouts import TimedHttpToolsProtocol
from upcoach_llm.gateway.server import uvicorn_config
from upcoach_llm.gateway.settings import GatewaySettings

_VARS = ("GATEWAY_HEADER_TIMEOUT_S", "GATEWAY_BODY_IDLE_TIMEOUT_S", "GATEWAY_MAX_CONNECTIONS",
         "GATEWAY_KEEPALIVE_TIMEOUT_S",
         "TRUSTED_PROXIES", "GATEWAY_GRACE_S", "ENVIRONMENT", "APP_ENV")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)


async def _app(scope, receive, send) -> None:  # pragma: no cover - never served
    raise AssertionError


def test_defaults_reach_uvicorn() -> None:
    settings = GatewaySettings.from_env()
    assert (settings.header_timeout_s, settings.body_idle_timeout_s) == (10.0, 30.0)
    assert (settings.max_connections, settings.grace_seconds) == (1000, 30.0)
    assert settings.trusted_proxies == ()
    config = uvicorn_config(_app, settings)
    assert config.proxy_headers is False
    assert config.limit_concurrency == 1000
    assert config.timeout_graceful_shutdown == 30.0
    assert config.timeout_keep_alive == 30.0
    assert issubclass(config.http, TimedHttpToolsProtocol)  # type: ignore[arg-type]
    assert (config.http.header_timeout_s, config.http.body_idle_timeout_s) == (10.0, 30.0)


def test_values_from_env_reach_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_HEADER_TIMEOUT_S", "2.5")
    monkeypatch.setenv("GATEWAY_BODY_IDLE_TIMEOUT_S", "4")
    monkeypatch.setenv("GATEWAY_MAX_CONNECTIONS", "50")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1")
    monkeypatch.setenv("GATEWAY_GRACE_S", "12")
    monkeypatch.setenv("GATEWAY_KEEPALIVE_TIMEOUT_S", "75")
    config = uvicorn_config(_app, GatewaySettings.from_env())
    assert config.timeout_keep_alive == 75.0
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["10.0.0.0/8", "192.168.1.7", "::1"]
    assert config.limit_concurrency == 50
    assert config.timeout_graceful_shutdown == 12.0
    assert (config.http.header_timeout_s, config.http.body_idle_timeout_s) == (2.5, 4.0)


@pytest.mark.parametrize(("name", "value"), [
    ("GATEWAY_HEADER_TIMEOUT_S", "0"), ("GATEWAY_HEADER_TIMEOUT_S", "soon"),
    ("GATEWAY_BODY_IDLE_TIMEOUT_S", "-1"), ("GATEWAY_MAX_CONNECTIONS", "0"),
    ("GATEWAY_GRACE_S", "0"), ("GATEWAY_KEEPALIVE_TIMEOUT_S", "0"),
    ("TRUSTED_PROXIES", "10.0.0.1,proxy.internal"),
    ("TRUSTED_PROXIES", "*")])
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                      value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}: "):
        GatewaySettings.from_env()
