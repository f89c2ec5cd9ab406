"""The client's request building for the locale and the multi-turn hybrid decision (no server)."""

from __future__ import annotations

import pytest

from upcoach_client import convert
from upcoach_client.api import common_pb2, router_pb2
from upcoach_client.types import Message

TURNS = [Message("user", "I feel low"), Message("assistant", "I'm here."),
         Message("user", "quick tip?")]


def test_decide_request_carries_the_conversation_and_the_locale() -> None:
    request = convert.decide_request("auto", "", True, True, None, TURNS, "es")
    assert (request.prompt, request.locale) == ("", "es")
    assert [(m.role, m.content) for m in request.messages] == [
        (common_pb2.ROLE_USER, "I feel low"), (common_pb2.ROLE_ASSISTANT, "I'm here."),
        (common_pb2.ROLE_USER, "quick tip?")]
    old = convert.decide_request("auto", "quick tip?", True, True, None)
    assert (old.prompt, len(old.messages), old.locale) == ("quick tip?", 0, "")


def test_requests_carry_more_locales_and_the_decision_its_feature() -> None:
    decide = convert.decide_request("auto", "quick tip?", True, True, None, None, "ca",
                                    ["es", "en"], "habit_tips")
    assert (list(decide.more_locales), decide.feature) == (["es", "en"], "habit_tips")
    chat = convert.chat_request(TURNS, locale="ca", more_locales=("es",), max_tokens=4)
    assert list(chat.more_locales) == ["es"]
    edge = convert.decision(router_pb2.DecideInferenceResponse(
        target=router_pb2.INFERENCE_TARGET_ON_DEVICE, edge_model="smollm-360m"))
    assert edge.edge_model == "smollm-360m"


def test_prompt_and_messages_together_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="prompt or messages"):
        convert.decide_request("auto", "hi", True, True, None, TURNS)


def test_chat_request_carries_the_locale() -> None:
    assert convert.chat_request(TURNS, locale="es-MX", max_tokens=4).locale == "es-MX"


def test_a_decision_carries_the_crisis_response() -> None:
    flagged = convert.decision(router_pb2.DecideInferenceResponse(
        target=router_pb2.INFERENCE_TARGET_SERVER, reason="safety self_harm",
        safety_category=common_pb2.SAFETY_CATEGORY_SELF_HARM, crisis_response="Llama al 024."))
    assert (flagged.safety_category, flagged.crisis_response) == ("self_harm", "Llama al 024.")
    plain = convert.decision(router_pb2.DecideInferenceResponse(
        target=router_pb2.INFERENCE_TARGET_ON_DEVICE))
    assert (plain.on_device, plain.safety_category, plain.crisis_response) == (True, None, None)


def test_an_unknown_platform_is_refused_before_the_call() -> None:
    assert convert.edge_request("iOS", 4).platform == convert.edge_request("ios", 4).platform != 0
    with pytest.raises(ValueError, match="platform: 'windows' is not ios or android"):
        convert.edge_request("windows", 4)
