"""Checks of the string fields every service takes, with the limits of upcoach_llm.common.limits.

The REST models enforce the same limits at the gateway; these hold for direct gRPC callers.
Each failure is InvalidArgument naming the field and never echoing the whole value.
"""

from __future__ import annotations

import re
import uuid

from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.common.limits import MAX_NAME_CHARS

MAX_REQUEST_ID_CHARS = 64
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def check_name(field: str, value: str) -> str:
    """A model, feature, context, backend or category name: at most MAX_NAME_CHARS."""
    return check_text(field, value, MAX_NAME_CHARS)


def check_text(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(f"at most {limit} characters, got {len(value)}", field=field)
    return value


def request_id_of(value: str) -> str:
    """The caller's request id when it is sane (it goes into every log line), else a new one."""
    if not value:
        return uuid.uuid4().hex
    if not _REQUEST_ID.match(value):
        raise InvalidArgument(f"1 to {MAX_REQUEST_ID_CHARS} of A-Z a-z 0-9 . _ : -",
                              field="request_id")
    return value
