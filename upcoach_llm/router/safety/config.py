"""config/safety.yaml, typed: per category its crisis responses, thresholds, patterns and
exemplars; the benign exemplars and the idioms shared by all.

Category names are the proto's SafetyCategory names (``self_harm``...); every pattern must
compile, every locale must be a language tag (common/locales.py) and every category must answer
in the default locale, so a bad file stops start-up with the file and key named.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from upcoach_llm.api.names import SafetyCategoryName
from upcoach_llm.common.config import SAFETY_FILE, load_config_file
from upcoach_llm.common.locales import is_locale, lookup_order


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiled(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


class Category(_Strict):
    """One kind of risk: how it is recognised and what it is answered with."""

    threshold: float = Field(gt=0, le=1, description="cosine to the nearest exemplar")
    margin: float = Field(ge=0, le=1, description="over the nearest benign exemplar")
    conversation_threshold: float = Field(gt=0, le=1,
                                          description="the same, for the recent turns together")
    response: dict[str, str] = Field(min_length=1, description="crisis response per locale")
    patterns: list[str] = []
    exemplars: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        return _compiled(value)

    @field_validator("response")
    @classmethod
    def _locales_are_tags(cls, value: dict[str, str]) -> dict[str, str]:
        for locale in value:
            if not is_locale(locale):
                raise ValueError(f"{locale!r} is not a BCP 47 language tag such as es or en-GB")
        if len({locale.lower() for locale in value}) < len(value):
            raise ValueError("a locale is given twice (tags ignore case)")
        return value


class SafetyFile(_Strict):
    """config/safety.yaml."""

    default_locale: str = Field(min_length=1, description="answers an absent or unknown locale")
    cache_size: int = Field(ge=0)
    max_user_messages: int = Field(gt=0)
    window: int = Field(gt=0)
    categories: dict[SafetyCategoryName, Category] = Field(min_length=1)
    benign_exemplars: list[str] = Field(min_length=1)
    idioms: list[str] = []

    @field_validator("idioms")
    @classmethod
    def _idioms_compile(cls, value: list[str]) -> list[str]:
        return _compiled(value)

    @model_validator(mode="after")
    def _answers_in_the_default_locale(self) -> SafetyFile:
        for name, category in self.categories.items():
            if self.default_locale not in category.response:
                raise ValueError(f"categories.{name}.response: no {self.default_locale!r} "
                                 "text (the default_locale)")
            for locale, text in category.response.items():
                if not text.strip():
                    raise ValueError(f"categories.{name}.response.{locale}: empty")
        return self

    def response(self, category: str, *locales: str) -> str:
        """The category's crisis response in the first of the locales (most preferred first)
        that has one, each also through its shorter tags (``es-MX`` → ``es``; RFC 4647 lookup,
        ignoring case), else in the default locale."""
        texts = self.categories[category].response  # type: ignore[index]
        by_tag = {tag.lower(): text for tag, text in texts.items()}
        for locale in locales:
            for candidate in lookup_order(locale):
                if candidate in by_tag:
                    return by_tag[candidate]
        return texts[self.default_locale]


def load_safety() -> SafetyFile:
    """Reads and validates config/safety.yaml (or UPCOACH_CONFIG_DIR's)."""
    return load_config_file(SafetyFile, SAFETY_FILE)
