"""The shared bootstrap: status codes from exceptions, the readiness gate, health and drain."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from upcoach_llm.api import router_pb2, router_pb2_grpc
from upcoach_llm.common import errors
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.server import GrpcService, connection_age_options, open_server

OPEN = InternalAuth.disabled()
RAISES = {
    "invalid": errors.InvalidArgument("messages[0].content: must not be empty"),
    "missing": errors.NotFound("model 'gpt-9' is not in the catalog"),
    "range": errors.OutOfRange("sampling.max_tokens: past the context"),
    "full": errors.ResourceExhausted("queue full"),
    "down": errors.Unavailable("backend down"),
    "late": errors.DeadlineExceeded("too late"),
    "bug": ZeroDivisionError("oops"),
}
CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT, "missing": grpc.StatusCode.NOT_FOUND,
    "range": grpc.StatusCode.OUT_OF_RANGE, "full": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "down": grpc.StatusCode.UNAVAILABLE, "late": grpc.StatusCode.DEADLINE_EXCEEDED,
    "bug": grpc.StatusCode.INTERNAL,
}


class Raising(router_pb2_grpc.RouterServiceServicer):
    """Raises the exception named by request.model; streams one chunk first."""

    def __init__(self, upstream: str = "") -> None:
        self.upstream = upstream

    async def Route(self, request, context):
        if request.model == "upstream":
            # A call to another server that fails: its status must pass through unchanged.
            async with grpc.aio.insecure_channel(self.upstream) as channel:
                await router_pb2_grpc.RouterServiceStub(channel).Route(
                    router_pb2.RouteRequest(model="missing"))
        raise RAISES[request.model]

    async def ChatStream(self, request, context):
        yield router_pb2.ChatStreamResponse(text="first")
        raise RAISES[request.model]


class Service(GrpcService):
    def __init__(self, upstream: str = "") -> None:
        self.servicer = Raising(upstream)

    def service_names(self) -> list[str]:
        return [router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServiceServicer_to_server(self.servicer, server)


async def health_status(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    return reply.status


async def test_gate_health_codes_and_drain() -> None:
    running = await open_server(Service(), "127.0.0.1", 0, auth=OPEN)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        assert await health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Route(router_pb2.RouteRequest(model="invalid"))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "loading" in caught.value.details()

        await running.mark_serving()
        assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        for name, code in CODES.items():
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Route(router_pb2.RouteRequest(model=name))
            assert caught.value.code() == code, name
            if name != "bug":
                assert caught.value.details() == RAISES[name].message
        stream = stub.ChatStream(router_pb2.ChatStreamRequest(model="range"))
        assert (await stream.read()).text == "first"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE

        await running.health.enter_graceful_shutdown()
        assert await health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    await running.server.stop(0.1)


async def test_upstream_status_passes_through_unchanged() -> None:
    upstream = await open_server(Service(), "127.0.0.1", 0, auth=OPEN)
    await upstream.mark_serving()
    front = await open_server(Service(f"127.0.0.1:{upstream.port}"), "127.0.0.1", 0,
                              auth=OPEN)
    await front.mark_serving()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router_pb2_grpc.RouterServiceStub(channel).Route(
                router_pb2.RouteRequest(model="upstream"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "model 'gpt-9' is not in the catalog"
    await front.server.stop(0.1)
    await upstream.server.stop(0.1)


def test_connection_age_makes_clients_reconnect_unless_zero() -> None:
    assert connection_age_options(300, 30) == [("grpc.max_connection_age_ms", 300_000),
                                               ("grpc.max_connection_age_grace_ms", 30_000)]
    assert connection_age_options(0, 30) == []
