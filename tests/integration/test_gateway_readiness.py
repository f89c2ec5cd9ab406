"""/readyz and /health through real processes: a gateway started before the router is alive but
not ready (503, /health down), becomes ready once the router serves, and then a chat is served."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.integration.gateway_support import GatewayProcess
from upcoach_llm.gateway.health.readiness import READY_CACHE_S

pytestmark = pytest.mark.integration
ADMIN = "readiness-admin-key"


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(["generation"], env={"ROUTER_HEALTH_INTERVAL_S": "0.5"})


def test_not_ready_until_the_router_serves_then_ready(stack) -> None:
    gw = GatewayProcess(stack, {"LLM_ADMIN_KEY": ADMIN, "RATE_LIMIT_RPM": "0",
                                "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:"},
                        wait_path="/livez")
    try:
        assert httpx.get(f"{gw.url}/livez", timeout=5).json() == {"status": "alive"}
        before = httpx.get(f"{gw.url}/readyz", timeout=5)
        assert before.status_code == 503
        assert before.json()["error"]["code"] == "router_not_serving"
        health = httpx.get(f"{gw.url}/health", timeout=5, headers={"X-API-Key": ADMIN})
        assert health.status_code == 503 and health.json()["status"] == "down"
        assert "router" in health.json()["details"]

        stack.start(["router"])
        statuses = []
        deadline = time.monotonic() + 120
        while not statuses or statuses[-1] != 200:
            assert time.monotonic() < deadline, f"/readyz never 200: {statuses[-5:]}"
            statuses.append(httpx.get(f"{gw.url}/readyz", timeout=5).status_code)
            time.sleep(0.2)
        assert statuses[0] == 503, "the router cannot be ready the instant it is started"
        assert set(statuses[:-1]) == {503}

        time.sleep(READY_CACHE_S)  # past the "down" report shared from before the router started
        health = httpx.get(f"{gw.url}/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded", "embedding and model-registry are not run"
        assert "details" not in health.json()
        chat = httpx.post(f"{gw.url}/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "One word for calm."}], "max_tokens": 4})
        assert chat.status_code == 200, chat.text
    finally:
        gw.stop()
