"""Channel config: round_robin over every replica a target names, retries only where safe."""

from __future__ import annotations

import json
from collections import Counter

import grpc
import pytest

from upcoach_llm.api.channel_config import channel_options, retryable_methods, service_config

ROUTER = "upcoach.llm.v1.RouterService"


def test_retries_follow_the_idempotency_levels_of_the_protos() -> None:
    methods = set(retryable_methods())
    assert {(ROUTER, "Route"), (ROUTER, "DecideInference"), (ROUTER, "ListBackends"),
            ("upcoach.llm.v1.EmbeddingService", "Embed"),
            ("upcoach.llm.v1.ModelRegistryService", "ListModels")} <= methods
    for unsafe in ((ROUTER, "ChatStream"), (ROUTER, "Chat"),
                   ("upcoach.llm.v1.GenerationService", "GenerateStream"),
                   ("upcoach.llm.v1.ModelRegistryService", "PullModel"),
                   ("upcoach.llm.v1.EmbeddingService", "IndexContent")):
        assert unsafe not in methods


def test_service_config_is_round_robin_with_one_retry_policy() -> None:
    config = json.loads(service_config())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method_config,) = config["methodConfig"]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert len(method_config["name"]) == len(retryable_methods())


class FlakyReplica:
    """A server answering every RPC of the router by raw bytes; the first call of each method
    fails UNAVAILABLE (a replica going away), the next ones succeed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers([self])
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def service(self, details: grpc.HandlerCallDetails):
        method = details.method

        async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.calls[method] += 1
            if self.calls[method] == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
            return request

        return grpc.unary_unary_rpc_method_handler(answer)


@pytest.fixture
async def replicas():
    servers = [FlakyReplica(), FlakyReplica()]
    for replica in servers:
        await replica.server.start()
    yield servers
    for replica in servers:
        await replica.server.stop(None)


async def test_an_idempotent_rpc_is_retried_and_a_chat_is_not(replicas) -> None:
    flaky = replicas[0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{flaky.port}",
                                         options=channel_options()) as channel:
        route = channel.unary_unary(f"/{ROUTER}/Route")
        assert await route(b"x", timeout=5) == b"x"
        chat = channel.unary_unary(f"/{ROUTER}/Chat")
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await chat(b"x", timeout=5)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.calls == {f"/{ROUTER}/Route": 2, f"/{ROUTER}/Chat": 1}


async def test_calls_go_to_every_replica_a_target_names(replicas) -> None:
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    async with grpc.aio.insecure_channel(target, options=channel_options()) as channel:
        method = channel.unary_unary(f"/{ROUTER}/ListBackends")
        for _ in range(10):
            assert await method(b"x", timeout=5) == b"x"
    assert all(r.calls[f"/{ROUTER}/ListBackends"] >= 3 for r in replicas)
