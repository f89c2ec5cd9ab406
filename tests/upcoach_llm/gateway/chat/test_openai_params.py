"""OpenAI's chat parameters are honoured or refused, never ignored: the new sampling fields reach
the router, logprobs come back in OpenAI's shape, usage is counted once in a stream, and every
parameter the gateway cannot honour (or does not know) is a 400 naming it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.sse import content, parse
from upcoach_llm.api import common_pb2
from upcoach_llm.common.limits import MAX_SCHEMA_CHARS, MIN_TOP_P
from upcoach_llm.gateway.chat import convert
from upcoach_llm.gateway.chat.protocol import REFUSED, ChatCompletionRequest
from upcoach_llm.gateway.errors import from_validation

HELLO = [{"role": "user", "content": "hi there"}]
CHAT = "/v1/chat/completions"
SCHEMA = {"type": "object", "properties": {"tip": {"type": "string"}}, "required": ["tip"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "tip", "schema": SCHEMA}}


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": HELLO, **fields})


# (field, value, the words the 400's message must contain)
REFUSALS = [
    ("tools", [{"type": "function", "function": {"name": "f"}}], "not supported"),
    ("functions", [{"name": "f"}], "not supported"),
    ("tool_choice", "auto", "not supported"),
    ("tool_choice", {"type": "function", "function": {"name": "f"}}, "not supported"),
    ("function_call", "auto", "not supported"),
    ("parallel_tool_calls", False, "not supported"),
    ("logit_bias", {"50256": -100}, "not supported"),
    ("audio", {"voice": "alloy", "format": "wav"}, "not supported"),
    ("modalities", ["text", "audio"], "only"),
    ("prediction", {"type": "content", "content": "x"}, "not supported"),
    ("reasoning_effort", "low", "reasoning"),
    ("verbosity", "low", "verbosity"),
    ("web_search_options", {}, "not supported"),
    ("service_tier", "flex", "service tier"),
    ("store", True, "not stored"),
    ("n", 2, "1"),
    ("top_k", 40, "unsupported field"),
    ("repetition_penalty", 1.1, "unsupported field"),
    ("guided_json", {}, "unsupported field"),
    ("best_of", 2, "unsupported field"),
]


@pytest.mark.parametrize(("field", "value", "words"), REFUSALS,
                         ids=[f"{f}={json.dumps(v)[:20]}" for f, v, _ in REFUSALS])
async def test_unsupported_parameters_are_a_400_naming_them(gateway, field: str, value: Any,
                                                            words: str) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(CHAT, json={"messages": HELLO, field: value})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == field
    assert error["message"].startswith(f"{field}: ") and words in error["message"], error
    assert gw.double.calls.chat == []


def test_every_refused_parameter_is_tested() -> None:
    assert set(REFUSED) <= {field for field, _, _ in REFUSALS}


# (body fields, the param of the 400)
BAD_VALUES = [
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"response_format": {"type": "json_object", "json_schema": JSON_SCHEMA["json_schema"]}},
     "response_format.json_schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}},
     "response_format.json_schema.name"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "a b",
                                                                 "schema": SCHEMA}}},
     "response_format.json_schema.name"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "t"}}},
     "response_format.json_schema.schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": "{}"}}},
     "response_format.json_schema.schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "t", "schema": {"description": "x" * MAX_SCHEMA_CHARS}}}},
     "response_format.json_schema.schema"),
    ({"response_format": {"type": "json_object", "strict": True}}, "response_format.strict"),
    ({"response_format": "json"}, "response_format"),
    ({"logprobs": "yes"}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": False, "top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
    ({"frequency_penalty": 2.5}, "frequency_penalty"),
    ({"presence_penalty": -2.01}, "presence_penalty"),
    ({"presence_penalty": "0.5"}, "presence_penalty"),
    ({"stream_options": {"include_usage": True, "chunk_size": 2}}, "stream_options.chunk_size"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"stream": False, "stream_options": {"include_usage": True}}, "stream_options"),
    ({"messages": [{"role": "user", "content": "hi", "name": "alice"}]}, "messages[0].name"),
    ({"top_p": -0.1}, "top_p"),
]


@pytest.mark.parametrize(("fields", "param"), BAD_VALUES,
                         ids=[json.dumps(f)[:40] for f, _ in BAD_VALUES])
def test_bad_values_name_their_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request(**fields)
    error = from_validation(RequestValidationError(caught.value.errors()))
    assert (error.status, error.param) == (400, param), error.message


def test_what_clients_routinely_send_is_accepted() -> None:
    body = request(user="u-1", metadata={"app": "coach"}, store=False, n=1, stream=True,
                   stream_options={"include_usage": True, "include_obfuscation": False},
                   tool_choice="none", function_call="none", tools=[], functions=[],
                   logit_bias={}, modalities=["text"], service_tier="auto",
                   parallel_tool_calls=None, audio=None, reasoning_effort=None,
                   safety_identifier="s", prompt_cache_key="k", logprobs=False,
                   response_format={"type": "text"})
    assert body.stream_options is not None and body.stream_options.include_usage
    assert convert.canonical(body, "") == convert.canonical(request(), "")


def test_nulls_openai_allows_and_top_p_0_are_accepted() -> None:
    """openai-python sends an explicit None as null; OpenAI's top_p minimum is 0."""
    body = request(n=None, stream=None, top_p=0)
    assert convert.sampling(body).top_p == pytest.approx(MIN_TOP_P)
    assert convert.sampling(request(top_p=0.5)).top_p == 0.5


