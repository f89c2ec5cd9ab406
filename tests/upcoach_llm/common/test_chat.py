"""Chat validation: every bad field is rejected with its name; defaults fill unset fields."""

from __future__ import annotations

import pytest

from upcoach_llm.api import common_pb2
from upcoach_llm.common.chat import SamplingDefaults, messages_from_proto, sampling_from_proto
from upcoach_llm.common.errors import InvalidArgument

USER = common_pb2.ROLE_USER


def test_messages_are_converted() -> None:
    messages = messages_from_proto([
        common_pb2.ChatMessage(role=common_pb2.ROLE_SYSTEM, content="s"),
        common_pb2.ChatMessage(role=USER, content="hi")])
    assert [(m.role, m.content) for m in messages] == [("system", "s"), ("user", "hi")]


@pytest.mark.parametrize(("messages", "field"), [
    ([], "messages: at least one"),
    ([common_pb2.ChatMessage(role=USER, content="  ")], r"messages\[0\].content"),
    ([common_pb2.ChatMessage(role=USER, content="a"),
      common_pb2.ChatMessage(role=common_pb2.ROLE_UNSPECIFIED, content="b")],
     r"messages\[1\].role"),
    ([common_pb2.ChatMessage(role=USER, content="x" * 200_001)], "characters in all"),
])
def test_bad_messages_name_the_field(messages: list, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        messages_from_proto(messages)


def test_an_assistant_message_may_be_blank() -> None:
    messages = messages_from_proto([
        common_pb2.ChatMessage(role=USER, content="Count to 3"),
        common_pb2.ChatMessage(role=common_pb2.ROLE_ASSISTANT, content=""),
        common_pb2.ChatMessage(role=USER, content="Again")])
    assert messages[1].content == ""


def test_sampling_defaults_and_reproducibility() -> None:
    sampling = sampling_from_proto(common_pb2.SamplingParams(), SamplingDefaults())
    assert (sampling.max_tokens, sampling.temperature, sampling.top_p) == (256, 0.7, 0.95)
    assert sampling.max_tokens_defaulted
    assert not sampling_from_proto(common_pb2.SamplingParams(max_tokens=256), SamplingDefaults()
                                   ).max_tokens_defaulted
    assert not sampling.reproducible
    assert sampling_from_proto(common_pb2.SamplingParams(temperature=0), SamplingDefaults()
                               ).reproducible
    assert sampling_from_proto(common_pb2.SamplingParams(seed=3), SamplingDefaults()).reproducible


@pytest.mark.parametrize(("params", "field"), [
    (common_pb2.SamplingParams(max_tokens=0), "sampling.max_tokens: must be positive"),
    (common_pb2.SamplingParams(max_tokens=-5), "sampling.max_tokens: must be positive"),
    (common_pb2.SamplingParams(max_tokens=10**6), "sampling.max_tokens: .* above the limit"),
    (common_pb2.SamplingParams(temperature=2.5), r"sampling.temperature: must be in \[0, 2\]"),
    (common_pb2.SamplingParams(temperature=float("nan")), "sampling.temperature"),
    (common_pb2.SamplingParams(top_p=0), r"sampling.top_p: must be in \(0, 1\]"),
    (common_pb2.SamplingParams(stop=["a", "b", "c", "d", "e"]), "sampling.stop: at most 4"),
    (common_pb2.SamplingParams(stop=[""]), r"sampling.stop\[0\]"),
])
def test_bad_sampling_names_the_field(params: common_pb2.SamplingParams, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        sampling_from_proto(params, SamplingDefaults())


JSON_SCHEMA = common_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA


def _format(**fields: object) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(response_format=common_pb2.ResponseFormat(**fields))


@pytest.mark.parametrize(("params", "field"), [
    (common_pb2.SamplingParams(frequency_penalty=2.5),
     r"sampling.frequency_penalty: must be in \[-2, 2\]"),
    (common_pb2.SamplingParams(presence_penalty=-3), "sampling.presence_penalty"),
    (common_pb2.SamplingParams(presence_penalty=float("inf")), "sampling.presence_penalty"),
    (common_pb2.SamplingParams(logprobs=True, top_logprobs=21),
     "sampling.top_logprobs: must be 0 to 20"),
    (common_pb2.SamplingParams(logprobs=True, top_logprobs=-1), "sampling.top_logprobs"),
    (common_pb2.SamplingParams(top_logprobs=2), "sampling.top_logprobs: needs sampling.logprobs"),
    (_format(type=JSON_SCHEMA), "sampling.response_format.schema_json: a json_schema"),
    (_format(type=JSON_SCHEMA, schema_json="{not json"),
     "sampling.response_format.schema_json: is not JSON"),
    (_format(type=JSON_SCHEMA, schema_json="[1, 2]"),
     "sampling.response_format.schema_json: must be a JSON object"),
    (_format(type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT, schema_json="{}"),
     "sampling.response_format.schema_json: only allowed with type json_schema"),
    (_format(type=99), "sampling.response_format.type: unknown"),
    (_format(type=JSON_SCHEMA, schema_json='{"type": "string", "maxLength": 20000}'),
     "sampling.response_format.schema_json: maxLength 20000 is over 500"),
    (_format(type=JSON_SCHEMA, schema_json='{"type": "array", "minItems": 501}'),
     "sampling.response_format.schema_json: minItems 501 is over 500"),
    (_format(type=JSON_SCHEMA, schema_json='{"type": "string", "pattern": "^a{2,9000}$"}'),
     "sampling.response_format.schema_json: pattern repeats 9000 times"),
    (_format(type=JSON_SCHEMA, schema_json='{"a":' * 3000 + "1" + "}" * 3000),
     "sampling.response_format.schema_json: nested deeper than"),  # json.loads' own limit
    (_format(type=JSON_SCHEMA, schema_json='{"a": ' * 70 + "{}" + "}" * 70),
     "sampling.response_format.schema_json: nested deeper than 64"),
])
def test_bad_openai_fields_name_the_field(params: common_pb2.SamplingParams, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        sampling_from_proto(params, SamplingDefaults())


def test_openai_fields_are_carried_with_the_configured_repeat_penalty() -> None:
    schema = '{"type": "object", "properties": {"tip": {"type": "string"}}}'
    params = _format(type=JSON_SCHEMA, schema_json=schema, schema_name="tip")
    params.frequency_penalty, params.presence_penalty = 1.5, -0.5
    params.logprobs, params.top_logprobs = True, 3
    sampling = sampling_from_proto(params, SamplingDefaults(repeat_penalty=1.1))
    assert (sampling.frequency_penalty, sampling.presence_penalty) == (1.5, -0.5)
    assert (sampling.logprobs, sampling.top_logprobs, sampling.repeat_penalty) == (True, 3, 1.1)
    assert sampling.response_format.type == "json_schema"
    assert sampling.response_format.schema == {"type": "object",
                                               "properties": {"tip": {"type": "string"}}}
    assert sampling.response_format.schema_name == "tip"
    plain = sampling_from_proto(common_pb2.SamplingParams(), SamplingDefaults())
    assert plain.response_format.type == "text" and not plain.response_format.is_json
    assert (plain.logprobs, plain.top_logprobs, plain.repeat_penalty) == (False, 0, 1.0)
    json_object = sampling_from_proto(
        _format(type=common_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT), SamplingDefaults())
    assert json_object.response_format.type == "json_object"
    assert json_object.response_format.schema is None
