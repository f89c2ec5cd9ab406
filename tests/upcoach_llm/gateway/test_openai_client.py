"""The official ``openai`` package reads every shape the gateway answers: the whole reply, each
stream chunk (role, text, finish, the include_usage chunk), an error inside a stream, and
embeddings as floats and as base64."""

from __future__ import annotations

import openai
import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway

HELLO = [{"role": "user", "content": "hi there"}]


def client(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


async def test_whole_reply(gateway) -> None:
    gw: RunningGateway = await gateway()
    reply = await client(gw).chat.completions.create(model="mistral", messages=HELLO)
    assert reply.object == "chat.completion" and reply.model == "smollm2-135m-instruct"
    [choice] = reply.choices
    assert (choice.message.role, choice.message.content) == ("assistant", "echo: hi there")
    assert choice.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 5


async def test_every_stream_chunk(gateway) -> None:
    gw: RunningGateway = await gateway()
    stream = await client(gw).chat.completions.create(
        model="mistral", messages=HELLO, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    role, *texts, finish, usage_only = chunks
    assert role.choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in texts) == "echo: hi there"
    assert finish.choices[0].finish_reason == "stop"
    assert finish.usage is None
    assert usage_only.choices == []
    assert usage_only.usage is not None and usage_only.usage.total_tokens == 5
    assert usage_only.usage.completion_tokens == 3
    assert {c.id for c in chunks} == {role.id} and {c.object for c in chunks} == {
        "chat.completion.chunk"}


async def test_error_inside_the_stream(gateway) -> None:
    gw: RunningGateway = await gateway()
    stream = await client(gw).chat.completions.create(
        messages=[{"role": "user", "content": "FAIL_AFTER 2"}], model="mistral", stream=True)
    seen = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "part0 part1 "
    assert caught.value.message == "backend went away"
    assert caught.value.code == "upstream_unavailable"


@pytest.mark.parametrize("encoding", ["float", "base64", None])
async def test_embeddings(gateway, encoding: str | None) -> None:
    gw: RunningGateway = await gateway()
    extra = {"encoding_format": encoding} if encoding else {}
    reply = await client(gw).embeddings.create(input=["one", "three"],
                                               model="nomic-embed-text", **extra)
    assert reply.model == "all-minilm-l6-v2"
    assert [d.index for d in reply.data] == [0, 1]
    if encoding == "base64":
        assert isinstance(reply.data[1].embedding, str)
    else:
        assert reply.data[1].embedding == [5.0, 0.5, -0.25, 1.0]
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == 2