def test_the_new_fields_become_sampling_params() -> None:
    params = convert.sampling(request(frequency_penalty=0.5, presence_penalty=-1, logprobs=True,
                                      top_logprobs=3, response_format=JSON_SCHEMA))
    assert (params.frequency_penalty, params.presence_penalty) == (0.5, -1.0)
    assert (params.logprobs, params.top_logprobs) == (True, 3)
    assert params.response_format.type == common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert params.response_format.schema_name == "tip"
    assert json.loads(params.response_format.schema_json) == SCHEMA
    assert list(json.loads(params.response_format.schema_json)["properties"]) == ["tip"]
    bare = convert.sampling(request())
    for name in ("frequency_penalty", "presence_penalty", "top_logprobs", "response_format"):
        assert not bare.HasField(name), name
    assert not bare.logprobs
    json_object = convert.sampling(request(response_format={"type": "json_object"}))
    assert json_object.response_format == common_pb2.ResponseFormat(
        type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)


def test_a_lone_surrogate_in_a_schema_still_fits_protobuf() -> None:
    params = convert.sampling(request(response_format={"type": "json_schema", "json_schema": {
        "name": "t", "schema": {"enum": ["\ud800"]}}}))
    assert params.SerializeToString()
    assert json.loads(params.response_format.schema_json) == {"enum": ["\ud800"]}


@pytest.mark.parametrize("other", [
    {"response_format": {"type": "json_object"}},
    {"response_format": JSON_SCHEMA},
    {"response_format": {"type": "json_schema", "json_schema": {
        "name": "tip", "schema": {**SCHEMA, "required": []}}}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "other",
                                                                "schema": SCHEMA}}},
    {"logprobs": True},
    {"logprobs": True, "top_logprobs": 2},
    {"frequency_penalty": 0.5},
    {"presence_penalty": 0.5},
])
def test_each_new_field_changes_the_cache_key_input(other: dict[str, Any]) -> None:
    keys = {json.dumps(convert.canonical(request(**fields), ""), sort_keys=True)
            for fields in ({}, other)}
    assert len(keys) == 2


