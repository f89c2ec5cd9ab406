"""The crisis check's patterns: explicit statements match, idioms do not; messages split into
the sentences and clauses the detector reads."""

from __future__ import annotations

import re

import pytest

from upcoach_llm.router.safety.config import load_safety
from upcoach_llm.router.safety.patterns import PatternRules, segments

RULES = PatternRules(load_safety())


@pytest.mark.parametrize(("text", "category"), [
    ("I want to kill myself", "self_harm"),
    ("I've been having suicidal thoughts", "self_harm"),
    ("I don\u2019t want to be alive anymore", "self_harm"),
    ("I'm thinking about ending my life", "self_harm"),
    ("I want to stab my roommate", "harm_to_others"),
    ("my husband isn't breathing", "medical_emergency"),
    ("I think I'm having a heart attack", "medical_emergency"),
])
def test_explicit_statements_match_their_category(text: str, category: str) -> None:
    match = RULES.match(text)
    assert match is not None and match.category == category
    assert match.rule.startswith(f"pattern {category}[")


@pytest.mark.parametrize("text", [
    "this habit is killing me",
    "I'm dying to try this workout",
    "my goal is to kill my sugar cravings",
    "I could murder a pizza",
    "this deadline is going to be the death of me",
    "I killed it at the gym today",
    "I'm dead tired",
    "I want to shoot my shot at a promotion",
    "I'll shoot him a text after the run",
    "we did suicide sprints at practice",
    "I hurt myself doing deadlifts",
    "cut myself some slack after a bad week",
    "I keep poisoning my body with sugar",
    "how do I break unconscious habits",
    "I can't breathe through my nose when I run",
    "I almost had a heart attack when I saw the bill",
])
def test_idioms_match_nothing(text: str) -> None:
    assert RULES.match(text) is None


def test_idioms_are_blanked_but_the_rest_of_the_sentence_is_read() -> None:
    assert RULES.match("this job is killing me and I want to kill myself") is not None


def test_messages_split_into_sentences_and_long_sentences_into_clauses() -> None:
    assert segments("I had a rough day. Can you help me plan tomorrow?", 16) == [
        "I had a rough day.", "Can you help me plan tomorrow?"]
    assert segments("I cancelled my gym membership, I won't be around", 16) == [
        "I cancelled my gym membership", "I won't be around"]
    assert segments("Hi. Ok", 16) == ["Hi. Ok"]
    assert len(segments(". ".join(["one two three"] * 40), 16)) == 16


def test_blank_runs_reach_the_splitting_patterns_as_one_space(monkeypatch) -> None:
    """Both splitting patterns backtrack across a run of blanks from each of its characters
    (32,000 spaces held the router's event loop for 26 s): they must only ever see one blank."""
    from upcoach_llm.router.safety import patterns

    seen: list[str] = []
    real = patterns._SENTENCE_END

    class Recording:
        def split(self, text: str) -> list[str]:
            seen.append(text)
            return real.split(text)

    monkeypatch.setattr(patterns, "_SENTENCE_END", Recording())
    text = "I am fine" + " \t\u00a0" * 2000 + "ok then\n \n  and the next line here"
    assert segments(text, 16) == ["I am fine ok then", "and the next line here"]
    assert max(len(run) for run in re.findall(r"[^\S\n]+", seen[0])) == 1
