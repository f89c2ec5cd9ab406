"""config/semantic_cache.yaml: typed, checked against features.yaml, and what is impersonal."""

from __future__ import annotations

from pathlib import Path

import pytest

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import ROLE_VALUES
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.gateway.store.semantic_policy import CHARS_PER_WORD, load_semantic_policy


def message(role: str, content: str) -> common_pb2.ChatMessage:
    return common_pb2.ChatMessage(role=ROLE_VALUES[role], content=content)


def test_the_shipped_file_names_the_three_impersonal_features() -> None:
    policy = load_semantic_policy()
    assert set(policy.file.features) == {"daily_affirmations", "habit_tips", "quick_reminders"}
    assert policy.embedding_model == "all-minilm-l6-v2"
    assert policy.threshold("mood_analysis") is None
    assert policy.threshold("") is None


def test_a_coaching_context_names_its_feature() -> None:
    policy = load_semantic_policy()
    assert policy.feature_of("", "affirmations") == "daily_affirmations"
    assert policy.feature_of("", "habits") == "habit_tips"
    assert policy.feature_of("quick_reminders", "general") == "quick_reminders"
    assert policy.feature_of("", "mood") == "mood_analysis"
    assert policy.feature_of("", "") == ""


def test_only_one_short_user_message_is_impersonal() -> None:
    policy = load_semantic_policy()
    ask = message("user", "Give me a tip to drink more water")
    assert policy.impersonal_text([ask]) == "Give me a tip to drink more water"
    assert policy.impersonal_text([message("system", "Be brief."), ask]) is not None
    earlier = [message("user", "I drink two litres a day"), message("assistant", "Great!"), ask]
    assert policy.impersonal_text(earlier) is None
    assert policy.impersonal_text([message("user", "word " * 41)]) is None
    longest = policy.file.max_words * CHARS_PER_WORD
    assert policy.impersonal_text([message("user", "tip " + "x" * (longest - 4))]) is not None
    assert policy.impersonal_text([message("user", "tip " + "x" * (longest - 3))]) is None
    assert policy.impersonal_text([message("system", "Be brief.")]) is None
    assert policy.impersonal_text([]) is None


def test_an_unknown_feature_stops_start_up(config_copy: Path) -> None:
    path = config_copy / "semantic_cache.yaml"
    path.write_text(path.read_text().replace("habit_tips:", "habit_tip:"))
    with pytest.raises(ConfigError, match=r"semantic_cache.yaml: features.habit_tip: "
                                          r"'habit_tip' is not in features.yaml"):
        load_semantic_policy()


def test_a_threshold_must_be_a_cosine(config_copy: Path) -> None:
    path = config_copy / "semantic_cache.yaml"
    path.write_text(path.read_text().replace("threshold: 0.75", "threshold: 1.5", 1))
    with pytest.raises(ConfigError, match=r"semantic_cache.yaml: features.daily_affirmations."
                                          r"threshold"):
        load_semantic_policy()
