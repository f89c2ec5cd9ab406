"""Checks the vectors a remote engine returned and L2-normalises them.

The embedding contract is one L2-normalised vector per text, all the same length. A remote
engine that answers otherwise (a count that does not match, token-level vectors from a model
without pooling, non-numbers) is reported as a malformed reply, not passed on.
"""

from __future__ import annotations

import math
from typing import Any


class VectorShapeError(ValueError):
    """The vectors do not have the shape of one flat vector per input."""


def normalised_vectors(raw: Any, count: int) -> list[list[float]]:
    """``count`` flat vectors of one length, each scaled to unit length (zero stays zero)."""
    if not isinstance(raw, list) or len(raw) != count:
        got = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise VectorShapeError(f"expected {count} vectors, got {got}")
    vectors: list[list[float]] = []
    for index, vector in enumerate(raw):
        if not isinstance(vector, list) or not vector or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in vector):
            raise VectorShapeError(f"vector {index} is not a flat list of numbers (a model "
                                   "without pooling returns one vector per token)")
        if vectors and len(vector) != len(vectors[0]):
            raise VectorShapeError(f"vector {index} has {len(vector)} dimensions, the first "
                                   f"{len(vectors[0])}")
        norm = math.sqrt(sum(v * v for v in vector))
        vectors.append([v / norm for v in vector] if norm else [float(v) for v in vector])
    return vectors
