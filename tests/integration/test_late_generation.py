"""A generation service that comes up after the router serves the very next request: the router,
which found no healthy backend for the embedded model, probes it once more before refusing.

The router starts alone (no remote backend, no start-up wait) and probes in the background only
every minute, so only the on-demand probe can see generation come up. Its channel to generation
failed while generation was down, and gRPC reconnects it after a backoff of at most
grpc.max_reconnect_backoff_ms (2 s, api/channel_config.py, with 20% jitter): a request inside
that window is still refused, so the test allows it, far below the minute a background probe
would take.
"""

from __future__ import annotations

import time

import grpc
import pytest

from upcoach_llm.api import common_pb2, router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration
EMBEDDED = "smollm2-135m-instruct"
RECONNECT_S = 5.0  # the channel's longest reconnect backoff (2 s + jitter), with room to spare


def chat() -> router_pb2.ChatStreamRequest:
    return router_pb2.ChatStreamRequest(
        model=EMBEDDED, messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER,
                                                         content="Say hello.")],
        sampling=common_pb2.SamplingParams(max_tokens=4, temperature=0))


def test_the_first_request_after_generation_comes_up_is_served(stack_factory) -> None:
    stack = stack_factory(["router"], env={
        "ROUTER_STARTUP_WAIT_S": "0", "ROUTER_HEALTH_INTERVAL_S": "60", "GENERATION_PARALLEL": "1",
        "OLLAMA_URL": "", "VLLM_URL": ""})
    router = stack.stub("router", router_pb2_grpc.RouterServiceStub)
    with pytest.raises(grpc.RpcError) as refused:
        list(router.ChatStream(chat(), timeout=30))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "generation service" in refused.value.details()

    stack.start(["generation"])
    stack.wait_ready(180, names=["generation"])
    deadline = time.monotonic() + RECONNECT_S
    while True:
        try:
            replies = list(router.ChatStream(chat(), timeout=60))
            break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert replies[-1].finish_reason in (common_pb2.FINISH_REASON_STOP,
                                         common_pb2.FINISH_REASON_LENGTH)
    assert replies[0].route.model == EMBEDDED
