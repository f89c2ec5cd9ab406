"""OpenAI's parameters through the real stack (every service a real process, SmolLM2 embedded),
as clients send them: usage counted once by the openai package and by LangChain's
``ChatOpenAI(stream_usage=True)``, JSON mode giving parseable JSON, and logprobs that add up to
the reply."""

from __future__ import annotations

import json
import uuid

import jsonschema_rs
import openai
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI

pytestmark = pytest.mark.integration
PREFIX = f"upcoach:test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(env={"REDIS_KEY_PREFIX": PREFIX, "RATE_LIMIT_RPM": "1000",
                              "ROUTER_HEALTH_INTERVAL_S": "0.5"})


@pytest.fixture(scope="module")
def url(stack) -> str:
    return f"http://{stack.spec('gateway').address}/v1"


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=120)


def ask(text: str) -> list[dict[str, str]]:
    """A fixed prompt, so that temperature 0 gives the same reply on every run (no earlier run's
    cache entry can answer it: PREFIX is this run's own)."""
    return [{"role": "user", "content": text}]


def test_openai_sdk_sees_the_usage_once(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="mistral", messages=ask("Give me a motivation tip"), max_tokens=8, temperature=0,
        stream=True, stream_options={"include_usage": True}))
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 8
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_langchain_counts_the_streamed_usage_once(client: openai.OpenAI, url: str) -> None:
    messages = ask("Name one healthy breakfast")
    whole = client.chat.completions.create(model="mistral", messages=messages, max_tokens=8,
                                           temperature=0, extra_headers={
                                               "Cache-Control": "no-cache"})
    llm = ChatOpenAI(model="mistral", base_url=url, api_key="not-needed", max_retries=0,
                     max_tokens=8, temperature=0, stream_usage=True, timeout=120)
    total: AIMessageChunk | None = None
    for chunk in llm.stream(messages[0]["content"]):
        total = chunk if total is None else total + chunk
    assert total is not None and total.usage_metadata is not None
    usage = total.usage_metadata
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens)
    assert usage["output_tokens"] == 8
    assert total.content == whole.choices[0].message.content


def test_json_object_mode_answers_parseable_json(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="mistral", max_tokens=96, temperature=0, response_format={"type": "json_object"},
        messages=ask('Reply in JSON with a key "tip" holding one short habit tip'))
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_json_schema_mode_answers_valid_json(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"tip": {"type": "string", "maxLength": 60}},
              "required": ["tip"], "additionalProperties": False}
    reply = client.chat.completions.create(
        model="mistral", max_tokens=96, temperature=0, messages=ask("One short habit tip"),
        response_format={"type": "json_schema",
                         "json_schema": {"name": "tip", "schema": schema, "strict": True}})
    assert reply.choices[0].finish_reason == "stop"
    value = json.loads(reply.choices[0].message.content)
    assert jsonschema_rs.validator_for(schema).is_valid(value), value


def test_logprobs_add_up_to_the_reply(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="mistral", max_tokens=8, temperature=0, logprobs=True, top_logprobs=2,
        messages=ask("Give me a motivation tip"))
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert len(tokens) <= reply.usage.completion_tokens
    for token in tokens:
        assert token.logprob <= 0 and len(token.top_logprobs) == 2
        # Greedy: the chosen token is the likeliest one.
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob, abs=1e-3)


def test_logprobs_on_each_streamed_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="mistral", max_tokens=8, temperature=0, logprobs=True, stream=True,
        messages=ask("Give me a sleep tip")))
    texts = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts
    for choice in texts:
        assert choice.logprobs is not None
        assert "".join(t.token for t in choice.logprobs.content) == choice.delta.content
