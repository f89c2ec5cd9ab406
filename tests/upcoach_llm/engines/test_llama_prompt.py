"""fitted: a caller's max_tokens that does not fit the context is refused, the server's default is
shortened to the room the prompt leaves, and a prompt that fills the context is refused."""

from __future__ import annotations

import pytest

from upcoach_llm.common.chat import Sampling
from upcoach_llm.common.errors import OutOfRange
from upcoach_llm.engines.llama_prompt import fitted


def sampling(max_tokens: int, defaulted: bool) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0.0, top_p=1.0,
                    max_tokens_defaulted=defaulted)


@pytest.mark.parametrize("defaulted", [False, True])
def test_what_fits_is_kept_as_it_is(defaulted: bool) -> None:
    asked = sampling(100, defaulted)
    assert fitted(400, asked, 512) is asked
    assert fitted(412, asked, 512) is asked


def test_a_default_that_does_not_fit_is_shortened_to_the_room_left() -> None:
    assert fitted(500, sampling(256, True), 512) == sampling(12, True)


def test_the_callers_own_max_tokens_that_does_not_fit_is_out_of_range() -> None:
    with pytest.raises(OutOfRange, match=r"^sampling.max_tokens: 256 tokens do not fit after a "
                       r"prompt of 500 tokens .*; at most 12$"):
        fitted(500, sampling(256, False), 512)


@pytest.mark.parametrize("defaulted", [False, True])
def test_a_prompt_that_fills_the_context_is_out_of_range(defaulted: bool) -> None:
    with pytest.raises(OutOfRange, match="^messages: the prompt is 512 tokens"):
        fitted(512, sampling(1, defaulted), 512)
