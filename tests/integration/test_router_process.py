"""The router and generation as real processes: routed chats streamed from SmolLM2 over gRPC."""

from __future__ import annotations

import time

import grpc
import pytest

from tests.support.logs import log_lines
from upcoach_llm.api import common_pb2, router_pb2, router_pb2_grpc
from upcoach_llm.api.status_details import field_of

pytestmark = pytest.mark.integration
USER = common_pb2.ROLE_USER


def chat(text: str, **fields: object) -> router_pb2.ChatStreamRequest:
    return router_pb2.ChatStreamRequest(
        messages=[common_pb2.ChatMessage(role=USER, content=text)], **fields)


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(["generation", "router"], env={"GENERATION_PARALLEL": "1",
                                                        "ROUTER_HEALTH_INTERVAL_S": "0.5"})


@pytest.fixture(scope="module")
def router(stack) -> router_pb2_grpc.RouterServiceStub:
    return stack.stub("router", router_pb2_grpc.RouterServiceStub)


def test_streams_a_real_reply_in_several_chunks_with_the_route(router) -> None:
    sampling = common_pb2.SamplingParams(max_tokens=48, temperature=0, seed=7)
    chunks = list(router.ChatStream(chat("Give me a motivation tip", model="mistral",
                                         sampling=sampling), timeout=60))
    assert len(chunks) >= 5
    route = chunks[0].route
    assert (route.requested_model, route.model, route.backend) == (
        "mistral", "smollm2-135m-instruct", "embedded")
    assert list(route.fallbacks_skipped) == ["mistral", "llama3.2:3b"]
    assert all(not c.HasField("route") for c in chunks[1:])
    text = "".join(c.text for c in chunks)
    assert len(text.split()) >= 5
    last = chunks[-1]
    assert last.finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)
    assert last.usage.completion_tokens > 0 and last.usage.prompt_tokens > 0
    assert last.usage.time_to_first_token_ms > 0


def test_unary_chat_matches_the_stream_when_greedy(router) -> None:
    sampling = common_pb2.SamplingParams(max_tokens=24, temperature=0, seed=1)
    streamed = "".join(c.text for c in router.ChatStream(chat("Name one healthy habit.",
                                                             sampling=sampling), timeout=60))
    reply = router.Chat(router_pb2.ChatRequest(
        messages=[common_pb2.ChatMessage(role=USER, content="Name one healthy habit.")],
        sampling=sampling), timeout=60)
    assert reply.text == streamed
    assert reply.route.reason == "pattern 'goal|habit|motivation|wellness'"
    assert reply.usage.completion_tokens > 0


def test_coaching_context_routes_through_its_feature(router) -> None:
    reply = router.Chat(router_pb2.ChatRequest(
        coaching_context="habits",
        messages=[common_pb2.ChatMessage(role=USER, content="Help me build a morning routine")],
        sampling=common_pb2.SamplingParams(max_tokens=16, temperature=0)), timeout=60)
    assert reply.route.requested_model == "llama3.2:3b"
    assert reply.route.model == "smollm2-135m-instruct"
    assert reply.text.strip()


@pytest.mark.parametrize(("request_", "code", "names"), [
    (chat("hi", model="gpt-9"), grpc.StatusCode.NOT_FOUND, "gpt-9"),
    (router_pb2.ChatStreamRequest(), grpc.StatusCode.INVALID_ARGUMENT, "messages"),
    (chat(""), grpc.StatusCode.INVALID_ARGUMENT, "messages[0].content"),
    (chat("hi", coaching_context="astrology"), grpc.StatusCode.INVALID_ARGUMENT, "habits"),
    (chat("hi", sampling=common_pb2.SamplingParams(max_tokens=0)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.max_tokens"),
    (chat("hi", sampling=common_pb2.SamplingParams(temperature=3)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.temperature"),
    (chat("hi " * 3000, sampling=common_pb2.SamplingParams(max_tokens=16)),
     grpc.StatusCode.OUT_OF_RANGE, "messages"),
    (chat("hi", sampling=common_pb2.SamplingParams(max_tokens=4000)),
     grpc.StatusCode.OUT_OF_RANGE, "sampling.max_tokens"),
])
def test_bad_input_keeps_its_status_through_the_router(router, request_, code, names) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(router.ChatStream(request_, timeout=30))
    assert caught.value.code() == code
    assert names in caught.value.details()


@pytest.mark.parametrize(("request_", "field"), [
    (chat(""), "messages[0].content"),
    (chat("hi", coaching_context="astrology"), "coaching_context"),
    (chat("hi", sampling=common_pb2.SamplingParams(max_tokens=4000)), "sampling.max_tokens"),
])
def test_the_failed_field_arrives_as_a_bad_request(router, request_, field) -> None:
    """Raised by the router, or by generation's engine and passed through the router."""
    with pytest.raises(grpc.RpcError) as caught:
        list(router.ChatStream(request_, timeout=30))
    assert field_of(caught.value) == field


def test_cancelling_the_router_stream_stops_the_engine(stack, router) -> None:
    """The router cancels its generation call, and the engine stops within a few tokens."""
    long_run = router.ChatStream(chat("Write a very long story about a runner.",
                                      request_id="router-cancel-1",
                                      sampling=common_pb2.SamplingParams(max_tokens=1500,
                                                                         temperature=0.8)),
                                 timeout=120)
    received = [next(long_run) for _ in range(3)]
    long_run.cancel()
    reply = router.Chat(router_pb2.ChatRequest(
        messages=[common_pb2.ChatMessage(role=USER, content="Say hello")],
        sampling=common_pb2.SamplingParams(max_tokens=4, temperature=0)), timeout=60)
    # One llama context: the follow-up ran, so the cancelled generation gave its context back.
    assert reply.usage.completion_tokens <= 4
    cancelled = [line for line in log_lines(stack) if line["msg"] == "generation cancelled"
                 and line.get("request_id") == "router-cancel-1"]
    assert len(cancelled) == 1
    assert cancelled[0]["completion_tokens"] <= len(received) + 50 < 1500


def test_deadline_is_enforced_end_to_end(router) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(router.ChatStream(chat("Write a long essay about habits.",
                                    sampling=common_pb2.SamplingParams(max_tokens=1500)),
                               timeout=0.5))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_route_and_backends(router) -> None:
    route = router.Route(router_pb2.RouteRequest(feature="quick_reminders"), timeout=5).route
    assert (route.requested_model, route.model, route.backend) == (
        "llama3.2:3b", "smollm2-135m-instruct", "embedded")
    backends = router.ListBackends(router_pb2.ListBackendsRequest(), timeout=5).backends
    assert [(b.name, b.healthy) for b in backends] == [("embedded", True)]


def test_generation_down_is_unavailable_then_recovers(stack, router) -> None:
    stack.stop(["generation"])
    deadline = time.monotonic() + 10
    while True:
        try:
            list(router.ChatStream(chat("hi", sampling=common_pb2.SamplingParams(max_tokens=2)),
                                   timeout=10))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            assert "embedded" in exc.details()
            break
        assert time.monotonic() < deadline, "router kept answering with generation stopped"
    stack.start(["generation"])
    stack.wait_ready(names=["generation"])
    deadline = time.monotonic() + 10
    while True:
        try:
            chunks = list(router.ChatStream(
                chat("hi", sampling=common_pb2.SamplingParams(max_tokens=2)), timeout=10))
            break
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() < deadline, "router did not recover"
            time.sleep(0.2)
    assert chunks[0].route.backend == "embedded"
