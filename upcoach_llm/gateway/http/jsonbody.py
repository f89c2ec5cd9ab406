"""JSON bodies as bytes with orjson: compact UTF-8, numpy float32 vectors written as float32."""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)
