"""Gateway replicas: two gateway processes sharing one Redis enforce one RPM budget and one token
budget (RATE_LIMIT_TPM, a cancelled stream included), and a gateway whose Redis stops keeps
answering, reports degraded, and recovers when Redis returns."""

from __future__ import annotations

import itertools
import json
import time
import uuid

import httpx
import pytest
import redis

from tests.integration.gateway_support import GatewayProcess, PrivateRedis
from upcoach_llm.api import router_pb2, router_pb2_grpc
from upcoach_llm.gateway.health.readiness import READY_CACHE_S
from upcoach_llm.gateway.security.token_budget import estimate_prompt, estimate_text

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
        time.sleep(READY_CACHE_S)  # /health's checks are shared for that long
        health = httpx.get(f"{gw.url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["services"]["redis"] == "unhealthy"
        assert "fail open" in gw.logs()

        redis.start()
        time.sleep(READY_CACHE_S)  # /health's checks are shared for that long
        assert httpx.get(f"{gw.url}/health", timeout=10).json()["status"] == "ok"
        after = [chat() for _ in range(2)]
        assert [r.headers["x-cache"] for r in after] == ["MISS", "HIT"]
        assert after[0].headers["x-ratelimit-limit"] == "1000"
        assert "redis is back" in gw.logs()
    finally:
        gw.stop()
        redis.stop()


def test_two_gateways_share_one_token_budget(stack) -> None:
    tpm = 150
    env = {"RATE_LIMIT_TPM": str(tpm), "RATE_LIMIT_RPM": "0", "CACHE_MODE": "off",
           "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:",
           "LLM_API_KEY": "tpm-key"}
    gateways = [GatewayProcess(stack, env), GatewayProcess(stack, env)]
    estimate = estimate_prompt([GREEDY["messages"][0]["content"]])
    try:
        spent, replies = 0, []
        for gw in itertools.cycle(gateways):
            reply = httpx.post(f"{gw.url}/v1/chat/completions", json=GREEDY, timeout=60,
                               headers={"Authorization": "Bearer tpm-key"})
            replies.append(reply)
            if spent + estimate > tpm:  # the budget says this one must not fit
                break
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-ratelimit-remaining-tokens"] == str(tpm - spent - estimate)
            spent += reply.json()["usage"]["total_tokens"]
        assert len(replies) >= 3, "the budget held at least two chats"
        refused = replies[-1]
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert refused.headers["x-ratelimit-limit-tokens"] == str(tpm)
        assert refused.headers["x-ratelimit-remaining-tokens"] == str(max(0, tpm - spent))
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-reset-tokens"] == refused.headers["retry-after"]
        # Exact within one request's size: the last chat admitted fit by its estimate.
        last = replies[-2].json()["usage"]["total_tokens"]
        assert tpm - estimate < spent <= tpm - estimate + last
    finally:
        for gw in gateways:
            gw.stop()


def test_a_cancelled_stream_still_counts_what_it_generated(stack) -> None:
    prefix = f"upcoach:test:{uuid.uuid4().hex[:12]}:"
    tpm = 100_000
    gw = GatewayProcess(stack, {"RATE_LIMIT_TPM": str(tpm), "CACHE_MODE": "off",
                                "REDIS_KEY_PREFIX": prefix})
    store = redis.Redis()
    key = f"{prefix}tpm:ip:127.0.0.1"
    prompt = "Write a long story about a runner who builds a daily habit."
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 200,
            "temperature": 0, "stream": True}
    try:
        seen = ""
        chunks = 0
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body,
                          timeout=60) as reply:
            assert reply.status_code == 200
            assert reply.headers["x-ratelimit-remaining-tokens"] == str(
                tpm - estimate_prompt([prompt]))
            for line in reply.iter_lines():
                if not line.startswith("data: {"):
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if delta:
                    seen += delta
                    chunks += 1
                if chunks == 5:
                    break
        # The gateway writes the stream's last batch when it sees the close, on a task of its
        # own: wait until it has cancelled the router's stream (nothing outstanding), then
        # until the count has stopped moving, rather than a fixed sleep a loaded machine can
        # outrun.
        router = stack.stub("router", router_pb2_grpc.RouterServiceStub)
        deadline = time.monotonic() + 30
        while any(b.outstanding for b in router.ListBackends(
                router_pb2.ListBackendsRequest(), timeout=10).backends):
            assert time.monotonic() < deadline, "the gateway never ended the router's stream"
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        charged, steady_since = int(store.hget(key, "t") or 0), time.monotonic()
        while time.monotonic() - steady_since < 1.0 or charged - estimate_prompt(
                [prompt]) < estimate_text(len(seen)):
            assert time.monotonic() < deadline, ("the charge never settled", seen, charged)
            time.sleep(0.05)
            now = int(store.hget(key, "t") or 0)
            if now != charged:
                charged, steady_since = now, time.monotonic()
        relayed = charged - estimate_prompt([prompt])
        assert estimate_text(len(seen)) <= relayed < 200, (seen, relayed)
        follow = httpx.post(f"{gw.url}/v1/chat/completions", json=GREEDY, timeout=60)
        assert follow.headers["x-ratelimit-remaining-tokens"] == str(
            tpm - estimate_prompt([prompt]) - relayed
            - estimate_prompt([GREEDY["messages"][0]["content"]]))
    finally:
        gw.stop()
        store.delete(key)
        store.close()
