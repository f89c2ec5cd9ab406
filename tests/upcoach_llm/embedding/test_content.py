"""The shipped coaching corpus and the checks on a content file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.embedding.content import content_path, load_content


def test_the_shipped_corpus_covers_every_category() -> None:
    items = load_content()
    counts = Counter(item.category for item in items)
    assert len(items) >= 36
    for category in ("tips", "habits", "goals", "motivation", "wellness", "mood"):
        assert counts[category] >= 5, category
    assert all(item.title and item.tags and len(item.text) > 80 for item in items)


def test_coaching_content_path_overrides_the_file(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    custom = tmp_path / "content.yaml"
    custom.write_text("items:\n  - {id: a, category: tips, text: Breathe.}\n")
    monkeypatch.setenv("COACHING_CONTENT_PATH", str(custom))
    assert content_path() == custom
    assert [item.id for item in load_content()] == ["a"]


@pytest.mark.parametrize(("body", "key"), [
    ("items:\n  - {id: a, category: tips, text: One.}\n  - {id: a, category: tips, text: Two.}\n",
     "items.1.id"),
    ("items:\n  - {id: a, category: tips}\n", "items.0.text"),
    ("items:\n  - {id: a, category: ' ', text: One.}\n", "items.0.category"),
    ("items:\n  - {id: a, category: tips, text: One., colour: red}\n", "items.0.colour"),
    ("entries: []\n", "items"),
])
def test_a_bad_file_names_the_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "content.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=rf"{path}.*{key}"):
        load_content(path)
