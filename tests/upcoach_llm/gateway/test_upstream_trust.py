"""What the gateway sends its upstreams (the internal token, never the admin token) and how it
answers an upstream that is busy: 429 with Retry-After from the RetryInfo, REST and grpc-web."""

from __future__ import annotations

import grpc
import pytest

from tests.upcoach_llm.gateway.conftest import INTERNAL_TOKEN
from upcoach_llm.api import (
    embedding_pb2,
    embedding_pb2_grpc,
    model_registry_pb2,
    model_registry_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

BUSY = {"messages": [{"role": "user", "content": "BUSY"}]}


async def test_upstream_calls_carry_the_internal_token(gateway) -> None:
    running = await gateway({"INTERNAL_ADMIN_TOKEN": "admin-token-never-sent-0123"})
    async with running.client() as client:
        reply = await client.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert reply.status_code == 200
    metadata = running.double.calls.headers[-1]
    assert metadata["authorization"] == f"Bearer {INTERNAL_TOKEN}"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_busy_upstream_is_429_with_retry_after(gateway, stream: bool) -> None:
    running = await gateway()
    async with running.client() as client:
        reply = await client.post("/v1/chat/completions", json={**BUSY, "stream": stream})
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "3"
    error = reply.json()["error"]
    assert (error["code"], error["type"]) == ("server_busy", "rate_limit_error")


async def test_a_busy_upstream_over_grpc_web_is_resource_exhausted(gateway) -> None:
    running = await gateway()
    async with running.client() as client:
        reply = await client.post(
            "/upcoach.llm.v1.RouterService/ChatStream",
            content=_connect_frame(b'{"messages": [{"role": "ROLE_USER", "content": "BUSY"}]}'),
            headers={"Content-Type": "application/connect+json"})
    assert reply.status_code == 200
    assert b'"code":"resource_exhausted"' in reply.content.replace(b" ", b"")


def _connect_frame(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


ADMIN_RPCS = [("/upcoach.llm.v1.EmbeddingService/IndexContent", False),
              ("/upcoach.llm.v1.RouterService/ListBackends", False),
              ("/upcoach.llm.v1.ModelRegistryService/PullModel", True)]


async def test_the_double_serves_the_administrative_rpcs(double) -> None:
    """The control for the test below: reached, each of them answers and is recorded."""
    async with grpc.aio.insecure_channel(double.address) as channel:
        await embedding_pb2_grpc.EmbeddingServiceStub(channel).IndexContent(
            embedding_pb2.IndexContentRequest())
        await router_pb2_grpc.RouterServiceStub(channel).ListBackends(
            router_pb2.ListBackendsRequest())
        _ = [m async for m in model_registry_pb2_grpc.ModelRegistryServiceStub(
            channel).PullModel(model_registry_pb2.PullModelRequest(name="mistral"))]
    assert double.calls.admin == ["IndexContent", "ListBackends", "PullModel"]


@pytest.mark.parametrize(("path", "streaming"), ADMIN_RPCS)
async def test_administrative_rpcs_are_not_served_on_the_public_port(gateway, path: str,
                                                                     streaming: bool) -> None:
    running = await gateway()
    async with running.client() as client:
        if streaming:
            reply = await client.post(path, content=_connect_frame(b"{}"),
                                      headers={"Content-Type": "application/connect+json"})
        else:
            reply = await client.post(path, content=b"{}",
                                      headers={"Content-Type": "application/json"})
    assert b"unimplemented" in reply.content, reply.content
    assert running.double.calls.admin == [], "the call reached the service"
