"""The in-memory content index: items and their unit vectors, searched by cosine similarity.

Vectors are kept normalised in one float32 matrix, so a search is a matrix-vector product and a
partial sort. Items are added or replaced by id. All calls are synchronous and made from the event
loop, so a search never sees a half-applied update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from upcoach_llm.embedding.content import ContentItem


@dataclass(frozen=True)
class Hit:
    """One search result."""

    item: ContentItem
    score: float


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ContentIndex:
    """Content items searchable by meaning."""

    def __init__(self) -> None:
        self._items: list[ContentItem] = []
        self._rows: dict[str, int] = {}
        self._categories = np.empty(0, dtype=object)
        self._matrix: np.ndarray | None = None

    @property
    def dimensions(self) -> int | None:
        """Length of the vectors, fixed by the first upsert."""
        return None if self._matrix is None else self._matrix.shape[1]

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_id: str) -> ContentItem | None:
        row = self._rows.get(item_id)
        return None if row is None else self._items[row]

    def categories(self) -> set[str]:
        return {item.category for item in self._items}

    def upsert(self, items: Sequence[ContentItem], vectors: Sequence[Sequence[float]]) -> int:
        """Adds the items, replacing those whose id is already indexed; returns how many."""
        matrix = _normalised(np.asarray(vectors, dtype=np.float32).reshape(len(items), -1))
        if self._matrix is None:
            self._matrix = np.empty((0, matrix.shape[1]), dtype=np.float32)
        if matrix.shape[1] != self._matrix.shape[1]:
            raise ValueError(f"vectors have {matrix.shape[1]} dimensions, the index "
                             f"{self._matrix.shape[1]}")
        new_rows: list[np.ndarray] = []
        for item, vector in zip(items, matrix, strict=True):
            row = self._rows.get(item.id)
            if row is None:
                self._rows[item.id] = len(self._items)
                self._items.append(item)
                new_rows.append(vector)
            else:
                self._items[row] = item
                self._matrix[row] = vector
        if new_rows:
            self._matrix = np.vstack([self._matrix, *new_rows])
        self._categories = np.array([item.category.strip().lower() for item in self._items],
                                    dtype=object)
        return len(items)

    def search(self, query: Sequence[float], top_k: int, category: str = "") -> list[Hit]:
        """The top_k items closest to the query, best first; only ``category`` when given."""
        if self._matrix is None or not self._items or top_k <= 0:
            return []
        vector = _normalised(np.asarray(query, dtype=np.float32))
        scores = self._matrix @ vector
        rows = np.arange(len(self._items))
        if category:
            rows = rows[self._categories == category.strip().lower()]
            scores = scores[rows]
        if len(rows) > top_k:
            best = np.argpartition(-scores, top_k - 1)[:top_k]
        else:
            best = np.arange(len(rows))
        best = best[np.argsort(-scores[best], kind="stable")]
        return [Hit(self._items[rows[i]], float(scores[i])) for i in best]
