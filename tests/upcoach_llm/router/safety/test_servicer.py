"""RouterServicer with the crisis check: a flagged chat is answered with the crisis response
(never planned or sent to a backend), DecideInference sends a flagged prompt to the server; the
flag is counted and logged without the text; off, nothing is checked."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from tests.upcoach_llm.router.safety.fakes import RESPONSE, FakeEngine, config, unit
from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.common.chat import SamplingDefaults
from upcoach_llm.common.errors import InvalidArgument, NotFound
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.router.policy import RouterPolicy
from upcoach_llm.router.safety.check import SafetyCheck
from upcoach_llm.router.safety.detector import SafetyDetector
from upcoach_llm.router.service import RouterService, RouterSettings
from upcoach_llm.router.servicer import RouterServicer

USER, ASSISTANT = common_pb2.ROLE_USER, common_pb2.ROLE_ASSISTANT
SECRET = "a sentence close to the risk exemplar"
SELF_HARM = common_pb2.SAFETY_CATEGORY_SELF_HARM


class Unplanned:
    """Stands for the backend pool and the executor: a flagged chat never reaches them."""

    def __getattr__(self, name: str):
        raise AssertionError(f"a flagged chat reached {name}")


async def _servicer(policy: RouterPolicy, check: SafetyCheck | None) -> RouterServicer:
    if check is not None:
        await check.load()
    return RouterServicer(policy, Unplanned(), Unplanned(), SamplingDefaults(), 0.0, check)


@pytest.fixture
def check() -> SafetyCheck:
    return SafetyCheck(SafetyDetector(config(), FakeEngine({SECRET: unit(0.9, 0.1, 0, 0)})))


def _messages(*texts: str) -> list[common_pb2.ChatMessage]:
    roles = [USER, ASSISTANT]
    return [common_pb2.ChatMessage(role=roles[i % 2], content=t) for i, t in enumerate(texts)]


def _flags() -> float:
    return REGISTRY.get_sample_value("upcoach_router_safety_flags_total",
                                     {"category": "self_harm"}) or 0.0


async def test_a_flagged_stream_is_the_crisis_response(policy, check, caplog) -> None:
    servicer = await _servicer(policy, check)
    before = _flags()
    request = router_pb2.ChatStreamRequest(request_id="req-1", model="mistral", messages=_messages(
        "hello", "Hi! How can I help?", SECRET))
    with caplog.at_level(logging.WARNING):
        replies = [r async for r in servicer.ChatStream(request, None)]
    assert [r.text for r in replies] == [RESPONSE, ""]
    route = replies[0].route
    assert (route.model, route.backend, route.reason) == ("mistral", "safety", "safety self_harm")
    last = replies[-1]
    assert last.finish_reason == common_pb2.FINISH_REASON_CONTENT_FILTER
    assert last.HasField("usage") and last.usage.total_tokens == 0
    assert [r.safety_category for r in replies] == [SELF_HARM, SELF_HARM]
    assert _flags() == before + 1
    [record] = [r for r in caplog.records if r.getMessage().startswith("crisis check")]
    assert record.fields["request_id"] == "req-1"
    assert (record.fields["category"], record.fields["rule"]) == ("self_harm", "exemplar")
    assert SECRET not in record.getMessage() + repr(record.fields)


async def test_a_flagged_unary_chat_is_the_crisis_response(policy, check) -> None:
    servicer = await _servicer(policy, check)
    reply = await servicer.Chat(router_pb2.ChatRequest(messages=_messages(SECRET)), None)
    assert reply.text == RESPONSE
    assert reply.finish_reason == common_pb2.FINISH_REASON_CONTENT_FILTER
    assert reply.safety_category == SELF_HARM
    assert (reply.route.model, reply.route.backend) == ("", "safety")


async def test_a_flagged_chat_carries_only_a_catalog_name_and_bad_names_are_refused(
        policy, check) -> None:
    """The crisis path skips routing, not the request's checks: the name a caller made up never
    comes back as the served model (the gateway labels metrics with it)."""
    servicer = await _servicer(policy, check)
    made_up = await servicer.Chat(router_pb2.ChatRequest(model="LEAK-secret-note",
                                                         messages=_messages(SECRET)), None)
    assert made_up.safety_category == SELF_HARM
    assert (made_up.route.model, made_up.route.requested_model) == ("", "")
    with pytest.raises(InvalidArgument) as refused:
        [r async for r in servicer.ChatStream(router_pb2.ChatStreamRequest(
            model="x" * 3000, messages=_messages(SECRET)), None)]
    assert refused.value.field == "model"


async def test_route_reports_a_flagged_conversation_even_when_it_cannot_be_routed(
        policy, check) -> None:
    servicer = await _servicer(policy, check)
    flagged = router_pb2.RouteRequest(model="no-such-model", messages=_messages(SECRET))
    reply = await servicer.Route(flagged, None)
    assert reply.safety_category == SELF_HARM
    with pytest.raises(NotFound):
        await servicer.Route(router_pb2.RouteRequest(model="no-such-model",
                                                     messages=_messages("hello")), None)


async def test_bad_messages_are_still_refused_before_the_check(policy, check) -> None:
    servicer = await _servicer(policy, check)
    with pytest.raises(InvalidArgument):
        await servicer.Chat(router_pb2.ChatRequest(messages=[common_pb2.ChatMessage(
            role=USER, content=" ")]), None)


@pytest.mark.parametrize("mode", [router_pb2.INFERENCE_MODE_AUTO,
                                  router_pb2.INFERENCE_MODE_ON_DEVICE_ONLY])
async def test_a_flagged_prompt_is_decided_for_the_server(policy, check, mode: int) -> None:
    servicer = await _servicer(policy, check)
    request = router_pb2.DecideInferenceRequest(mode=mode, prompt=SECRET, server_available=True,
                                                on_device_available=True)
    reply = await servicer.DecideInference(request, None)
    assert reply.target == router_pb2.INFERENCE_TARGET_SERVER
    assert reply.safety_category == SELF_HARM
    assert reply.reason.startswith("safety self_harm")
    request.prompt = "quick tip?"
    reply = await servicer.DecideInference(request, None)
    assert reply.target == router_pb2.INFERENCE_TARGET_ON_DEVICE and not reply.safety_category


SPANISH = "Llama al 024."


@pytest.fixture
def bilingual() -> SafetyCheck:
    categories = config().model_dump()["categories"]
    categories["self_harm"]["response"]["es"] = SPANISH
    return SafetyCheck(SafetyDetector(config(categories=categories),
                                      FakeEngine({SECRET: unit(0.9, 0.1, 0, 0)})))


@pytest.mark.parametrize(("locale", "more", "text"), [
    ("es", [], SPANISH), ("es-MX", [], SPANISH), ("en-GB", [], RESPONSE), ("", [], RESPONSE),
    ("ca-ES", ["es"], SPANISH), ("ca", ["fr", "es-419", "en"], SPANISH),
    ("en-US", ["es"], RESPONSE), ("ca", ["fr"], RESPONSE)])
async def test_the_crisis_response_is_in_the_first_of_the_requests_languages_it_has(
        policy, bilingual, locale, more, text) -> None:
    servicer = await _servicer(policy, bilingual)
    stream = [r async for r in servicer.ChatStream(router_pb2.ChatStreamRequest(
        messages=_messages(SECRET), locale=locale, more_locales=more), None)]
    assert "".join(r.text for r in stream) == text
    whole = await servicer.Chat(router_pb2.ChatRequest(messages=_messages(SECRET),
                                                       locale=locale, more_locales=more), None)
    assert whole.text == text
    decided = await servicer.DecideInference(router_pb2.DecideInferenceRequest(
        prompt=SECRET, locale=locale, more_locales=more), None)
    assert (decided.safety_category, decided.crisis_response) == (SELF_HARM, text)


@pytest.mark.parametrize("check_on", [True, False])
async def test_a_malformed_locale_is_refused_naming_it(policy, bilingual, check_on) -> None:
    servicer = await _servicer(policy, bilingual if check_on else SafetyCheck.off())
    requests = [(servicer.Chat, router_pb2.ChatRequest(messages=_messages("hi"), locale="es_ES")),
                (servicer.DecideInference, router_pb2.DecideInferenceRequest(
                    prompt="hi", locale="x" * 36))]
    for handler, request in requests:
        with pytest.raises(InvalidArgument) as caught:
            await handler(request, None)
        assert caught.value.field == "locale"
    with pytest.raises(InvalidArgument) as caught:
        [r async for r in servicer.ChatStream(router_pb2.ChatStreamRequest(
            messages=_messages("hi"), locale="es-"), None)]
    assert caught.value.field == "locale"
    more = [(servicer.Chat, router_pb2.ChatRequest(
                messages=_messages("hi"), locale="es", more_locales=["en", "es_ES"]),
             "more_locales[1]"),
            (servicer.DecideInference, router_pb2.DecideInferenceRequest(
                prompt="hi", more_locales=["en"] * 9), "more_locales")]
    for handler, request, field in more:
        with pytest.raises(InvalidArgument) as caught:
            await handler(request, None)
        assert caught.value.field == field


async def test_decide_reads_every_user_message_and_decides_on_the_last(policy, check) -> None:
    servicer = await _servicer(policy, check)
    conversation = _messages(SECRET, "I'm here for you.", "quick tip?")
    request = router_pb2.DecideInferenceRequest(
        mode=router_pb2.INFERENCE_MODE_AUTO, messages=conversation, server_available=True,
        on_device_available=True)
    reply = await servicer.DecideInference(request, None)
    assert (reply.target, reply.safety_category) == (router_pb2.INFERENCE_TARGET_SERVER,
                                                     SELF_HARM)
    assert reply.crisis_response == RESPONSE
    # Without the risky turn: the last user message is what the rule reads (a simple query).
    del request.messages[:2]
    reply = await servicer.DecideInference(request, None)
    assert reply.target == router_pb2.INFERENCE_TARGET_ON_DEVICE and reply.simple_query
    assert not reply.safety_category and not reply.crisis_response
    long = "Explain in detail why I keep dropping habits, and plan my next month. " * 8
    request.messages.append(common_pb2.ChatMessage(role=USER, content=long))
    request.messages.append(common_pb2.ChatMessage(role=ASSISTANT, content="Sure."))
    reply = await servicer.DecideInference(request, None)
    assert reply.target == router_pb2.INFERENCE_TARGET_SERVER and not reply.simple_query


@pytest.mark.parametrize(("fields", "field"), [
    ({"prompt": "hi", "messages": _messages("hi")}, "prompt"),
    ({"messages": [common_pb2.ChatMessage(role=USER, content=" ")]}, "messages[0].content"),
    ({"messages": [common_pb2.ChatMessage(content="hi")]}, "messages[0].role"),
])
async def test_decide_refuses_bad_messages_naming_the_field(policy, check, fields,
                                                            field) -> None:
    servicer = await _servicer(policy, check)
    with pytest.raises(InvalidArgument) as caught:
        await servicer.DecideInference(router_pb2.DecideInferenceRequest(**fields), None)
    assert caught.value.field == field


async def test_decide_on_messages_without_a_user_turn_is_an_empty_prompt(policy, check) -> None:
    servicer = await _servicer(policy, check)
    reply = await servicer.DecideInference(router_pb2.DecideInferenceRequest(
        mode=router_pb2.INFERENCE_MODE_AUTO, server_available=True, on_device_available=True,
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_SYSTEM, content=SECRET)]), None)
    assert reply.target == router_pb2.INFERENCE_TARGET_ON_DEVICE and not reply.safety_category


async def test_off_nothing_is_checked(policy) -> None:
    servicer = await _servicer(policy, SafetyCheck.off())
    request = router_pb2.DecideInferenceRequest(prompt=SECRET, mode=router_pb2.INFERENCE_MODE_AUTO,
                                                server_available=True, on_device_available=True)
    reply = await servicer.DecideInference(request, None)
    assert not reply.safety_category


def _settings(**fields: object) -> RouterSettings:
    return RouterSettings(generation_addr="127.0.0.1:9", health_interval=1.0, probe_timeout=1.0,
                          startup_wait=0.0, auth=InternalAuth.disabled(), **fields)


def test_the_service_warns_loudly_when_the_check_is_off(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        RouterService(_settings(safety_check=False))
    assert any(r.levelno == logging.WARNING and r.getMessage().startswith("SAFETY_CHECK is off")
               for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        RouterService(_settings())
    assert not [r for r in caplog.records if "SAFETY_CHECK" in r.getMessage()]
