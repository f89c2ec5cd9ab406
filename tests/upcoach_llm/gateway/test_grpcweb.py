"""grpc-web and Connect on the gateway's port (Python connectrpc client; the npm client test is
test_grpcweb_npm.py): streaming, status pass-through, keys, rate limit, cancellation."""

from __future__ import annotations

import asyncio

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.api import (
    common_pb2,
    embedding_connect,
    embedding_pb2,
    model_registry_connect,
    model_registry_pb2,
    router_connect,
    router_pb2,
)


def chat(text: str, **fields: str) -> router_pb2.ChatStreamRequest:
    return router_pb2.ChatStreamRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)], **fields)


def router(gw: RunningGateway, protocol: ProtocolType = ProtocolType.GRPC_WEB
           ) -> router_connect.RouterServiceClient:
    return router_connect.RouterServiceClient(gw.url, protocol=protocol)


@pytest.mark.parametrize("protocol", [ProtocolType.GRPC_WEB, ProtocolType.CONNECT])
async def test_chat_stream_relays_every_message(gateway, protocol: ProtocolType) -> None:
    gw: RunningGateway = await gateway()
    replies = [m async for m in router(gw, protocol).chat_stream(chat("one two three"))]
    assert replies[0].route.model == "smollm2-135m-instruct"
    assert "".join(r.text for r in replies) == "echo: one two three"
    assert len([r for r in replies if r.text]) == 4
    assert replies[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    assert replies[-1].usage.completion_tokens == 4


async def test_coaching_chat_over_grpc_web(gateway) -> None:
    gw: RunningGateway = await gateway()
    replies = [m async for m in router(gw).chat_stream(chat("hi", coaching_context="habits"))]
    assert replies[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    assert gw.double.calls.chat[-1].coaching_context == "habits"


@pytest.mark.parametrize(("request_", "code"), [
    (chat("hi", model="gpt-9"), Code.NOT_FOUND),
    (chat("hi", coaching_context="taxes"), Code.INVALID_ARGUMENT),
    (chat("UNAVAILABLE"), Code.UNAVAILABLE),
])
async def test_status_codes_pass_through(gateway, request_: router_pb2.ChatStreamRequest,
                                         code: Code) -> None:
    gw: RunningGateway = await gateway()
    with pytest.raises(ConnectError) as caught:
        _ = [m async for m in router(gw).chat_stream(request_)]
    assert caught.value.code == code


async def test_error_mid_stream_after_messages(gateway) -> None:
    gw: RunningGateway = await gateway()
    seen = []
    with pytest.raises(ConnectError) as caught:
        async for message in router(gw).chat_stream(chat("FAIL_AFTER 2")):
            seen.append(message)
    assert caught.value.code == Code.UNAVAILABLE
    assert [m.text for m in seen if m.text] == ["part0 ", "part1 "]


async def test_unary_rpcs(gateway) -> None:
    gw: RunningGateway = await gateway()
    whole = await router(gw).chat(router_pb2.ChatRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="hello")]))
    assert whole.text == "echo: hello"
    decision = await router(gw).decide_inference(router_pb2.DecideInferenceRequest(prompt="hey"))
    assert decision.target == router_pb2.INFERENCE_TARGET_ON_DEVICE
    vectors = await embedding_connect.EmbeddingServiceClient(
        gw.url, protocol=ProtocolType.GRPC_WEB).embed(embedding_pb2.EmbedRequest(texts=["ab"]))
    assert list(vectors.embeddings[0].values) == [2.0, 0.5, -0.25, 1.0]
    registry = model_registry_connect.ModelRegistryServiceClient(
        gw.url, protocol=ProtocolType.GRPC_WEB)
    listed = await registry.list_models(model_registry_pb2.ListModelsRequest())
    assert listed.models[0].availability[0].detail == (  # the address stays inside the stack
        "backend down: backend ollama (ollama) is unreachable")
    edge = await registry.list_edge_models(model_registry_pb2.ListEdgeModelsRequest(
        platform=model_registry_pb2.PLATFORM_IOS, ram_gb=4))
    assert edge.default_model_id == "smollm-360m"
    with pytest.raises(ConnectError) as caught:
        await registry.list_edge_models(model_registry_pb2.ListEdgeModelsRequest(ram_gb=4))
    assert caught.value.code == Code.INVALID_ARGUMENT


async def test_admin_rpcs_are_not_exposed(gateway) -> None:
    gw: RunningGateway = await gateway()
    with pytest.raises(ConnectError) as caught:
        await router(gw).list_backends(router_pb2.ListBackendsRequest())
    assert caught.value.code == Code.UNIMPLEMENTED


async def test_keys_on_grpc_web(gateway) -> None:
    gw: RunningGateway = await gateway({"LLM_API_KEY": "app-key"})
    with pytest.raises(ConnectError) as missing:
        _ = [m async for m in router(gw).chat_stream(chat("hi"))]
    assert missing.value.code == Code.UNAUTHENTICATED
    with pytest.raises(ConnectError) as wrong:
        await router(gw).chat(router_pb2.ChatRequest(), headers={"x-api-key": "other"})
    assert wrong.value.code == Code.UNAUTHENTICATED
    for headers in ({"authorization": "Bearer app-key"}, {"x-api-key": "app-key"}):
        replies = [m async for m in router(gw).chat_stream(chat("hi"), headers=headers)]
        assert replies[-1].finish_reason == common_pb2.FINISH_REASON_STOP


