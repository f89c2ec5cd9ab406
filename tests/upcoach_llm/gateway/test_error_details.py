"""The failed field travels as data from the services to every client: the REST ``param`` comes
from the upstream's google.rpc.BadRequest, never from the message text, and grpc-web and Connect
clients receive the upstream's google.rpc details as they came."""

from __future__ import annotations

import base64

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from google.rpc import error_details_pb2

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.api import common_pb2, router_connect, router_pb2

BAD_FIELD = {"messages": [{"role": "user", "content": "BAD_FIELD"}]}


def chat(text: str, **fields: str) -> router_pb2.ChatStreamRequest:
    return router_pb2.ChatStreamRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)], **fields)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_rest_param_comes_from_the_violation_not_the_text(gateway,
                                                                     stream: bool) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json={**BAD_FIELD, "stream": stream})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["param"], error["message"]) == (
        "top_p", "this model cannot sample with that nucleus")


async def test_a_connect_json_error_carries_the_bad_request(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(
            "/upcoach.llm.v1.RouterService/Chat",
            json={"messages": [{"role": "ROLE_USER", "content": "hi"}],
                  "coachingContext": "taxes"},
            headers={"Connect-Protocol-Version": "1"})
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["code"] == "invalid_argument" and "taxes" in body["message"]
    [detail] = body["details"]
    assert detail["type"] == "google.rpc.BadRequest"
    value = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    [violation] = error_details_pb2.BadRequest.FromString(value).field_violations
    assert violation.field == "coaching_context" and "taxes" in violation.description


@pytest.mark.parametrize("protocol", [ProtocolType.GRPC_WEB, ProtocolType.CONNECT])
async def test_streaming_clients_receive_the_details(gateway, protocol: ProtocolType) -> None:
    gw: RunningGateway = await gateway()
    client = router_connect.RouterServiceClient(gw.url, protocol=protocol)
    with pytest.raises(ConnectError) as bad:
        _ = [m async for m in client.chat_stream(chat("hi", coaching_context="taxes"))]
    with pytest.raises(ConnectError) as busy:
        _ = [m async for m in client.chat_stream(chat("BUSY"))]
    assert bad.value.code == Code.INVALID_ARGUMENT
    [detail] = bad.value.details
    assert detail.type_name == "google.rpc.BadRequest"
    request = error_details_pb2.BadRequest.FromString(detail.message_bytes)
    assert request.field_violations[0].field == "coaching_context"
    assert busy.value.code == Code.RESOURCE_EXHAUSTED
    [detail] = busy.value.details
    assert detail.type_name == "google.rpc.RetryInfo"
    info = error_details_pb2.RetryInfo.FromString(detail.message_bytes)
    assert info.retry_delay.seconds == 3


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"messages": [{"role": "ROLE_USER", "content": "hi"}],
      "sampling": {"temperature": "MARK" + "y" * 5000}}, "sampling.temperature",
     "unmarshal message: sampling.temperature: invalid value"),
    ({"messages": [{"role": "ROLE_USER", "content": ["MARK" + "Y" * 5000]}]},
     "messages.content", "unmarshal message: messages.content: invalid value"),
    ({"sampling": {"maxTokens": "12MARK"}}, "sampling.max_tokens",
     "unmarshal message: sampling.max_tokens: invalid value"),
    ({"sampling": {"stop": [1]}}, "sampling.stop",
     "unmarshal message: sampling.stop: invalid value"),
])
async def test_an_undecodable_field_is_named_and_its_value_never_echoed(
        gateway, body: dict, field: str, message: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/upcoach.llm.v1.RouterService/Chat", json=body,
                                  headers={"Connect-Protocol-Version": "1"})
    assert reply.status_code == 400, reply.text
    error = reply.json()
    assert (error["code"], error["message"]) == ("invalid_argument", message)
    assert len(reply.content) < 600 and "MARKy" not in reply.text and "MARKY" not in reply.text
    [detail] = error["details"]
    value = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    [violation] = error_details_pb2.BadRequest.FromString(value).field_violations
    assert violation.field == field
    assert not gw.double.calls.chat


@pytest.mark.parametrize(("content", "content_type", "message"), [
    (b"{not json MARK", "application/json", "unmarshal message: the body is not valid JSON"),
    (b"\xff\xff\xff MARK", "application/proto",
     "unmarshal message: the body is not a valid ChatRequest"),
])
async def test_an_undecodable_body_says_so_in_a_few_words(gateway, content: bytes,
                                                         content_type: str, message: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/upcoach.llm.v1.RouterService/Chat", content=content,
                                  headers={"Connect-Protocol-Version": "1",
                                           "Content-Type": content_type})
    assert reply.status_code == 400, reply.text
    assert reply.json() == {"code": "invalid_argument", "message": message}
