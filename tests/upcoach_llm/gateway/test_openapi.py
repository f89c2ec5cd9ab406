"""/openapi.json says what the gateway does: its statuses, its error shape, and request schemas
that refuse what the server refuses (checked with a JSON Schema validator, as a client would)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import jsonschema_rs
import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.common.limits import INT32_MAX, INT64_MAX, MAX_NAME_CHARS
from upcoach_llm.gateway.http.text import NOT_BLANK
from upcoach_llm.gateway.openapi import error_schema

ERROR_REF = "#/components/schemas/ErrorResponse"
OLLAMA_ERROR_REF = "#/components/schemas/OllamaErrorResponse"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def document(gateway) -> dict[str, Any]:
    gw: RunningGateway = await gateway({"LLM_API_KEY": "k"})
    async with gw.client() as client:
        reply = await client.get("/openapi.json")
    assert reply.status_code == 200
    return reply.json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, item in document["paths"].items()
            for method, operation in item.items()]


def validator(document: dict[str, Any], component: str) -> jsonschema_rs.Validator:
    root = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.validator_for(root)


async def test_no_422_and_every_error_in_the_error_shape(document) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        for status, response in responses.items():
            if int(status) < 400 or (path, status) == ("/health", "503"):
                continue
            assert response["content"] == {"application/json": {"schema": error_schema(path)}}, (
                method, path, status)
    assert error_schema("/api/chat") == {"$ref": OLLAMA_ERROR_REF}
    assert error_schema("/api/chat/completions") == {"$ref": ERROR_REF}


async def test_each_operation_documents_what_its_layers_answer(document) -> None:
    public = {"/health", "/livez", "/readyz", "/metrics", "/api/metrics"}
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= statuses, (method, path)
        if operation.get("parameters"):
            assert "400" in statuses, (method, path)
        if path not in public:
            assert {"401", "429", "503"} <= statuses, (method, path)
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"404", "502", "503", "504"} <= set(chat)
    assert "text/event-stream" in chat["200"]["content"]


async def test_every_ref_resolves(document) -> None:
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)))
    assert refs
    schemas = document["components"]["schemas"]
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert "$defs" not in json.dumps(document)
    assert {"ChatCompletionChunk", "ErrorResponse", "Delta"} <= set(schemas)


@pytest.mark.parametrize(("component", "body"), [
    ("EmbeddingRequest", {"input": ""}),
    ("EmbeddingRequest", {"input": []}),
    ("EmbeddingRequest", {"input": ["ok", " \n"]}),
    ("EmbeddingRequest", {"input": "x", "dimensions": INT32_MAX + 1}),
    ("EmbeddingRequest", {"input": "x", "model": "m" * (MAX_NAME_CHARS + 1)}),
    ("ChatCompletionRequest", {"messages": [{"role": "user", "content": ""}]}),
    ("ChatCompletionRequest", {"messages": [{"role": "user", "content": " \t"}]}),
    ("ChatCompletionRequest", {"messages": [{"role": "user", "content": []}]}),
    ("ChatCompletionRequest", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": " "}]}]}),
    ("ChatCompletionRequest", {"messages": HELLO, "max_tokens": INT32_MAX + 1}),
    ("ChatCompletionRequest", {"messages": HELLO, "max_completion_tokens": 0}),
    ("ChatCompletionRequest", {"messages": HELLO, "seed": 2 * INT64_MAX}),
    ("ChatCompletionRequest", {"messages": HELLO, "stop": [""]}),
    ("ChatCompletionRequest", {"messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}),
    ("ChatCompletionRequest", {"messages": HELLO, "tools": [{"type": "function"}]}),
    ("ChatCompletionRequest", {"messages": HELLO, "feature": "f" * (MAX_NAME_CHARS + 1)}),
    ("ChatCompletionRequest", {"messages": HELLO, "top_k": 40}),
    ("ChatCompletionRequest", {"messages": HELLO, "tool_choice": "auto"}),
    ("ChatCompletionRequest", {"messages": HELLO, "logit_bias": {"50256": -100}}),
    ("ChatCompletionRequest", {"messages": HELLO, "parallel_tool_calls": False}),
    ("ChatCompletionRequest", {"messages": HELLO, "store": True}),
    ("ChatCompletionRequest", {"messages": HELLO, "frequency_penalty": 2.5}),
    ("ChatCompletionRequest", {"messages": HELLO, "logprobs": True, "top_logprobs": 21}),
    ("ChatCompletionRequest", {"messages": HELLO, "response_format": {"type": "xml"}}),
    ("ChatCompletionRequest", {"messages": HELLO, "response_format": {
        "type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}}),
    ("CoachingChatRequest", {"messages": HELLO, "context_type": ""}),
    ("SearchRequest", {"query": " "}),
    ("SearchRequest", {"query": "x", "top_k": 51}),
    ("DecideRequest", {"prompt": "hi", "on_device_max_prompt_length": INT32_MAX + 1}),
    ("DecideRequest", {"mode": "auto"}),
    ("DecideRequest", {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}),
    ("DecideRequest", {"messages": []}),
    ("DecideRequest", {"prompt": " "}),
])
async def test_request_schemas_refuse_what_the_server_refuses(document, component: str,
                                                              body: dict) -> None:
    assert not validator(document, component).is_valid(body)


@pytest.mark.parametrize(("component", "body"), [
    ("EmbeddingRequest", {"input": ["ok", "fine"], "dimensions": 4}),
    ("ChatCompletionRequest", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": " "}, {"type": "text", "text": "hi"}]}],
        "max_tokens": INT32_MAX, "seed": -INT64_MAX - 1, "stop": ["\n"], "tools": []}),
    ("ChatCompletionRequest", {"messages": HELLO, "response_format": {
        "type": "json_schema", "json_schema": {"name": "tip", "schema": {"type": "object"},
                                               "strict": True}},
        "logprobs": True, "top_logprobs": 2, "frequency_penalty": -2, "presence_penalty": 2,
        "tool_choice": "none", "logit_bias": {}, "store": False, "user": "u",
        "metadata": {"app": "coach"}, "stream": True, "stream_options": {"include_usage": True}}),
    ("CoachingChatRequest", {"messages": HELLO, "context_type": "habits"}),
    ("DecideRequest", {"prompt": "a", "on_device_max_prompt_length": INT32_MAX}),
    ("DecideRequest", {"messages": [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "hi"}]}),
])
async def test_request_schemas_admit_what_the_server_serves(document, component: str,
                                                            body: dict) -> None:
    assert validator(document, component).is_valid(body)


def test_the_not_blank_pattern_is_what_str_strip_leaves_non_empty() -> None:
    """JSON Schema validators read the pattern with their own regex engine and ``\\s``."""
    pattern = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK})
    differ = [hex(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF
              and pattern.is_valid(chr(c)) == chr(c).isspace()]
    assert differ == []
