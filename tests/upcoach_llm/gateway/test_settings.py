"""GatewaySettings: env parsing, errors naming the variable, the production rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.gateway.settings import CacheMode, GatewaySettings, is_dev_key

_VARS = ("ENVIRONMENT", "APP_ENV", "LLM_API_KEY", "TLS_ENABLED", "TLS_CERT_FILE", "TLS_KEY_FILE",
         "RATE_LIMIT_RPM", "CACHE_TTL", "CACHE_MODE", "REDIS_URL", "REDIS_HOST", "REDIS_PORT",
         "CORS_ORIGINS", "MAX_BODY_BYTES", "GATEWAY_PORT", "ROUTER_ADDR", "LOG_LEVEL",
         "GATEWAY_METRICS_PORT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = GatewaySettings.from_env()
    assert settings.port == 3100
    assert settings.api_keys == ()
    assert not settings.auth_enabled
    assert settings.rate_limit_rpm == 120
    assert settings.cache_mode is CacheMode.REPRODUCIBLE
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.max_body_bytes == 1_048_576
    assert settings.upstreams.router == "127.0.0.1:50054"


def test_values_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_API_KEY", "k1, k2,")
    monkeypatch.setenv("RATE_LIMIT_RPM", "60")
    monkeypatch.setenv("CACHE_TTL", "3600")
    monkeypatch.setenv("REDIS_PORT", "6380")
    monkeypatch.setenv("CORS_ORIGINS", "https://app.upcoach.com")
    monkeypatch.setenv("ROUTER_ADDR", "router:9000")
    settings = GatewaySettings.from_env()
    assert settings.api_keys == ("k1", "k2")
    assert settings.rate_limit_rpm == 60
    assert settings.cache_ttl == 3600
    assert settings.redis_url == "redis://127.0.0.1:6380/0"
    assert settings.cors_origins == ("https://app.upcoach.com",)
    assert settings.upstreams.router == "router:9000"


@pytest.mark.parametrize(("name", "value"), [
    ("RATE_LIMIT_RPM", "lots"), ("RATE_LIMIT_RPM", "-1"), ("CACHE_TTL", "1.5"),
    ("CACHE_MODE", "sometimes"), ("MAX_BODY_BYTES", "10"), ("REDIS_URL", "http://x"),
    ("ROUTER_ADDR", "no-port"), ("TLS_ENABLED", "maybe"), ("LOG_LEVEL", "loud"),
    ("GATEWAY_PORT", "70000"),
])
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                      value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}:"):
        GatewaySettings.from_env()


def test_the_metrics_port_is_not_the_api_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings.from_env().metrics_port == 0
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "3100")
    with pytest.raises(ConfigError, match="^GATEWAY_METRICS_PORT: must differ from GATEWAY_PORT"):
        GatewaySettings.from_env()
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "9464")
    assert GatewaySettings.from_env().metrics_port == 9464


def test_tls_needs_existing_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TLS_ENABLED", "true")
    with pytest.raises(ConfigError, match="^TLS_CERT_FILE:"):
        GatewaySettings.from_env()
    monkeypatch.setenv("TLS_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "key.pem"))
    with pytest.raises(ConfigError, match="^TLS_CERT_FILE: .* is not a readable file"):
        GatewaySettings.from_env()


@pytest.mark.parametrize(("env", "variable"), [
    ({}, "LLM_API_KEY"),
    ({"LLM_API_KEY": "dev-key-local-only", "TLS_ENABLED": "true"}, "LLM_API_KEY"),
    ({"LLM_API_KEY": "good-key,dev-other"}, "LLM_API_KEY"),
    ({"LLM_API_KEY": "prod-7f3a9c2e41d8"}, "TLS_ENABLED"),
])
def test_production_refuses_unsafe_settings(monkeypatch: pytest.MonkeyPatch,
                                            env: dict[str, str], variable: str) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        GatewaySettings.from_env()


def test_production_accepts_a_real_key_with_tls(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path) -> None:
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("LLM_API_KEY", "prod-7f3a9c2e41d8")
    monkeypatch.setenv("TLS_ENABLED", "true")
    monkeypatch.setenv("TLS_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "key.pem"))
    assert GatewaySettings.from_env().production


@pytest.mark.parametrize(("env", "variable"), [
    ({"LLM_API_KEY": "prod-7f3a9c2e41d8,k3y"}, "LLM_API_KEY"),
    ({"LLM_API_KEY": "prod-7f3a9c2e41d8", "LLM_ADMIN_KEY": "adm-7f3a9c2e41d"}, "LLM_ADMIN_KEY"),
])
def test_production_refuses_a_short_key(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                        env: dict[str, str], variable: str) -> None:
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("TLS_ENABLED", "true")
    monkeypatch.setenv("TLS_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "key.pem"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{variable}: .*at least 16 characters"):
        GatewaySettings.from_env()
    monkeypatch.setenv(variable, env[variable].replace("k3y", "prod-0123456789ab") + "x")
    assert GatewaySettings.from_env().production


def test_dev_keys() -> None:
    assert is_dev_key("dev-key-local-only")
    assert is_dev_key("DEV-anything")
    assert is_dev_key("${SECRET_LLM_API_KEY}")
    assert not is_dev_key("stg-xxx-secure-key")


def test_process_exits_2_with_one_line_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "ENVIRONMENT": "production",
           "LLM_API_KEY": "dev-key-local-only", "TLS_ENABLED": "true"}
    done = subprocess.run([sys.executable, "-m", "upcoach_llm.gateway"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "LLM_API_KEY" in lines[0]
    assert "dev-key-local-only" not in lines[0]
