"""Model choice: explicit model, coaching context, feature, the guide's patterns, default."""

from __future__ import annotations

import pytest

from upcoach_llm.common.chat import Message
from upcoach_llm.common.errors import InvalidArgument, NotFound
from upcoach_llm.router.policy import RouterPolicy
from upcoach_llm.router.routing import choose_model, with_coaching_prompt


def user(text: str) -> list[Message]:
    return [Message("user", text)]


def choose(policy: RouterPolicy, text: str = "hello", **kwargs: str):
    args = {"model": "", "feature": "", "coaching_context": "", **kwargs}
    return choose_model(policy, messages=user(text), **args)


def test_explicit_model_wins(policy: RouterPolicy) -> None:
    choice = choose(policy, "a quick tip", model="mistral")
    assert (choice.model, choice.reason) == ("mistral", "requested")


def test_unknown_model_is_not_found_and_named(policy: RouterPolicy) -> None:
    with pytest.raises(NotFound, match="^model: 'gpt-9' is not in the catalog") as caught:
        choose(policy, model="gpt-9")
    assert caught.value.field == "model"


def test_embedding_model_is_not_a_chat_model(policy: RouterPolicy) -> None:
    with pytest.raises(InvalidArgument, match="model: nomic-embed-text is an embedding model"):
        choose(policy, model="nomic-embed-text")


@pytest.mark.parametrize(("text", "model", "pattern"), [
    ("Give me a quick tip", "llama3.2:3b", "quick|reminder|tip"),
    ("Set a REMINDER for 7am", "llama3.2:3b", "quick|reminder|tip"),
    ("Help me reach my goal", "mistral", "goal|habit|motivation|wellness"),
    ("My wellness routine", "mistral", "goal|habit|motivation|wellness"),
])
def test_guide_patterns(policy: RouterPolicy, text: str, model: str, pattern: str) -> None:
    choice = choose(policy, text)
    assert choice.model == model
    assert choice.reason == f"pattern {pattern!r}"


def test_embedding_pattern_is_skipped_for_chat_and_default_applies(policy: RouterPolicy) -> None:
    choice = choose(policy, "search for similar stories")
    assert (choice.model, choice.reason) == ("mistral", "default_model")


def test_only_the_last_user_message_is_matched(policy: RouterPolicy) -> None:
    messages = [Message("user", "quick tip"), Message("assistant", "ok"),
                Message("user", "tell me about yourself")]
    choice = choose_model(policy, model="", feature="", coaching_context="", messages=messages)
    assert choice.reason == "default_model"


@pytest.mark.parametrize(("feature", "model"), [
    ("coaching_chat", "mistral"), ("goal_setting", "mistral"), ("habit_tips", "llama3.2:3b"),
    ("daily_affirmations", "llama3.2:3b"), ("voice_coaching", "mistral"),
    ("mood_analysis", "mistral"), ("recommendations", "mistral"),
    ("quick_reminders", "llama3.2:3b"),
])
def test_feature_table(policy: RouterPolicy, feature: str, model: str) -> None:
    assert choose(policy, "quick", feature=feature).model == model


def test_content_search_feature_is_not_chat(policy: RouterPolicy) -> None:
    with pytest.raises(InvalidArgument, match="feature: content_search is served by the embedding"):
        choose(policy, feature="content_search")


def test_unknown_feature_lists_the_valid_ones(policy: RouterPolicy) -> None:
    with pytest.raises(InvalidArgument, match="feature: 'juggling' is not one of coaching_chat"):
        choose(policy, feature="juggling")


def test_coaching_context_implies_its_feature(policy: RouterPolicy) -> None:
    choice = choose(policy, "Help me build a morning routine", coaching_context="habits")
    assert choice.model == "llama3.2:3b"
    assert choice.reason == "coaching context habits → feature habit_tips"
    assert choose(policy, coaching_context="goals").model == "mistral"


def test_unknown_coaching_context_lists_the_valid_ones(policy: RouterPolicy) -> None:
    with pytest.raises(InvalidArgument) as caught:
        choose(policy, coaching_context="astrology")
    message = caught.value.message
    assert message.startswith("coaching_context: 'astrology' is not one of")
    for context in ("habits", "goals", "motivation", "wellness", "mood"):
        assert context in message


@pytest.mark.parametrize("decider", [{"model": "mistral"}, {"feature": "habit_tips"}])
def test_an_unknown_coaching_context_is_refused_whatever_else_decides(
        policy: RouterPolicy, decider: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        choose(policy, coaching_context="astrology", **decider)
    assert caught.value.field == "coaching_context"


def test_coaching_prompt_goes_first_and_merges_with_a_system_message(
        policy: RouterPolicy) -> None:
    plain = with_coaching_prompt(policy, "habits", user("hi"))
    assert plain[0].role == "system"
    assert "habit" in plain[0].content
    assert plain[1] == Message("user", "hi")
    merged = with_coaching_prompt(policy, "goals", [Message("system", "Be brief."),
                                                    Message("user", "hi")])
    assert len(merged) == 2
    assert merged[0].content.endswith("\n\nBe brief.")
    assert "goal" in merged[0].content
