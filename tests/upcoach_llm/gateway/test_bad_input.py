"""Bad REST input is a 400 naming the field, and the keep-alive connection goes on serving.

Each case once answered 500 (an int too big for its protobuf field, a lone surrogate protobuf
cannot encode) or 429 (a huge name echoed into gRPC's status trailer), and the 500 closed the
connection. Bodies are written with ``json.dumps`` so a lone surrogate travels as the JSON
escape ``\\ud800``, as any client's JSON encoder would send it.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.common.limits import (
    INT32_MAX,
    MAX_MESSAGES,
    MAX_NAME_CHARS,
    MAX_QUERY_CHARS,
    MAX_TEXT_CHARS,
    MAX_TEXTS,
)

LONE = "\ud800"
HUGE = "x" * 100_000
HELLO = {"messages": [{"role": "user", "content": "hi there"}]}
CHAT = "/v1/chat/completions"


def user(content: object) -> dict:
    return {"messages": [{"role": "user", "content": content}]}


CASES = [
    (CHAT, {**HELLO, "max_tokens": 2**31}, "max_tokens"),
    (CHAT, {**HELLO, "max_tokens": 10**30}, "max_tokens"),
    (CHAT, {**HELLO, "max_tokens": 0}, "max_tokens"),
    (CHAT, {**HELLO, "max_completion_tokens": 2**40}, "max_completion_tokens"),
    (CHAT, {**HELLO, "seed": 2**64}, "seed"),
    (CHAT, {**HELLO, "seed": -(2**70)}, "seed"),
    (CHAT, {**HELLO, "n": 2**64}, "n"),
    (CHAT, {**HELLO, "temperature": 10**400}, "temperature"),
    (CHAT, {**HELLO, "top_p": float("nan")}, "top_p"),
    (CHAT, user(LONE), "messages[0].content"),
    (CHAT, user([{"type": "text", "text": "ok " + LONE}]), "messages[0].content"),
    (CHAT, user(""), "messages[0].content"),
    (CHAT, user(" \n\t\u3000"), "messages[0].content"),
    (CHAT, user([]), "messages[0].content"),
    (CHAT, user([{"type": "text", "text": " "}, {"type": "text", "text": "\n"}]),
     "messages[0].content"),
    (CHAT, {"messages": [{"role": "user", "content": "hi", "name": LONE}]},
     "messages[0].name"),
    (CHAT, {"messages": [{"role": "user", "content": "x"}] * (MAX_MESSAGES + 1)}, "messages"),
    (CHAT, {**HELLO, "model": LONE}, "model"),
    (CHAT, {**HELLO, "model": HUGE}, "model"),
    (CHAT, {**HELLO, "feature": HUGE}, "feature"),
    (CHAT, {**HELLO, "feature": LONE}, "feature"),
    (CHAT, {**HELLO, "user": LONE}, "user"),
    (CHAT, {**HELLO, "stop": LONE}, "stop"),
    (CHAT, {**HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    (CHAT, {**HELLO, "stop": [""]}, "stop"),
    (CHAT, {**HELLO, "tools": [{"type": "function"}]}, "tools"),
    ("/api/coaching/chat", {**HELLO, "context_type": HUGE}, "context_type"),
    ("/api/coaching/chat", {**HELLO, "context_type": LONE}, "context_type"),
    ("/v1/embeddings", {"input": LONE}, "input"),
    ("/v1/embeddings", {"input": ["ok", LONE]}, "input"),
    ("/v1/embeddings", {"input": ""}, "input"),
    ("/v1/embeddings", {"input": "x" * (MAX_TEXT_CHARS + 1)}, "input"),
    ("/v1/embeddings", {"input": ["x"] * (MAX_TEXTS + 1)}, "input"),
    ("/v1/embeddings", {"input": "x", "model": LONE}, "model"),
    ("/api/embeddings", {"input": "x", "model": HUGE}, "model"),
    ("/v1/embeddings", {"input": "x", "dimensions": 2**40}, "dimensions"),
    ("/v1/embeddings", {"input": "x", "user": LONE}, "user"),
    ("/api/search", {"query": LONE}, "query"),
    ("/api/search", {"query": " "}, "query"),
    ("/api/search", {"query": "x" * (MAX_QUERY_CHARS + 1)}, "query"),
    ("/api/search", {"query": "focus", "top_k": 2**40}, "top_k"),
    ("/api/search", {"query": "focus", "category": LONE}, "category"),
    ("/api/search", {"query": "focus", "topk": 1}, "topk"),
    ("/api/search", {"query": "focus", "category": HUGE}, "category"),
    ("/api/inference/decide", {"prompt": "hi", "on_device_max_prompt_length": 2**40},
     "on_device_max_prompt_length"),
    ("/api/inference/decide", {"prompt": "hi", "on_device_max_prompt_length": INT32_MAX + 1},
     "on_device_max_prompt_length"),
    ("/api/inference/decide", {"prompt": LONE}, "prompt"),
]
IDS = [f"{path}-{param}-{i}" for i, (path, _, param) in enumerate(CASES)]


def keepalive_client(gw: RunningGateway) -> httpx.AsyncClient:
    """One connection at most, so a second request either reuses it or opens a new one."""
    return gw.client(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


def local_port(reply: httpx.Response) -> int:
    return reply.extensions["network_stream"].get_extra_info("client_addr")[1]


async def post_json(client: httpx.AsyncClient, path: str, body: object) -> httpx.Response:
    return await client.post(path, content=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})


async def assert_connection_serves(client: httpx.AsyncClient, refused: httpx.Response) -> None:
    """The refused request's connection answers a normal chat (no reconnect)."""
    good = await post_json(client, CHAT, HELLO)
    assert good.status_code == 200, good.text
    assert local_port(good) == local_port(refused)