async def test_rate_limit_on_grpc_web(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "2"})
    request = router_pb2.DecideInferenceRequest(prompt="hey")
    await router(gw).decide_inference(request)
    await router(gw).decide_inference(request)
    with pytest.raises(ConnectError) as caught:
        await router(gw).decide_inference(request)
    assert caught.value.code == Code.RESOURCE_EXHAUSTED
    async with gw.client() as client:
        rest = await client.get("/api/models")
    assert rest.status_code == 429


async def test_a_rate_limit_refusal_carries_the_rest_headers(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "1"})
    path = "/upcoach.llm.v1.RouterService/DecideInference"
    async with gw.client() as client:
        first = await client.post(path, json={"prompt": "hey"})
        refused = await client.post(path, json={"prompt": "hey"})
    assert first.status_code == 200 and first.headers["x-ratelimit-limit"] == "1"
    assert refused.status_code == 429 and refused.json()["code"] == "resource_exhausted"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize("protocol", [ProtocolType.GRPC_WEB, ProtocolType.CONNECT])
async def test_a_body_over_the_limit_is_resource_exhausted_in_the_protocol(
        gateway, protocol: ProtocolType) -> None:
    gw: RunningGateway = await gateway({"MAX_BODY_BYTES": "2048"})
    big = router_pb2.ChatRequest(messages=[common_pb2.ChatMessage(
        role=common_pb2.ROLE_USER, content="x" * 5000)])
    with pytest.raises(ConnectError) as caught:
        await router(gw, protocol).chat(big)
    assert caught.value.code == Code.RESOURCE_EXHAUSTED
    assert "larger than" in caught.value.message
    assert not gw.double.calls.chat
    path = "/upcoach.llm.v1.RouterService/Chat"
    payload = big.SerializeToString()
    async with gw.client() as client:
        connect = await client.post(path, content=payload,
                                    headers={"content-type": "application/proto"})
        web = await client.post(path, content=b"\0" + len(payload).to_bytes(4, "big") + payload,
                                headers={"content-type": "application/grpc-web+proto"})
    assert connect.json()["code"] == "resource_exhausted"  # a Connect error body, not REST's
    assert web.status_code == 200 and b"grpc-status: 8\r\n" in web.content  # the trailers
    async with gw.client() as client:  # REST keeps its 413
        rest = await client.post("/v1/chat/completions", content=b"x" * 5000,
                                 headers={"content-type": "application/json"})
    assert rest.status_code == 413


async def test_client_going_away_cancels_the_upstream_call(gateway) -> None:
    gw: RunningGateway = await gateway()
    stream = router(gw).chat_stream(chat("SLOW"))
    async for message in stream:
        if message.text:
            break
    await stream.aclose()
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)


async def test_rpcs_are_counted_in_metrics(gateway) -> None:
    gw: RunningGateway = await gateway()
    _ = [m async for m in router(gw).chat_stream(chat("hi"))]
    async with gw.client() as client:
        text = (await client.get("/metrics")).text
    assert 'route="/upcoach.llm.v1.RouterService/ChatStream"' in text
    assert 'gateway_tokens_generated_total{model="smollm2-135m-instruct"} 2.0' in text


@pytest.mark.parametrize("protocol", [ProtocolType.GRPC_WEB, ProtocolType.CONNECT])
@pytest.mark.parametrize("text", ["FAIL_AFTER 2", "UNAVAILABLE"])
async def test_a_failed_stream_is_counted_once_as_over_sse(gateway, protocol: ProtocolType,
                                                           text: str) -> None:
    gw: RunningGateway = await gateway()
    with pytest.raises(ConnectError):
        _ = [m async for m in router(gw, protocol).chat_stream(chat(text))]
    async with gw.client() as client:
        metrics = (await client.get("/api/metrics")).json()
    assert metrics["errors_total"] == 1


@pytest.mark.parametrize("content_type", ["application/grpc", "application/grpc+proto",
                                          "application/grpc+json; charset=utf-8"])
async def test_plain_grpc_is_refused_with_what_to_use(gateway, content_type: str) -> None:
    """Plain gRPC needs HTTP/2 trailers: a 415 naming grpc-web and Connect, not an INTERNAL."""
    gw: RunningGateway = await gateway()
    payload = chat("hi").SerializeToString()
    async with gw.client() as client:
        refused = await client.post("/upcoach.llm.v1.RouterService/ChatStream",
                                    content=b"\0" + len(payload).to_bytes(4, "big") + payload,
                                    headers={"content-type": content_type})
        still = await client.get("/livez")
    assert refused.status_code == 415
    assert refused.headers["grpc-status"] == "12"
    assert "grpc-web" in refused.text and "Connect" in refused.text
    assert not gw.double.calls.chat
    assert still.status_code == 200


async def test_the_callers_deadline_reaches_the_router(gateway) -> None:
    gw: RunningGateway = await gateway()
    client = router_connect.RouterServiceClient(gw.url, protocol=ProtocolType.CONNECT)
    await client.chat(router_pb2.ChatRequest(messages=chat("hi").messages), timeout_ms=4000)
    await client.chat(router_pb2.ChatRequest(messages=chat("hi").messages))
    bounded, default = gw.double.calls.time_left
    assert 3.0 < bounded <= 4.0
    assert default > 4.0  # UPSTREAM_TIMEOUT_S
