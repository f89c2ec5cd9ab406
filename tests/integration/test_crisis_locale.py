"""The crisis response's language and the multi-turn hybrid decision, end to end: the real
model-registry, router (with its detector on the real MiniLM) and gateway processes, called as
clients call them. ``Accept-Language: es`` (or ``ca-ES, es;q=0.8``: the first language
configured) gets config/safety.yaml's Spanish response on every REST chat (OpenAI, coaching,
Ollama) and grpc-web's ``locale`` and ``more_locales`` fields get it too; ``en-GB`` falls back
to English; a malformed tag is a 400 / INVALID_ARGUMENT naming it. A flagged chat never
reaches a model, so no generation process is needed. The decision over a conversation is
flagged by an earlier turn that its last message alone would not show."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType

from upcoach_llm.api import common_pb2, router_connect, router_pb2
from upcoach_llm.router.safety.config import load_safety

pytestmark = pytest.mark.integration
CRISIS = "I want to kill myself"
EMERGENCY = "My dad collapsed and he isn't breathing"
CONFIG = load_safety()
ES, EN = CONFIG.response("self_harm", "es"), CONFIG.response("self_harm", "en")
USER, ASSISTANT = common_pb2.ROLE_USER, common_pb2.ROLE_ASSISTANT
SELF_HARM = common_pb2.SAFETY_CATEGORY_SELF_HARM


@pytest.fixture(scope="module")
def url(stack_factory) -> str:
    stack = stack_factory(["model-registry", "router", "gateway"], env={
        "ROUTER_STARTUP_WAIT_S": "0", "RATE_LIMIT_RPM": "0",
        "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:"})
    return f"http://{stack.spec('gateway').address}"


def _post(url: str, path: str, body: dict, language: str | None) -> httpx.Response:
    headers = {"Accept-Language": language} if language is not None else {}
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60)


def _openai(url: str, language: str | None, text: str = CRISIS) -> httpx.Response:
    return _post(url, "/v1/chat/completions", {
        "model": "mistral", "messages": [{"role": "user", "content": text}]}, language)


def test_spanish_is_configured_for_every_category_with_real_resources() -> None:
    assert ES != EN and "024" in ES and "800 911 2000" in ES and "988" in ES
    for category in CONFIG.categories:
        assert CONFIG.response(category, "es") != CONFIG.response(category, "en")


@pytest.mark.parametrize(("language", "expected"), [
    ("es", ES), ("es-MX", ES), ("es-419;q=0.9, en;q=0.8", ES), ("fr;q=0.2, es", ES),
    ("ca-ES, es;q=0.8", ES), ("ca, fr;q=0.9, es-MX;q=0.5, en;q=0.1", ES),
    ("en-GB", EN), ("en-GB, es;q=0.5", EN), ("de", EN), ("*", EN), (None, EN)])
def test_openai_chat_answers_in_the_preferred_language(url, language, expected) -> None:
    reply = _openai(url, language)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-safety-category"] == "self_harm"
    choice = reply.json()["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("content_filter", expected)


def test_other_categories_and_the_stream_answer_in_spanish_too(url) -> None:
    reply = _openai(url, "es", EMERGENCY)
    assert reply.headers["x-safety-category"] == "medical_emergency"
    assert reply.json()["choices"][0]["message"]["content"] == CONFIG.response(
        "medical_emergency", "es")
    streamed = _post(url, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": CRISIS}], "stream": True}, "es")
    assert streamed.status_code == 200
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                   for line in streamed.text.splitlines()
                   if line.startswith("data: {") and json.loads(line[6:])["choices"])
    assert text == ES


def test_coaching_and_ollama_chats_take_accept_language(url) -> None:
    coaching = _post(url, "/api/coaching/chat", {
        "context_type": "mood", "messages": [{"role": "user", "content": CRISIS}]}, "es-ES")
    assert coaching.status_code == 200, coaching.text
    assert coaching.json()["choices"][0]["message"]["content"] == ES
    ollama = _post(url, "/api/chat", {"model": "mistral", "stream": False,
                                      "messages": [{"role": "user", "content": CRISIS}]}, "es")
    assert ollama.status_code == 200, ollama.text
    assert ollama.json()["message"]["content"] == ES
    english = _post(url, "/api/generate", {"model": "mistral", "stream": False,
                                           "prompt": CRISIS}, "en-GB")
    assert english.json()["response"] == EN


@pytest.mark.parametrize("language", [
    "es;q=2", "es;q=0.5;x=1", "e$", "es-", "a-very-long-tag-that-goes-on-and-on-and-on",
    "es;level=1"])
def test_a_malformed_accept_language_is_a_400_naming_it(url, language) -> None:
    for reply in (_openai(url, language),
                  _post(url, "/api/inference/decide", {"prompt": "hi"}, language)):
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "Accept-Language"
    ollama = _post(url, "/api/chat", {"model": "mistral", "stream": False,
                                      "messages": [{"role": "user", "content": "hi"}]}, language)
    assert ollama.status_code == 400 and "Accept-Language" in ollama.json()["error"]


def test_rest_decide_reads_the_whole_conversation(url) -> None:
    conversation = [{"role": "user", "content": CRISIS},
                    {"role": "assistant", "content": "I'm here. Tell me more."},
                    {"role": "user", "content": "Quick tip for sleeping tonight?"}]
    body = {"mode": "auto", "on_device_available": True, "messages": conversation}
    flagged = _post(url, "/api/inference/decide", body, "es")
    assert flagged.status_code == 200, flagged.text
    assert (flagged.json()["target"], flagged.json()["safety_category"]) == ("server",
                                                                              "self_harm")
    assert flagged.json()["crisis_response"] == ES
    # The last message alone is a simple query for the device, and the decision reads it.
    last = _post(url, "/api/inference/decide", {**body, "messages": conversation[2:]}, None)
    assert (last.json()["target"], last.json()["safety_category"]) == ("on_device", None)
    assert last.json()["crisis_response"] is None
    old = _post(url, "/api/inference/decide", {"mode": "auto", "on_device_available": True,
                                               "prompt": CRISIS}, "en-GB")
    assert (old.json()["safety_category"], old.json()["crisis_response"]) == ("self_harm", EN)
    both = _post(url, "/api/inference/decide", {**body, "prompt": "hi"}, None)
    assert both.status_code == 400 and both.json()["error"]["param"] == "prompt"
    neither = _post(url, "/api/inference/decide", {"mode": "auto"}, None)
    assert neither.status_code == 400 and neither.json()["error"]["param"] == "prompt"
    blank = _post(url, "/api/inference/decide", {"messages": [{"role": "user", "content": " "}]},
                  None)
    assert blank.status_code == 400 and blank.json()["error"]["param"].startswith("messages[0]")


def test_rest_decide_keeps_server_only_features_and_contexts_on_the_server(url) -> None:
    body = {"mode": "auto", "on_device_available": True, "prompt": "Quick tip?"}
    mood = _post(url, "/api/inference/decide", {**body, "feature": "mood_analysis"}, None)
    assert mood.status_code == 200, mood.text
    assert (mood.json()["target"], mood.json()["edge_model"]) == ("server", None)
    tips = _post(url, "/api/inference/decide", {**body, "feature": "habit_tips"}, None)
    assert (tips.json()["target"], tips.json()["edge_model"]) == ("on_device", "smollm-360m")
    unknown = _post(url, "/api/inference/decide", {**body, "feature": "astrology"}, None)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "feature"
    context = _post(url, "/api/inference/decide", {**body, "context_type": "mood"}, None)
    assert (context.json()["target"], context.json()["edge_model"]) == ("server", None)
    assert context.json()["feature"] == "mood_analysis"
    assert context.json()["reason"].startswith("coaching context mood → feature mood_analysis")
    odd = _post(url, "/api/inference/decide", {**body, "context_type": "astrology"}, None)
    assert odd.status_code == 400 and odd.json()["error"]["param"] == "context_type"


def test_grpc_web_sets_the_locale_field(url) -> None:
    client = router_connect.RouterServiceClient(url, protocol=ProtocolType.GRPC_WEB)
    crisis = [common_pb2.ChatMessage(role=USER, content=CRISIS)]

    async def run() -> None:
        replies = [m async for m in client.chat_stream(router_pb2.ChatStreamRequest(
            messages=crisis, locale="es"))]
        assert "".join(r.text for r in replies) == ES
        assert replies[-1].safety_category == SELF_HARM
        whole = await client.chat(router_pb2.ChatRequest(messages=crisis, locale="en-GB"))
        assert (whole.text, whole.safety_category) == (EN, SELF_HARM)
        more = await client.chat(router_pb2.ChatRequest(messages=crisis, locale="ca",
                                                        more_locales=["fr", "es"]))
        assert more.text == ES
        decided = await client.decide_inference(router_pb2.DecideInferenceRequest(
            mode=router_pb2.INFERENCE_MODE_ON_DEVICE_ONLY, on_device_available=True,
            locale="es-MX", messages=[
                *crisis, common_pb2.ChatMessage(role=ASSISTANT, content="Tell me more."),
                common_pb2.ChatMessage(role=USER, content="Any tip?")]))
        assert decided.target == router_pb2.INFERENCE_TARGET_SERVER
        assert (decided.safety_category, decided.crisis_response) == (SELF_HARM, ES)
        for bad in ("es_ES", "x" * 40):
            with pytest.raises(ConnectError) as caught:
                await client.chat(router_pb2.ChatRequest(messages=crisis, locale=bad))
            assert caught.value.code == Code.INVALID_ARGUMENT and "locale" in str(caught.value)
        with pytest.raises(ConnectError) as caught:
            await client.decide_inference(router_pb2.DecideInferenceRequest(
                prompt="hi", messages=crisis))
        assert caught.value.code == Code.INVALID_ARGUMENT

    asyncio.run(run())
