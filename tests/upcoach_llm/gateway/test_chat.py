"""Chat completions and coaching chat through the gateway, against the router double."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.sse import comments, content, parse
from upcoach_llm.api import common_pb2

HELLO = {"messages": [{"role": "user", "content": "hi there"}]}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat/completions"])
async def test_whole_reply_openai_shape(gateway, path: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(path, json={**HELLO, "model": "mistral", "max_tokens": 50,
                                              "temperature": 0.5, "stop": "END"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "smollm2-135m-instruct"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hi there",
                                             "refusal": None}  # required by OpenAI's schema
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert reply.headers["x-cache"] == "MISS"
    assert reply.headers["server-timing"].startswith("engine;dur=2.00;")
    assert "ttft;dur=1.00;" in reply.headers["server-timing"]
    sent = gw.double.calls.chat[-1]
    assert sent.model == "mistral"
    assert sent.messages[0].role == common_pb2.ROLE_USER
    assert (sent.sampling.max_tokens, sent.sampling.temperature, list(sent.sampling.stop)) == (
        50, 0.5, ["END"])
    assert not sent.sampling.HasField("seed")


async def test_stream_sse_chunks_usage_and_done(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions",
                                  json={**HELLO, "stream": True,
                                        "stream_options": {"include_usage": True}})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    payloads, done = parse(reply.text)
    assert done
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert all(p["model"] == "smollm2-135m-instruct" for p in payloads)
    assert len({p["id"] for p in payloads}) == 1
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert content(payloads) == "echo: hi there"
    texts = [p for p in payloads if p["choices"] and p["choices"][0]["delta"].get("content")]
    assert len(texts) == 3
    finish = payloads[-2]
    assert finish["choices"][0]["finish_reason"] == "stop"
    # null on every chunk but the last, as OpenAI sends it, or LangChain counts it twice
    assert all(p["usage"] is None for p in payloads[:-1])
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] == 5
    assert comments(reply.text) == ["server-timing engine;dur=2.00, ttft;dur=1.00"]


@pytest.mark.parametrize("stream", [False, True])
async def test_unknown_model_is_404_naming_it(gateway, stream: bool) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions",
                                  json={**HELLO, "model": "gpt-9", "stream": stream})
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["param"] == "model" and error["code"] == "model_not_found"
    assert "gpt-9" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_unavailable_is_503(gateway, stream: bool) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "UNAVAILABLE"}], "stream": stream})
    assert reply.status_code == 503
    assert reply.json()["error"]["type"] == "service_unavailable_error"


@pytest.mark.parametrize("empty", ["", [{"type": "text", "text": ""}]])
async def test_an_assistant_message_may_be_empty_but_no_other(gateway, empty: object) -> None:
    gw: RunningGateway = await gateway()
    history = [{"role": "user", "content": "Count to 3"}, {"role": "assistant", "content": empty},
               {"role": "user", "content": "Again"}]
    async with gw.client() as client:
        taken = await client.post("/v1/chat/completions", json={"messages": history})
        history[0]["content"] = empty
        refused = await client.post("/v1/chat/completions", json={"messages": history})
    assert taken.status_code == 200, taken.text
    assert [m.content for m in gw.double.calls.chat[-1].messages] == ["Count to 3", "", "Again"]
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "messages[0].content"


async def test_router_validation_error_keeps_its_field(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json={**HELLO, "max_tokens": 5000})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "max_tokens"


async def test_error_after_stream_started_is_an_event_then_done(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "FAIL_AFTER 2"}], "stream": True})
    assert reply.status_code == 200
    payloads, done = parse(reply.text)
    assert done
    assert content(payloads[:-1]) == "part0 part1 "
    assert payloads[-1]["error"]["code"] == "upstream_unavailable"
    assert payloads[-1]["error"]["message"] == "backend went away"
    async with gw.client() as client:
        metrics = (await client.get("/api/metrics")).json()
    assert metrics["errors_total"] == 1


async def test_a_failure_after_the_finish_leaves_the_whole_reply_as_it_is(gateway) -> None:
    gw: RunningGateway = await gateway({"CACHE_MODE": "all"})
    body = {"messages": [{"role": "user", "content": "FINISH_THEN_FAIL"}], "stream": True,
            "temperature": 0}
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json=body)
        payloads, done = parse(reply.text)
        assert done and not any("error" in p for p in payloads), reply.text
        assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
        metrics = (await client.get("/api/metrics")).json()
        assert metrics["errors_total"] == 0
        for _ in range(50):  # the reply is stored once the stream has ended
            again = await client.post("/v1/chat/completions", json=body)
            if again.headers.get("x-cache") == "HIT":
                break
            await asyncio.sleep(0.05)
    assert again.headers.get("x-cache") == "HIT"


async def test_client_disconnect_cancels_the_upstream_call(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client, client.stream("POST", "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "SLOW"}], "stream": True}) as reply:
        async for line in reply.aiter_lines():
            if "tick" in line:
                break
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)


async def test_coaching_chat_forwards_the_context(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/api/coaching/chat", json={
            "messages": [{"role": "user", "content": "Help me build a morning routine"}],
            "context_type": "habits"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["context_type"] == "habits"
    assert reply.json()["choices"][0]["message"]["content"].startswith("echo: Help me")
    sent = gw.double.calls.chat[-1]
    assert (sent.coaching_context, sent.model) == ("habits", "")


async def test_coaching_chat_streams(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/api/coaching/chat", json={
            **HELLO, "context_type": "goals", "stream": True})
    payloads, done = parse(reply.text)
    assert done and content(payloads) == "echo: hi there"


async def test_unknown_context_is_400_listing_the_valid_ones(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        unknown = await client.post("/api/coaching/chat", json={**HELLO, "context_type": "taxes"})
        missing = await client.post("/api/coaching/chat", json=HELLO)
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert error["param"] == "context_type"
    assert "habits" in error["message"] and "taxes" in error["message"]
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "context_type"


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": []}, "messages"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({**HELLO, "max_tokens": -5}, "max_tokens"),
    ({**HELLO, "max_tokens": "5"}, "max_tokens"),
    ({**HELLO, "temperature": 3}, "temperature"),
    ({**HELLO, "stream": "yes"}, "stream"),
    ({**HELLO, "n": 2}, "n"),
    ({**HELLO, "tools": [{"type": "function"}]}, "tools"),
])
async def test_schema_violations_are_400_naming_the_field(gateway, body: dict,
                                                          param: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert gw.double.calls.chat == []


async def test_malformed_json_is_400(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post("/v1/chat/completions", content=b'{"messages": [',
                                  headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_json"


async def test_body_over_the_limit_is_413(gateway) -> None:
    gw: RunningGateway = await gateway({"MAX_BODY_BYTES": "2048"})
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]}).encode()

    async def chunked():
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    async with gw.client() as client:
        declared = await client.post("/v1/chat/completions", content=big,
                                     headers={"content-type": "application/json"})
        streamed = await client.post("/v1/chat/completions", content=chunked(),
                                     headers={"content-type": "application/json"})
        small = await client.post("/v1/chat/completions", content=json.dumps(HELLO).encode(),
                                  headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large"
    assert streamed.status_code == 413
    assert small.status_code == 200
    async with gw.client() as client:
        metrics = await client.get("/metrics")
    assert 'route="unmatched",status="413"} 2.0' in metrics.text
