"""API keys and the Redis-backed rate limit, REST side (grpc-web has its own tests)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.gateway.security.auth import ApiKeyAuth, AuthError, key_identity

HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def test_auth_off_without_keys() -> None:
    assert ApiKeyAuth(()).authenticate({}) is None


def test_bearer_or_x_api_key() -> None:
    auth = ApiKeyAuth(("k-one", "k-two"))
    assert auth.authenticate({"authorization": "Bearer k-two"}) == key_identity("k-two")
    assert auth.authenticate({"x-api-key": "k-one"}) == key_identity("k-one")
    with pytest.raises(AuthError, match="missing"):
        auth.authenticate({})
    with pytest.raises(AuthError, match="invalid"):
        auth.authenticate({"authorization": "Bearer k-three"})
    with pytest.raises(AuthError, match="missing"):
        auth.authenticate({"authorization": "Basic k-one"})
    assert "k-one" not in key_identity("k-one")


async def test_keys_required_when_configured(gateway, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    gw: RunningGateway = await gateway({"LLM_API_KEY": "secret-one,secret-two"})
    async with gw.client() as client:
        missing = await client.post("/v1/chat/completions", json=HELLO)
        wrong = await client.post("/v1/chat/completions", json=HELLO,
                                  headers={"Authorization": "Bearer nope"})
        bearer = await client.post("/v1/chat/completions", json=HELLO,
                                   headers={"Authorization": "Bearer secret-two"})
        header = await client.get("/api/models", headers={"X-API-Key": "secret-one"})
        health = await client.get("/health")
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert bearer.status_code == 200 and header.status_code == 200
    assert health.status_code == 200
    assert "secret-one" not in caplog.text and "secret-two" not in caplog.text
    assert "nope" not in caplog.text


@pytest.mark.parametrize("path", ["/metrics", "/api/metrics"])
async def test_metrics_need_the_operators_key_while_keys_are_on(gateway, path: str) -> None:
    """Every tenant's traffic is counted there: a client's key is not enough."""
    closed: RunningGateway = await gateway({"LLM_API_KEY": "secret-one"})
    async with closed.client() as client:
        nothing = await client.get(path)
        tenant = await client.get(path, headers={"Authorization": "Bearer secret-one"})
    assert nothing.status_code == 401 and tenant.status_code == 401
    message = tenant.json()["error"]["message"]
    assert message.startswith(path) and "LLM_ADMIN_KEY is not set" in message
    gw: RunningGateway = await gateway({"LLM_API_KEY": "secret-one", "RATE_LIMIT_RPM": "1",
                                        "LLM_ADMIN_KEY": "operator-key"})
    async with gw.client() as client:
        tenant = await client.get(path, headers={"X-API-Key": "secret-one"})
        operator = [await client.get(path, headers={"Authorization": "Bearer operator-key"})
                    for _ in range(3)]  # a scrape spends no rate-limit budget
        chat = await client.post("/v1/chat/completions", json=HELLO,
                                 headers={"X-API-Key": "secret-one"})
    assert tenant.status_code == 401 and tenant.headers["www-authenticate"] == "Bearer"
    assert "LLM_ADMIN_KEY" in tenant.json()["error"]["message"]
    assert [r.status_code for r in operator] == [200, 200, 200]
    assert chat.status_code == 200  # the tenant's one request a minute is still there
    if path == "/metrics":
        assert "gateway_requests_total" in operator[0].text
    else:
        assert set(operator[0].json()) == {"requests_total", "cache_hits", "cache_misses",
                                           "errors_total", "active_connections"}


async def test_auth_off_is_logged_loudly(gateway, caplog) -> None:
    caplog.set_level(logging.INFO)
    await gateway()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("AUTH IS OFF" in r.getMessage() for r in warnings)


async def test_rate_limit_429_with_headers(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "3"})
    async with gw.client() as client:
        replies = [await client.get("/api/models") for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in replies)
    refused = replies[-1]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-reset"] == refused.headers["retry-after"]
    async with gw.client() as client:
        metrics = (await client.get("/metrics")).text
    assert "gateway_rate_limited_total 1.0" in metrics


async def test_budgets_are_per_key(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "2", "LLM_API_KEY": "key-a,key-b"})
    async with gw.client() as client:
        a = [await client.get("/api/models", headers={"X-API-Key": "key-a"}) for _ in range(3)]
        b = await client.get("/api/models", headers={"X-API-Key": "key-b"})
    assert [r.status_code for r in a] == [200, 200, 429]
    assert b.status_code == 200


async def test_concurrent_requests_never_exceed_the_budget(gateway) -> None:
    # A generous Redis timeout: 25 first calls at once open 25 connections, and on a busy
    # machine one can take longer than the default 0.25 s, which fails open (a separate test).
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "10", "REDIS_TIMEOUT_S": "3"})
    async with gw.client() as client:
        replies = await asyncio.gather(*(client.get("/api/models") for _ in range(25)))
    assert sorted(r.status_code for r in replies).count(200) == 10


async def test_rate_limit_off_with_zero(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with gw.client() as client:
        reply = await client.get("/api/models")
    assert reply.status_code == 200 and "x-ratelimit-limit" not in reply.headers


async def test_redis_down_fails_open_by_default(gateway, caplog) -> None:
    caplog.set_level(logging.INFO)
    gw: RunningGateway = await gateway({"REDIS_URL": "redis://127.0.0.1:1/0",
                                        "RATE_LIMIT_RPM": "1"})
    async with gw.client() as client:
        replies = [await client.post("/v1/chat/completions", json={**HELLO, "temperature": 0})
                   for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert all(r.headers["x-cache"] == "MISS" for r in replies)
    assert any("fail open" in r.getMessage() for r in caplog.records)


async def test_redis_down_fails_closed_when_configured(gateway) -> None:
    gw: RunningGateway = await gateway({"REDIS_URL": "redis://127.0.0.1:1/0",
                                        "RATE_LIMIT_FAIL_OPEN": "false"})
    async with gw.client() as client:
        reply = await client.get("/api/models")
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "rate_limiter_unavailable"
