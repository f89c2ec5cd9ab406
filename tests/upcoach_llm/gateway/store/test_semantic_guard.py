"""The semantic cache's guard and the subject it embeds: plain functions, no model."""

from __future__ import annotations

import pytest

from upcoach_llm.gateway.store.semantic_guard import Polarity, agree
from upcoach_llm.gateway.store.semantic_text import subject


def agrees(a: str, b: str) -> bool:
    return agree(Polarity.of(a), Polarity.of(b))


@pytest.mark.parametrize(("a", "b"), [
    ("an affirmation about feeling confident", "an affirmation about not feeling confident"),
    ("remind me to water the plants", "remind me to never water the plants"),
    ("a tip for journaling", "a tip that isn't about journaling"),
    ("a tip to check my email", "a tip to stop checking my email"),
    ("a tip to sleep more", "a tip to sleep less"),
    ("exercise in the morning", "exercise at night"),
    ("an affirmation about loving my body", "an affirmation about hating my body"),
    ("remind me to lock the door", "remind me to unlock the door"),
    ("remind me to turn on the lights", "remind me to turn off the lights"),
    ("a 5 minute workout", "a 30 minute workout"),
    ("call my mom", "call my dad"),
    ("forgive others", "forgive myself"),
    ("remind me to take my pills at 7am", "remind me to take my pills at 9pm"),
    ("remind me to stretch at 7:30", "remind me to stretch at 7:45"),
    ("a walk in 5mins", "a walk in 50mins"),
    ("drink 2L of water", "drink 3L of water"),
    ("a ten minute walk", "a thirty minute walk"),
    ("an affirmation about feeling anxious", "an affirmation about I don\u2019t feel anxious"),
    ("a tip to procrastinate", "a tip so I dont procrastinate"),
])
def test_opposites_disagree(a: str, b: str) -> None:
    assert not agrees(a, b)
    assert not agrees(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("Give me a tip to sleep more", "Tip for getting more sleep"),
    ("A tip for waking up early", "How can I wake up earlier?"),
    ("Tip to quit snacking late at night", "How do I stop late night snacking?"),
    ("Reminder to take a break", "Remind me to take a short break"),
    ("Daily affirmation about self-love", "Give me a daily affirmation about loving myself"),
    ("Tip to stretch every morning", "How do I stretch in the mornings?"),
    ("Give me one tip to stay focused", "A tip to stay focused"),
    ("Remind me to take a 10-minute walk", "Reminder to take a ten minute walk"),
    ("I don\u2019t want to skip breakfast", "I don't want to skip breakfast"),
])
def test_paraphrases_agree(a: str, b: str) -> None:
    assert agrees(a, b)


@pytest.mark.parametrize(("text", "expected"), [
    ("Give me a daily affirmation about feeling confident!", "feeling confident"),
    ("Write me an affirmation for feeling confident", "feeling confident"),
    ("Remind me to drink water", "drink water"),
    ("A reminder to drink water.", "drink water"),
    ("How can I wake up earlier?", "wake up earlier"),
    ("Habit tip for eating more vegetables", "eating more vegetables"),
    ("Please give me a tip on positive thinking", "positive thinking"),
    ("Give me an affirmation", "give me an affirmation"),
    ("I\u2019d like a tip on positive thinking", "positive thinking"),
])
def test_subject_drops_the_frame(text: str, expected: str) -> None:
    assert subject(text) == expected
