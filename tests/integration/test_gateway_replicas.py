"""Gateway replicas: two gateway processes sharing one Redis enforce one RPM budget, and a
gateway whose Redis stops keeps answering, reports degraded, and recovers when Redis returns."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest

from tests.integration.gateway_support import GatewayProcess, PrivateRedis

pytestmark = pytest.mark.integration
GREEDY = {"messages": [{"role": "user", "content": "Name one habit."}], "max_tokens": 6,
          "temperature": 0}


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(["generation", "embedding", "model-registry", "router"],
                         env={"ROUTER_HEALTH_INTERVAL_S": "0.5"})


def test_two_gateways_share_one_budget(stack) -> None:
    env = {"RATE_LIMIT_RPM": "6", "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:",
           "LLM_API_KEY": "replica-key"}
    gateways = [GatewayProcess(stack, env), GatewayProcess(stack, env)]
    try:
        headers = {"Authorization": "Bearer replica-key"}
        replies = [httpx.get(f"{gw.url}/api/models", headers=headers, timeout=10)
                   for gw in itertools.islice(itertools.cycle(gateways), 10)]
        statuses = [r.status_code for r in replies]
        assert statuses == [200] * 6 + [429] * 4
        assert [r.headers["x-ratelimit-remaining"] for r in replies[:6]] == [
            "5", "4", "3", "2", "1", "0"]
        other_key_budget = httpx.get(f"{gateways[0].url}/api/models", timeout=10,
                                     headers={"X-API-Key": "replica-key"})
        assert other_key_budget.status_code == 429
    finally:
        for gw in gateways:
            gw.stop()


def test_redis_outage_and_recovery(stack) -> None:
    redis = PrivateRedis()
    redis.start()
    gw = GatewayProcess(stack, {"REDIS_URL": redis.url, "RATE_LIMIT_RPM": "1000"})
    try:
        def chat() -> httpx.Response:
            return httpx.post(f"{gw.url}/v1/chat/completions", json=GREEDY, timeout=60)

        assert httpx.get(f"{gw.url}/health").json()["status"] == "ok"
        assert [chat().headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]

        redis.stop()
        during = [chat() for _ in range(2)]
        assert [r.status_code for r in during] == [200, 200]
        assert [r.headers["x-cache"] for r in during] == ["MISS", "MISS"]
        assert "x-ratelimit-limit" not in during[0].headers
        assert httpx.get(f"{gw.url}/api/models", timeout=10).status_code == 200
        health = httpx.get(f"{gw.url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["services"]["redis"] == "unhealthy"
        assert "fail open" in gw.logs()

        redis.start()
        assert httpx.get(f"{gw.url}/health", timeout=10).json()["status"] == "ok"
        after = [chat() for _ in range(2)]
        assert [r.headers["x-cache"] for r in after] == ["MISS", "HIT"]
        assert after[0].headers["x-ratelimit-limit"] == "1000"
        assert "redis is back" in gw.logs()
    finally:
        gw.stop()
        redis.stop()
