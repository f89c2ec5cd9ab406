"""The content index: cosine top-k over normalised vectors, category filter, replace by id."""

from __future__ import annotations

import numpy as np
import pytest

from upcoach_llm.embedding.content import ContentItem
from upcoach_llm.embedding.index import ContentIndex


def item(item_id: str, category: str = "tips") -> ContentItem:
    return ContentItem(id=item_id, category=category, title=item_id.title(), text=f"{item_id}.")


@pytest.fixture
def index() -> ContentIndex:
    index = ContentIndex()
    index.upsert([item("east"), item("north", "Goals"), item("west"), item("north-east", "goals")],
                 [[3, 0], [0, 2], [-1, 0], [1, 1]])
    return index


def test_search_returns_cosine_scores_best_first(index: ContentIndex) -> None:
    hits = index.search([1, 0.1], top_k=4)
    assert [h.item.id for h in hits] == ["east", "north-east", "north", "west"]
    assert hits[0].score == pytest.approx(1 / np.hypot(1, 0.1))
    assert hits[1].score == pytest.approx(1.1 / (np.hypot(1, 0.1) * np.sqrt(2)))
    assert hits[-1].score == pytest.approx(-1 / np.hypot(1, 0.1))


def test_top_k_limits_and_may_exceed_the_index(index: ContentIndex) -> None:
    assert [h.item.id for h in index.search([0, 1], top_k=2)] == ["north", "north-east"]
    assert len(index.search([0, 1], top_k=50)) == 4
    assert index.search([0, 1], top_k=0) == []


def test_category_filter_is_case_insensitive(index: ContentIndex) -> None:
    hits = index.search([1, 0], top_k=5, category="GOALS")
    assert [h.item.id for h in hits] == ["north-east", "north"]
    assert index.search([1, 0], top_k=5, category="mood") == []


def test_category_filter_ignores_surrounding_blanks_on_both_sides(index: ContentIndex) -> None:
    index.upsert([item("padded", " Sleep ")], [[1, 0]])
    assert [h.item.id for h in index.search([1, 0], top_k=5, category="sleep")] == ["padded"]
    assert [h.item.id for h in index.search([1, 0], top_k=5, category=" SLEEP")] == ["padded"]


def test_upsert_replaces_an_item_with_the_same_id(index: ContentIndex) -> None:
    assert index.upsert([item("west", "mood"), item("south")], [[1, 0.2], [0, -1]]) == 2
    assert len(index) == 5
    assert index.get("west").category == "mood"
    assert [h.item.id for h in index.search([0, -1], top_k=1)] == ["south"]
    assert index.search([1, 0], top_k=2, category="mood")[0].score > 0.9
    assert index.categories() == {"tips", "Goals", "goals", "mood"}


def test_an_empty_index_finds_nothing() -> None:
    index = ContentIndex()
    assert index.dimensions is None
    assert index.search([1.0, 0.0], top_k=5) == []


def test_vectors_of_another_length_are_refused(index: ContentIndex) -> None:
    assert index.dimensions == 2
    with pytest.raises(ValueError, match="3 dimensions"):
        index.upsert([item("up")], [[0, 0, 1]])
