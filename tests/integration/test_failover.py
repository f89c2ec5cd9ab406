"""Failover between two real OpenAI-compatible backends, through real router, generation and
gateway processes.

Two ``llama_cpp.server`` processes serve SmolLM2 as the catalog's ``mistral`` (VLLM_URL with two
URLs, VLLM_MODEL, VLLM_CATALOG_MODEL). The tests run in order on one stack: requests spread over
both; a stream whose backend dies after its first token ends with an error (a gRPC status from
the router, an SSE error event from the gateway), never a silent truncation; following requests
succeed on the other backend while the dead one shows down in ListBackends and in the gateway's
/health; a restarted backend is marked up again by the background health checks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest

from tests.support.llama_server import LlamaServer
from tests.upcoach_llm.gateway.sse import parse
from upcoach_llm.api import (
    common_pb2,
    generation_pb2,
    generation_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

pytestmark = pytest.mark.integration
USER = common_pb2.ROLE_USER
ADMIN_KEY = "failover-admin-key"
ESSAY = "Write a long essay, in ten detailed sections, on how to build a lasting morning routine."


def chat(text: str, max_tokens: int, temperature: float = 0.0) -> router_pb2.ChatStreamRequest:
    return router_pb2.ChatStreamRequest(
        model="mistral", messages=[common_pb2.ChatMessage(role=USER, content=text)],
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens, temperature=temperature))


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LlamaServer]]:
    started: dict[str, LlamaServer] = {}
    try:
        for name in ("vllm", "vllm-2"):
            started[name] = LlamaServer(alias="smollm2", n_threads=1).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def stack(stack_factory, servers):
    return stack_factory(["generation", "router", "gateway"], env={
        "VLLM_URL": ",".join(f"{s.url}/v1" for s in servers.values()),
        "VLLM_MODEL": "smollm2", "VLLM_CATALOG_MODEL": "mistral",
        "ROUTER_HEALTH_INTERVAL_S": "1", "ROUTER_PROBE_TIMEOUT_S": "10", "GENERATION_PARALLEL": "1",
        "CACHE_MODE": "off", "LLM_ADMIN_KEY": ADMIN_KEY,
        "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:"})


@pytest.fixture(scope="module")
def router(stack) -> router_pb2_grpc.RouterServiceStub:
    return stack.stub("router", router_pb2_grpc.RouterServiceStub)


def backends(router) -> dict[str, router_pb2.Backend]:
    reply = router.ListBackends(router_pb2.ListBackendsRequest(), timeout=5)
    return {b.name: b for b in reply.backends}


def gateway_health(stack) -> dict:
    return httpx.get(f"http://{stack.spec('gateway').address}/health", timeout=5,
                     headers={"X-API-Key": ADMIN_KEY}).json()


def routed_backend(router, text: str = "Give me one quick tip.") -> str:
    chunks = list(router.ChatStream(chat(text, 8), timeout=60))
    assert chunks[-1].finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    assert chunks[0].route.model == "mistral"
    return chunks[0].route.backend


def test_requests_spread_over_both_healthy_backends(router, servers) -> None:
    listed = backends(router)
    assert [n for n in listed if n.startswith("vllm")] == ["vllm", "vllm-2"]
    for name, server in servers.items():
        assert listed[name].healthy and listed[name].url == f"{server.url}/v1"
        assert list(listed[name].models) == ["mistral"]
    assert {routed_backend(router) for _ in range(4)} == {"vllm", "vllm-2"}


def test_a_stream_cut_after_its_first_token_ends_with_an_error(router, servers) -> None:
    call = router.ChatStream(chat(ESSAY, 600, temperature=0.8), timeout=120)
    first = next(call)
    backend = first.route.backend
    texts = [first.text] if first.text else []
    while not texts:
        texts.append(next(call).text)
    servers[backend].kill()
    with pytest.raises(grpc.RpcError) as caught:
        for chunk in call:
            assert chunk.finish_reason == common_pb2.FINISH_REASON_UNSPECIFIED, \
                "the stream finished normally: the backend was killed too late"
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"backend {backend}" in caught.value.details()


def test_following_requests_succeed_on_the_other_backend(stack, router, servers) -> None:
    dead = next(name for name, server in servers.items() if server.process.poll() is not None)
    alive = next(name for name in servers if name != dead)
    assert {routed_backend(router) for _ in range(3)} == {alive}
    listed = backends(router)
    assert not listed[dead].healthy and listed[alive].healthy
    assert servers[dead].url in listed[dead].detail
    health = gateway_health(stack)
    assert health["services"][dead] == "unhealthy" and health["services"][alive] == "healthy"
    assert servers[dead].url in health["details"][dead]


def test_an_unreachable_backend_is_unavailable_naming_it(stack, servers) -> None:
    dead = next(name for name, server in servers.items() if server.process.poll() is not None)
    generation = stack.stub("generation", generation_pb2_grpc.GenerationServiceStub)
    request = generation_pb2.GenerateRequest(
        model="mistral", backend=dead,
        messages=[common_pb2.ChatMessage(role=USER, content="hi")])
    with pytest.raises(grpc.RpcError) as caught:
        generation.Generate(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"backend {dead} (openai at {servers[dead].url}) is unreachable" in \
        caught.value.details()


def test_a_restarted_backend_is_marked_up_again(router, servers) -> None:
    dead = next(name for name, server in servers.items() if server.process.poll() is not None)
    servers[dead] = LlamaServer(alias="smollm2", port=servers[dead].port, n_threads=1).start()
    wait_for(lambda: backends(router)[dead].healthy)
    assert {routed_backend(router) for _ in range(4)} == {"vllm", "vllm-2"}


def test_a_gateway_sse_stream_cut_mid_reply_ends_with_an_error_event(stack, router,
                                                                     servers) -> None:
    body = {"model": "mistral", "stream": True, "max_tokens": 600, "temperature": 0.8,
            "messages": [{"role": "user", "content": ESSAY}]}
    url = f"http://{stack.spec('gateway').address}/v1/chat/completions"
    lines: list[str] = []
    with httpx.stream("POST", url, json=body, timeout=120) as response:
        assert response.status_code == 200
        killed = None
        for line in response.iter_lines():
            lines.append(line)
            if killed is None and '"content"' in line:
                busy = [b for b in backends(router).values() if b.outstanding]
                assert len(busy) == 1
                killed = busy[0].name
                servers[killed].kill()
    payloads, done = parse("\n".join(lines) + "\n")
    assert done
    assert not any(c.get("finish_reason") for p in payloads for c in p.get("choices", [])), \
        "the stream finished normally: the backend was killed too late"
    error = payloads[-1]["error"]
    assert f"backend {killed}" in error["message"]
    assert any(c["delta"].get("content") for p in payloads[:-1] for c in p["choices"])
