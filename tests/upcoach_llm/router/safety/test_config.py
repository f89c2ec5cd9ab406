"""config/safety.yaml: every SafetyCategory answered with real crisis resources; a bad file stops
start-up naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from upcoach_llm.api.names import SAFETY_CATEGORY_VALUES
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.router.safety.config import load_safety


def test_every_category_of_the_proto_is_configured_with_an_english_response() -> None:
    config = load_safety()
    assert set(config.categories) == set(SAFETY_CATEGORY_VALUES)
    assert config.default_locale == "en"
    for category in config.categories.values():
        assert category.exemplars and category.patterns
        assert 0 < category.threshold <= 1


def test_responses_name_real_crisis_resources() -> None:
    config = load_safety()
    self_harm = config.response("self_harm")
    for resource in ("988", "116 123", "findahelpline.com", "911", "112"):
        assert resource in self_harm
    assert "911" in config.response("medical_emergency")
    assert "112" in config.response("medical_emergency")
    assert "988" in config.response("harm_to_others")


def test_an_unknown_locale_falls_back_to_its_language_then_the_default() -> None:
    config = load_safety()
    assert config.response("self_harm", "en-GB") == config.response("self_harm")
    assert config.response("self_harm", "xx") == config.response("self_harm", "en")


def test_the_first_language_with_a_text_answers() -> None:
    config = load_safety()
    spanish = config.response("self_harm", "es")
    assert config.response("self_harm", "ca-ES", "es-MX", "en") == spanish
    assert config.response("self_harm", "en-GB", "es") == config.response("self_harm", "en")
    assert config.response("self_harm", "ca", "fr") == config.response("self_harm")


def test_every_category_answers_in_spanish_with_resources_that_speak_it() -> None:
    config = load_safety()
    for category in config.categories:
        spanish = config.response(category, "es")
        assert spanish != config.response(category, "en")
        assert "112" in spanish and "911" in spanish
    self_harm = config.response("self_harm", "es")
    for resource in ("024", "800 911 2000", "988", "marca 2", "findahelpline.com"):
        assert resource in self_harm
    assert "800 911 2000" in config.response("harm_to_others", "es")
    assert "91 562 04 20" in config.response("medical_emergency", "es")


@pytest.mark.parametrize(("locale", "language"), [
    ("es", "es"), ("ES", "es"), ("es-MX", "es"), ("es-419", "es"), ("es-Latn-x-a", "es"),
    ("en-GB", "en"), ("fr", "en"), ("", "en")])
def test_a_locale_finds_its_closest_language_ignoring_case(locale: str, language: str) -> None:
    config = load_safety()
    assert config.response("self_harm", locale) == config.categories["self_harm"].response[
        language]


def test_a_locale_that_is_not_a_language_tag_is_named(config_copy: Path) -> None:
    _rewrite(config_copy, lambda d: d["categories"]["self_harm"]["response"].update(
        {"es_ES": "Llama al 024."}))
    with pytest.raises(ConfigError, match=r"safety.yaml: categories.self_harm.response"):
        load_safety()


def _rewrite(config_copy: Path, change) -> None:
    path = config_copy / "safety.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_a_bad_pattern_is_named(config_copy: Path) -> None:
    _rewrite(config_copy, lambda d: d["categories"]["self_harm"]["patterns"].append("(unclosed"))
    with pytest.raises(ConfigError, match=r"safety.yaml: categories.self_harm.patterns"):
        load_safety()


def test_an_unknown_category_is_named(config_copy: Path) -> None:
    _rewrite(config_copy, lambda d: d["categories"].update(
        {"sadness": d["categories"]["self_harm"]}))
    with pytest.raises(ConfigError, match=r"safety.yaml: categories.sadness"):
        load_safety()


def test_a_category_without_the_default_locale_is_named(config_copy: Path) -> None:
    def change(data: dict) -> None:
        data["categories"]["medical_emergency"]["response"] = {"de": "Notruf 112"}
    _rewrite(config_copy, change)
    with pytest.raises(ConfigError, match=r"categories.medical_emergency.response: no 'en'"):
        load_safety()
