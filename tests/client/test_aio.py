"""AsyncUpcoachClient (grpc.aio) against the real router, embedding and registry processes."""

from __future__ import annotations

import grpc
import pytest

from upcoach_client import AsyncUpcoachClient, ServerAddresses, UpcoachError

pytestmark = pytest.mark.integration
ASK = [("user", "Give me a motivation tip")]


async def test_chat_stream_and_chat_agree_when_greedy(online: ServerAddresses) -> None:
    async with AsyncUpcoachClient(online) as client:
        chunks = [c async for c in client.chat_stream(ASK, max_tokens=12, temperature=0)]
        reply = await client.chat(ASK, max_tokens=12, temperature=0)
    assert chunks[0].route.backend == "embedded" and chunks[-1].usage.completion_tokens > 0
    assert reply.text == "".join(c.text for c in chunks) and reply.finish_reason


async def test_closing_a_stream_early_cancels_the_call(online: ServerAddresses) -> None:
    async with AsyncUpcoachClient(online) as client:
        stream = client.chat_stream(ASK, max_tokens=200, temperature=0.7)
        first = await anext(stream)
        await stream.aclose()
        assert first.route is not None
        reply = await client.chat(ASK, max_tokens=4)  # the single llama context came back
    assert reply.usage.completion_tokens > 0


async def test_embeddings_registry_and_errors(online: ServerAddresses,
                                              offline: ServerAddresses) -> None:
    async with AsyncUpcoachClient(online) as client:
        assert (await client.embed(["hello"])).dimensions == 384
        assert (await client.search("sleep better", top_k=2))[0].score > 0
        assert [m.kind for m in await client.list_models("chat")] == ["chat"] * 3
        assert (await client.list_edge_models("android", 2)).default_model_id
        steps = [s async for s in client.pull_model("smollm2-135m-instruct")]
        assert steps[-1].done
        with pytest.raises(UpcoachError) as caught:
            await client.embed([""])
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    async with AsyncUpcoachClient(offline) as unreachable:
        with pytest.raises(UpcoachError) as caught:
            await unreachable.list_backends()
    assert caught.value.unreachable


async def test_a_crisis_reply_and_decision_carry_the_safety_category(
        online: ServerAddresses) -> None:
    crisis = [("user", "I don't want to live anymore and I have been planning how to end it")]
    async with AsyncUpcoachClient(online) as client:
        reply = await client.chat(crisis, max_tokens=12)
        decision = await client.decide_inference("onDeviceOnly", crisis[0][1])
        normal = await client.decide_inference("serverOnly", "Give me a motivation tip")
    assert (reply.finish_reason, reply.safety_category) == ("content_filter", "self_harm")
    assert reply.route is not None and reply.route.backend == "safety"
    assert "988" in reply.text
    assert (decision.target, decision.safety_category) == ("server", "self_harm")
    assert normal.safety_category is None


async def test_the_locale_and_a_conversation_reach_the_crisis_check(
        online: ServerAddresses) -> None:
    turns = [("user", "I don't want to live anymore and I have been planning how to end it"),
             ("assistant", "I'm here with you."), ("user", "Any quick tip?")]
    async with AsyncUpcoachClient(online) as client:
        reply = await client.chat(turns[:1], locale="es-MX", max_tokens=12)
        decision = await client.decide_inference("onDeviceOnly", messages=turns, locale="es")
        last = await client.decide_inference("onDeviceOnly", messages=turns[2:], locale="es")
    assert "024" in reply.text and "Línea de la Vida" in reply.text
    assert (decision.target, decision.safety_category) == ("server", "self_harm")
    assert decision.crisis_response == reply.text
    assert (last.target, last.safety_category, last.crisis_response) == ("on_device", None, None)
