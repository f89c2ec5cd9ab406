"""Coaching content items and the shipped corpus, config/coaching_content.yaml.

COACHING_CONTENT_PATH points at another file. The file is validated once at start-up: every item
needs an id (unique), a category and a text; a bad file fails with the file and key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from upcoach_llm.common.config import config_dir, load_yaml, validate
from upcoach_llm.common.limits import MAX_CONTENT_CHARS, MAX_NAME_CHARS, MAX_TAGS
from upcoach_llm.common.variables import VARIABLES


class ContentItem(BaseModel):
    """One piece of coaching content; ``text`` is what gets embedded and shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    title: str = ""
    text: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    tags: tuple[Annotated[str, Field(max_length=MAX_NAME_CHARS)], ...] = Field(
        default=(), max_length=MAX_TAGS)

    @field_validator("id", "category", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class ContentFile(BaseModel):
    """config/coaching_content.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[ContentItem]

    @model_validator(mode="after")
    def _unique_ids(self) -> ContentFile:
        seen: set[str] = set()
        for index, item in enumerate(self.items):
            if item.id in seen:
                raise ValueError(f"items.{index}.id: {item.id!r} is used twice")
            seen.add(item.id)
        return self


def content_path() -> Path:
    """COACHING_CONTENT_PATH, else coaching_content.yaml in the config folder."""
    raw = VARIABLES.str("COACHING_CONTENT_PATH")
    return Path(raw) if raw else config_dir() / "coaching_content.yaml"


def load_content(path: Path | None = None) -> list[ContentItem]:
    """The corpus's items, validated."""
    path = path or content_path()
    return validate(ContentFile, load_yaml(path), str(path)).items