async def test_the_router_gets_the_new_fields(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(CHAT, json={
            "messages": HELLO, "frequency_penalty": 0.25, "presence_penalty": 1.5,
            "response_format": JSON_SCHEMA})
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["logprobs"] is None
    sampling = gw.double.calls.chat[-1].sampling
    assert (sampling.frequency_penalty, sampling.presence_penalty) == (0.25, 1.5)
    assert sampling.response_format.type == common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert json.loads(sampling.response_format.schema_json) == SCHEMA


async def test_the_coaching_chat_takes_the_same_parameters(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        good = await client.post("/api/coaching/chat", json={
            "messages": HELLO, "context_type": "habits", "response_format": {
                "type": "json_object"}})
        bad = await client.post("/api/coaching/chat", json={
            "messages": HELLO, "context_type": "habits", "tool_choice": "required"})
    assert good.status_code == 200, good.text
    assert good.json()["context_type"] == "habits"
    assert gw.double.calls.chat[-1].sampling.response_format.type == (
        common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tool_choice"


async def test_logprobs_in_a_whole_reply(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(CHAT, json={"messages": HELLO, "logprobs": True,
                                              "top_logprobs": 2})
    assert reply.status_code == 200, reply.text
    [choice] = reply.json()["choices"]
    tokens = choice["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == choice["message"]["content"]
    assert tokens[1] == {"token": " hi", "logprob": -0.5, "bytes": list(b" hi"), "top_logprobs": [
        {"token": "alt0", "logprob": -1.0, "bytes": list(b"alt0")},
        {"token": "alt1", "logprob": -2.0, "bytes": list(b"alt1")}]}
    sampling = gw.double.calls.chat[-1].sampling
    assert (sampling.logprobs, sampling.top_logprobs) == (True, 2)


async def test_logprobs_on_each_stream_chunk(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(CHAT, json={"messages": HELLO, "logprobs": True,
                                              "stream": True})
    payloads, done = parse(reply.text)
    assert done
    texts = [p["choices"][0] for p in payloads if p["choices"][0]["delta"].get("content")]
    assert len(texts) == 3
    for choice in texts:
        [token] = choice["logprobs"]["content"]
        assert token["token"] == choice["delta"]["content"] and token["top_logprobs"] == []
    assert [c["logprobs"]["content"][0]["logprob"] for c in texts] == [0.0, -0.5, -1.0]
    assert content(payloads) == "echo: hi there"


async def test_no_logprobs_unless_asked(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.post(CHAT, json={"messages": HELLO, "stream": True})
    payloads, _ = parse(reply.text)
    assert all(c["logprobs"] is None for p in payloads for c in p["choices"])
    assert not gw.double.calls.chat[-1].sampling.logprobs


@pytest.mark.parametrize("cached", [False, True])
async def test_usage_comes_once_on_a_last_chunk_without_choices(gateway, cached: bool) -> None:
    gw: RunningGateway = await gateway()
    body = {"messages": [{"role": "user", "content": f"usage once {cached}"}], "stream": True,
            "temperature": 0, "stream_options": {"include_usage": True}}
    async with gw.client() as client:
        if cached:
            warm = await client.post(CHAT, json={**body, "stream": False,
                                                 "stream_options": None})
            assert warm.headers["x-cache"] == "MISS"
            await _until_cached(client, body)
        reply = await client.post(CHAT, json=body)
        plain = await client.post(CHAT, json={**body, "stream_options": None})
    assert reply.headers["x-cache"] == ("HIT" if cached else "MISS")
    payloads, done = parse(reply.text)
    assert done
    with_usage = [p for p in payloads if p.get("usage")]
    assert with_usage == [payloads[-1]]
    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4,
                                     "total_tokens": 7}
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    unasked, _ = parse(plain.text)
    assert all("usage" not in p for p in unasked) and all(p["choices"] for p in unasked)


async def _until_cached(client, body: dict[str, Any]) -> None:
    """The store runs after the response went out: waits until a whole request hits."""
    for _ in range(100):
        probe = await client.post(CHAT, json={**body, "stream": False, "stream_options": None})
        if probe.headers["x-cache"] == "HIT":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the reply was never cached")


async def test_a_logprobs_reply_is_not_answered_from_the_cache(gateway) -> None:
    gw: RunningGateway = await gateway()
    body = {"messages": [{"role": "user", "content": "logprobs twice"}], "temperature": 0,
            "logprobs": True}
    async with gw.client() as client:
        first = await client.post(CHAT, json=body)
        second = await client.post(CHAT, json=body)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "MISS")
    assert second.json()["choices"][0]["logprobs"]["content"]
