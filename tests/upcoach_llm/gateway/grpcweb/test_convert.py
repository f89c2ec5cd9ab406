"""grpc-web chat requests to the pipeline's ChatTurn: the router fields as the app sent them, and
the cache form of the OpenAI request for the same reply (so both share cache entries)."""

from __future__ import annotations

import pytest

from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.gateway.chat import convert as openai_convert
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest
from upcoach_llm.gateway.grpcweb import convert

SCHEMA = {"type": "object", "properties": {"tip": {"type": "string"}}, "required": ["tip"]}


def openai_turn(**fields: object):
    return openai_convert.turn(ChatCompletionRequest.model_validate({
        "model": "mistral", "feature": "habit_tips",
        "messages": [{"role": "developer", "content": "Be brief."},
                     {"role": "user", "content": "hi"}], **fields}))


@pytest.mark.parametrize("fields", [
    {},
    {"max_tokens": 8, "temperature": 0, "stop": ["\n"]},
    {"temperature": 0.7, "top_p": 0.9, "seed": 4, "frequency_penalty": 0.3,
     "presence_penalty": -1.1},
    {"temperature": 0, "response_format": {"type": "json_object"}},
    {"temperature": 0, "response_format": {"type": "json_schema", "json_schema": {
        "name": "tip", "schema": SCHEMA}}},
    {"temperature": 0, "logprobs": True, "top_logprobs": 2},
])
@pytest.mark.parametrize("kind", [router_pb2.ChatRequest, router_pb2.ChatStreamRequest])
def test_the_turn_matches_the_openai_turn_of_the_same_request(fields, kind) -> None:
    openai = openai_turn(**fields)
    # What the REST chat sends the router is what an app sends over grpc-web.
    grpc_web = convert.turn(kind(model="mistral", feature="habit_tips", messages=openai.messages,
                                 sampling=openai.sampling))
    assert grpc_web.canonical == openai.canonical
    assert grpc_web.sampling == openai.sampling
    assert grpc_web.messages == openai.messages
    assert (grpc_web.temperature, grpc_web.seed, grpc_web.max_tokens) == (
        openai.temperature, openai.seed, openai.max_tokens)


def test_unset_sampling_is_unset() -> None:
    turn = convert.turn(router_pb2.ChatRequest(messages=[common_pb2.ChatMessage(
        role=common_pb2.ROLE_USER, content="hi")], coaching_context="habits"))
    assert (turn.temperature, turn.seed, turn.max_tokens) == (None, None, None)
    assert turn.canonical == {"model": "", "feature": "", "coaching_context": "habits",
                              "messages": [["user", "hi"]], "sampling": {}}


def test_whatever_decides_the_reply_changes_the_cache_form() -> None:
    base = router_pb2.ChatRequest(messages=[common_pb2.ChatMessage(
        role=common_pb2.ROLE_USER, content="hi")], sampling=common_pb2.SamplingParams(
        temperature=0))
    forms = [convert.canonical(base)]
    for change in ({"model": "mistral"}, {"feature": "habit_tips"},
                   {"coaching_context": "habits"}):
        forms.append(convert.canonical(router_pb2.ChatRequest(**{
            "messages": base.messages, "sampling": base.sampling, **change})))
    for sampling in ({"max_tokens": 3}, {"seed": 1}, {"stop": ["."]}, {"top_p": 0.5},
                     {"response_format": common_pb2.ResponseFormat(
                         type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)}):
        forms.append(convert.canonical(router_pb2.ChatRequest(
            messages=base.messages, sampling=common_pb2.SamplingParams(temperature=0,
                                                                       **sampling))))
    assert len({repr(form) for form in forms}) == len(forms)
    # The request id, the stream flag and the locale (only crisis replies, never stored, use it)
    # are not part of it.
    assert convert.canonical(router_pb2.ChatStreamRequest(
        request_id="r1", messages=base.messages, sampling=base.sampling, locale="fr")) == forms[0]