@pytest.mark.parametrize(("path", "body", "param"), CASES, ids=IDS)
async def test_bad_input_is_400_naming_the_field(gateway, path: str, body: dict,
                                                 param: str) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        reply = await post_json(client, path, body)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["param"] == param, error
        assert error["message"].startswith(f"{param}: "), error
        assert error["type"] == "invalid_request_error"
        await assert_connection_serves(client, reply)
    assert gw.double.calls.embed == []
    assert len(gw.double.calls.chat) == 1


async def test_int32_max_tokens_reaches_the_service_whose_own_limit_answers(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        reply = await post_json(client, CHAT, {**HELLO, "max_tokens": INT32_MAX,
                                               "seed": -(2**63)})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "max_tokens"
        assert "above the limit" in reply.json()["error"]["message"]
        await assert_connection_serves(client, reply)
    sent = gw.double.calls.chat[0].sampling
    assert (sent.max_tokens, sent.seed) == (INT32_MAX, -(2**63))


async def test_a_long_model_in_the_path_is_400_naming_it(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        reply = await client.get("/v1/models/" + "m" * (MAX_NAME_CHARS + 1))
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "model"
        await assert_connection_serves(client, reply)


@pytest.mark.parametrize(("params", "param"), [
    ({"platform": "ios", "ram_gb": "1e400"}, "ram_gb"),
    ({"platform": "ios", "ram_gb": "nan"}, "ram_gb"),
    ({"platform": "windows", "ram_gb": "4"}, "platform"),
    ({"ram_gb": "4"}, "platform"),
])
async def test_bad_edge_query_is_400_naming_it(gateway, params: dict, param: str) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        reply = await client.get("/api/models/edge", params=params)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["param"] == param and error["message"].startswith(f"{param}: ")
        await assert_connection_serves(client, reply)


@pytest.mark.parametrize(("key", "param"), [("Connected-Flag", "Connected-Flag"), (LONE, None)])
async def test_an_unknown_field_is_400_named_as_sent(gateway, key: str,
                                                     param: str | None) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        reply = await post_json(client, "/api/inference/decide", {"prompt": "hi", key: 1})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == param
        await assert_connection_serves(client, reply)


@pytest.mark.parametrize("raw", [
    b'{"messages": "\xff\xfe"}',
    b'{"max_tokens": 1' + b"0" * 5000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
], ids=["not-utf8", "5000-digit-int", "nested-100000-deep"])
async def test_a_body_json_cannot_read_is_400(gateway, raw: bytes) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        reply = await client.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["type"] == "invalid_request_error"
        if raw.startswith(b"["):  # json.loads' own limit: the same answer as malformed JSON
            assert error["code"] == "invalid_json", error
        await assert_connection_serves(client, reply)


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x",
                                          "application/jsonx", "application/x-json",
                                          "text/json"])
@pytest.mark.parametrize("path", [CHAT, "/v1/embeddings"])
async def test_a_body_not_sent_as_json_is_a_415_naming_its_type(gateway, path: str,
                                                                content_type: str) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with keepalive_client(gw) as client:
        refused = await client.post(path, content=json.dumps(HELLO).encode(),
                                    headers={"Content-Type": content_type})
        assert refused.status_code == 415, refused.text
        error = refused.json()["error"]
        assert error["code"] == "unsupported_media_type" and content_type in error["message"]
        await assert_connection_serves(client, refused)


async def test_a_json_subtype_is_read_as_json(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    async with gw.client() as client:
        reply = await client.post(CHAT, content=json.dumps(HELLO).encode(),
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("field", ["temperature", "top_p", "frequency_penalty",
                                   "presence_penalty"])
async def test_nan_is_refused_as_not_a_finite_number(gateway, field: str) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "0"})
    raw = json.dumps({**HELLO, field: float("nan")}).encode()  # Python's json writes NaN
    async with gw.client() as client:
        reply = await client.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["message"] == f"{field}: Input should be a finite number"
