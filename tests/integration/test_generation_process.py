"""The generation service as a real process: health through its life cycle, streamed replies,
cancellation that frees the engine, and a graceful SIGTERM drain that exits 0."""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.logs import log_lines
from upcoach_llm.api import common_pb2, generation_pb2, generation_pb2_grpc
from upcoach_llm.api.status_details import retry_delay_of
from upcoach_llm.common.channels import authed
from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack, default_specs

pytestmark = pytest.mark.integration

MODEL = "smollm2-135m-instruct"
STORY = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER,
                                content="Write a long story about a habit coach and a runner.")]
FAST_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 20), ("grpc.min_reconnect_backoff_ms", 20),
                  ("grpc.max_reconnect_backoff_ms", 50)]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def stream_request(max_tokens: int, request_id: str = "") -> generation_pb2.GenerateStreamRequest:
    return generation_pb2.GenerateStreamRequest(
        request_id=request_id, model=MODEL, messages=STORY,
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0.0))


def first_index(lines: list[dict], message: str) -> int:
    return next(i for i, line in enumerate(lines) if line["msg"] == message)


@pytest.fixture(scope="module")
def stack(stack_factory) -> Stack:
    return stack_factory(["generation"], env={"GENERATION_PARALLEL": "1"})


@pytest.fixture(scope="module")
def stub(stack: Stack) -> Iterator[generation_pb2_grpc.GenerationServiceStub]:
    yield stack.stub("generation", generation_pb2_grpc.GenerationServiceStub)


def test_streams_a_reply_in_several_chunks_and_logs_its_request_id(stack: Stack,
                                                                   stub) -> None:
    replies = list(stub.GenerateStream(stream_request(24, request_id="it-stream-1"), timeout=60))
    assert len(replies) >= 5
    assert all(r.text for r in replies[:-1])
    assert replies[-1].finish_reason == common_pb2.FINISH_REASON_LENGTH
    assert replies[-1].usage.completion_tokens == 24
    mine = [line for line in log_lines(stack) if line.get("request_id") == "it-stream-1"]
    assert {"generation started", "generation finished"} <= {line["msg"] for line in mine}


def test_a_cancelled_stream_stops_the_engine(stack: Stack, stub) -> None:
    call = stub.GenerateStream(stream_request(1000, request_id="it-cancel-1"), timeout=60)
    for _ in range(3):
        assert next(call).text
    call.cancel()
    reply = stub.Generate(generation_pb2.GenerateRequest(
        model=MODEL, messages=STORY, sampling=common_pb2.SamplingParams(max_tokens=4,
                                                                        temperature=0.0)),
        timeout=60)
    assert reply.usage.completion_tokens == 4
    cancelled = [line for line in log_lines(stack) if line["msg"] == "generation cancelled"
                 and line.get("request_id") == "it-cancel-1"]
    assert len(cancelled) == 1
    assert cancelled[0]["completion_tokens"] < 100


def test_health_follows_the_life_cycle_and_sigterm_drains_to_exit_0() -> None:
    specs = default_specs({s.name: free_port() for s in default_specs()})
    stack = Stack(specs, env={"GRPC_GRACE_S": "60", "GENERATION_PARALLEL": "1"},
                  log_dir=tempfile.mkdtemp(prefix="upcoach-generation-"))
    address = stack.spec("generation").address
    stack.start(["generation"])
    process = stack.processes["generation"]
    try:
        with grpc.insecure_channel(address, options=FAST_RECONNECT) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            seen: list[int] = []
            deadline = time.monotonic() + 120
            while not seen or seen[-1] != SERVING:
                assert process.poll() is None, "the service exited during start-up"
                assert time.monotonic() < deadline, f"not SERVING in time; saw {seen}"
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                except grpc.RpcError:
                    time.sleep(0.005)
                    continue
                if not seen or seen[-1] != status:
                    seen.append(status)
            assert seen == [NOT_SERVING, SERVING]

            stub = authed(generation_pb2_grpc.GenerationServiceStub(channel), stack.auth)
            watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=60)
            assert next(watch).status == SERVING
            in_flight = stub.GenerateStream(stream_request(48), timeout=60)
            assert next(in_flight).text
            replies: list[generation_pb2.GenerateStreamResponse] = []
            reader = threading.Thread(target=lambda: replies.extend(in_flight))
            reader.start()

            process.send_signal(signal.SIGTERM)
            assert next(watch).status == NOT_SERVING
            watch.cancel()  # an open Watch would hold the drain for the whole grace period
            reader.join(60)
            assert replies and replies[-1].usage.completion_tokens == 48, (
                "the in-flight stream was not allowed to finish during the drain")
            assert process.wait(30) == 0
    finally:
        stack.stop()

    messages = [line["msg"] for line in log_lines(stack)]
    order = ["listening", "model loaded", "serving", "draining", "stopped"]
    assert [first_index(log_lines(stack), m) for m in order] == sorted(
        first_index(log_lines(stack), m) for m in order), messages


def test_a_stream_longer_than_the_grace_ends_unavailable_shutting_down() -> None:
    specs = default_specs({s.name: free_port() for s in default_specs()})
    stack = Stack(specs, env={"GRPC_GRACE_S": "1", "GENERATION_PARALLEL": "1"},
                  log_dir=tempfile.mkdtemp(prefix="upcoach-generation-"))
    stack.start(["generation"])
    try:
        stack.wait_ready(120)
        stub = stack.stub("generation", generation_pb2_grpc.GenerationServiceStub)
        in_flight = stub.GenerateStream(stream_request(2000), timeout=60)
        assert next(in_flight).text
        stack.processes["generation"].send_signal(signal.SIGTERM)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            for _ in in_flight:
                pass
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "GenerationService is shutting down" in caught.value.details()
        assert retry_delay_of(caught.value) == 0.0
        # Ended by the drain (about 0.6 s in, the details say so), not by the 2000 tokens
        # running out; the bound leaves a loaded machine room.
        assert time.monotonic() - started < 6
        assert stack.processes["generation"].wait(30) == 0
    finally:
        stack.stop()
