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


def test_sampling_defaults_and_reproducibility() -> None:
    sampling = sampling_from_proto(common_pb2.SamplingParams(), SamplingDefaults())
    assert (sampling.max_tokens, sampling.temperature, sampling.top_p) == (256, 0.7, 0.95)
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
