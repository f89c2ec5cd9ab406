"""Request checks for the embedding service; each failure is INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from collections.abc import Sequence

from upcoach_llm.api import embedding_pb2
from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.common.fields import check_name, check_text
from upcoach_llm.common.limits import (
    MAX_CONTENT_CHARS,
    MAX_ITEMS,
    MAX_QUERY_CHARS,
    MAX_TAGS,
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    MAX_TOP_K,
)
from upcoach_llm.embedding.content import ContentItem

DEFAULT_TOP_K = 5


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts of an EmbedRequest: at least one, at most MAX_TEXTS, none blank."""
    if not texts:
        raise InvalidArgument("at least one text is required", field="texts")
    if len(texts) > MAX_TEXTS:
        raise InvalidArgument(f"at most {MAX_TEXTS} texts per request, got {len(texts)}",
                              field="texts")
    for index, text in enumerate(texts):
        if not text.strip():
            raise InvalidArgument("must not be empty", field=f"texts[{index}]")
        check_text(f"texts[{index}]", text, MAX_TEXT_CHARS)
    return list(texts)


def check_query(query: str) -> str:
    if not query.strip():
        raise InvalidArgument("must not be empty", field="query")
    return check_text("query", query, MAX_QUERY_CHARS)


def check_top_k(top_k: int) -> int:
    """top_k in [0, MAX_TOP_K]; 0 means DEFAULT_TOP_K."""
    if top_k < 0 or top_k > MAX_TOP_K:
        raise InvalidArgument(f"must be between 0 and {MAX_TOP_K} (0 means {DEFAULT_TOP_K}), "
                              f"got {top_k}", field="top_k")
    return top_k or DEFAULT_TOP_K


def check_items(items: Sequence[embedding_pb2.ContentItem]) -> list[ContentItem]:
    """The items of an IndexContentRequest: 1..MAX_ITEMS, each with id, category and text (at
    most MAX_CONTENT_CHARS), and at most MAX_TAGS tags."""
    if not items:
        raise InvalidArgument("at least one item is required", field="items")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(f"at most {MAX_ITEMS} items per request, got {len(items)}",
                              field="items")
    checked: list[ContentItem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        for field in ("id", "category", "text"):
            if not getattr(item, field).strip():
                raise InvalidArgument("must not be empty", field=f"items[{index}].{field}")
        for field in ("id", "category", "title"):
            check_name(f"items[{index}].{field}", getattr(item, field))
        check_text(f"items[{index}].text", item.text, MAX_CONTENT_CHARS)
        if len(item.tags) > MAX_TAGS:
            raise InvalidArgument(f"at most {MAX_TAGS} tags per item, got {len(item.tags)}",
                                  field=f"items[{index}].tags")
        for number, tag in enumerate(item.tags):
            check_name(f"items[{index}].tags[{number}]", tag)
        if item.id in seen:
            raise InvalidArgument(f"{item.id!r} appears twice in the request",
                                  field=f"items[{index}].id")
        seen.add(item.id)
        checked.append(ContentItem(id=item.id, category=item.category, title=item.title,
                                   text=item.text, tags=tuple(item.tags)))
    return checked
