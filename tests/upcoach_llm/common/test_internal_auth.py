"""Internal authentication: who may call a service, through a real in-process gRPC server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.certs import make_ca, make_cert
from upcoach_llm.api import router_pb2, router_pb2_grpc
from upcoach_llm.api.status_details import retry_delay_of
from upcoach_llm.common.channels import aio_channel, authed
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.internal_auth import ADMIN_METHODS, InternalAuth, TlsFiles
from upcoach_llm.common.server import GrpcService, open_server

TOKEN = "internal-token-0123456789"
ADMIN = "admin-token-0123456789abc"
AUTH = InternalAuth(token=TOKEN, admin_token=ADMIN)
ROUTE = "/upcoach.llm.v1.RouterService/Route"


class Slow(router_pb2_grpc.RouterServiceServicer):
    async def Route(self, request, context):
        return router_pb2.RouteResponse(route=router_pb2.RouteDecision(model="ok"))

    async def ChatStream(self, request, context):
        yield router_pb2.ChatStreamResponse(text="first")
        await asyncio.sleep(60)


class Service(GrpcService):
    def service_names(self) -> list[str]:
        return [router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServiceServicer_to_server(Slow(), server)


def test_refusals() -> None:
    bearer = [("authorization", f"Bearer {TOKEN}")]
    admin = [("authorization", f"Bearer {ADMIN}")]
    assert AUTH.refusal(ROUTE, bearer) is None
    assert AUTH.refusal(ROUTE, admin) is None
    assert AUTH.refusal(ROUTE, [])[0] == grpc.StatusCode.UNAUTHENTICATED
    assert AUTH.refusal(ROUTE, [("authorization", "Bearer wrong")])[0] == (
        grpc.StatusCode.UNAUTHENTICATED)
    assert AUTH.refusal(ROUTE, [("authorization", TOKEN)])[0] == grpc.StatusCode.UNAUTHENTICATED
    assert AUTH.refusal("/grpc.health.v1.Health/Check", []) is None
    for method in ADMIN_METHODS:
        assert AUTH.refusal(method, bearer)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert AUTH.refusal(method, admin) is None
        no_admin = InternalAuth(token=TOKEN)
        assert no_admin.refusal(method, bearer)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert InternalAuth.disabled().refusal(ROUTE, []) is None
    assert sorted(ADMIN_METHODS) == ["/upcoach.llm.v1.EmbeddingService/IndexContent",
                                     "/upcoach.llm.v1.ModelRegistryService/PullModel"]


def test_settings_refuse_an_open_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTERNAL_TOKEN", "INTERNAL_ADMIN_TOKEN", "INTERNAL_AUTH",
                 "INTERNAL_TLS_CERT_FILE", "INTERNAL_TLS_KEY_FILE", "INTERNAL_TLS_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="INTERNAL_TOKEN"):
        InternalAuth.from_env()
    monkeypatch.setenv("INTERNAL_TOKEN", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        InternalAuth.from_env()
    monkeypatch.setenv("INTERNAL_TOKEN", TOKEN)
    assert InternalAuth.from_env().token == TOKEN
    monkeypatch.setenv("INTERNAL_TLS_CERT_FILE", "/nonexistent.pem")
    with pytest.raises(ConfigError, match="INTERNAL_TLS_KEY_FILE"):
        InternalAuth.from_env()
    monkeypatch.delenv("INTERNAL_TOKEN")
    monkeypatch.delenv("INTERNAL_TLS_CERT_FILE")
    monkeypatch.setenv("INTERNAL_AUTH", "off")
    assert not InternalAuth.from_env().enabled


async def test_token_is_required_and_health_stays_open() -> None:
    running = await open_server(Service(), "127.0.0.1", 0, auth=AUTH)
    await running.mark_serving()
    target = f"127.0.0.1:{running.port}"
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            plain = router_pb2_grpc.RouterServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await plain.Route(router_pb2.RouteRequest())
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stream = plain.ChatStream(router_pb2.ChatStreamRequest())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stream.read()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            wrong = authed(router_pb2_grpc.RouterServiceStub(channel),
                           InternalAuth(token="x" * 24))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await wrong.Route(router_pb2.RouteRequest())
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            good = authed(router_pb2_grpc.RouterServiceStub(channel), AUTH)
            assert (await good.Route(router_pb2.RouteRequest())).route.model == "ok"
    finally:
        await running.server.stop(0.1)


async def test_undecodable_bytes_are_invalid_argument() -> None:
    running = await open_server(Service(), "127.0.0.1", 0, auth=AUTH)
    await running.mark_serving()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            raw = channel.unary_unary(ROUTE)  # bytes in, bytes out
            # field 2 (model, a string) holding invalid UTF-8
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await raw(b"\x12\x02\xff\xfe", metadata=AUTH.metadata())
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "RouteRequest" in caught.value.details()
    finally:
        await running.server.stop(0.1)


async def test_drain_ends_running_streams_with_unavailable_shutting_down() -> None:
    running = await open_server(Service(), "127.0.0.1", 0, auth=AUTH)
    await running.mark_serving()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = authed(router_pb2_grpc.RouterServiceStub(channel), AUTH)
        stream = stub.ChatStream(router_pb2.ChatStreamRequest())
        assert (await stream.read()).text == "first"
        # With a 2.5 s grace the drain ends running calls 0.5 s before gRPC's own stop would
        # (the widest gap it leaves; 0.2 s with a 1 s grace, too little on a loaded machine).
        grace = 2.5
        started = asyncio.get_running_loop().time()
        drain = asyncio.create_task(running.drain(grace))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in caught.value.details()
        assert retry_delay_of(caught.value) == 0.0
        assert asyncio.get_running_loop().time() - started < grace
        await drain


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsFiles]:
    folder: Path = tmp_path_factory.mktemp("certs")
    ca = make_ca(folder)
    other_ca = make_ca(folder, "other-ca")
    files = {"server": make_cert(folder, ca, "server"), "client": make_cert(folder, ca, "client"),
             "stranger": make_cert(folder, other_ca, "stranger")}
    return {name: TlsFiles(cert=f.cert.read_bytes(), key=f.key.read_bytes(),
                           ca=f.ca.read_bytes()) for name, f in files.items()}


async def test_mutual_tls_needs_a_certificate_from_the_ca(certs: dict[str, TlsFiles]) -> None:
    server_auth = InternalAuth(admin_token=ADMIN, tls=certs["server"])
    running = await open_server(Service(), "127.0.0.1", 0, auth=server_auth)
    await running.mark_serving()
    target = f"localhost:{running.port}"
    try:
        client = InternalAuth(tls=certs["client"])
        async with aio_channel(target, client) as channel:
            reply = await router_pb2_grpc.RouterServiceStub(channel).Route(
                router_pb2.RouteRequest(), timeout=10)
            assert reply.route.model == "ok"
        # Each of these trusts the server, so only the server's check of the client can refuse:
        # a certificate from another CA, and no certificate at all; then plaintext.
        stranger = TlsFiles(cert=certs["stranger"].cert, key=certs["stranger"].key,
                            ca=certs["server"].ca)
        for channel in (aio_channel(target, InternalAuth(tls=stranger)),
                        grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(
                            root_certificates=certs["server"].ca)),
                        grpc.aio.insecure_channel(target)):
            async with channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await router_pb2_grpc.RouterServiceStub(channel).Route(
                        router_pb2.RouteRequest(), timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.server.stop(0.1)
