"""String fields of REST requests: valid Unicode, bounded, and not blank where the services refuse
blank text; each refusal is a 400 naming the field, and the JSON Schema says the same bounds.

JSON can carry a lone UTF-16 surrogate (``"\\ud800"``) that Python decodes into a str which
protobuf, Redis keys and the JSON encoder all refuse, so every request string passes ``problem``.
``Name`` is the type of model, feature, context, category and user names. ``NOT_BLANK`` is the
JSON Schema pattern of a string that ``str.strip`` leaves non-empty: it spells out Python's
whitespace, which differs from the ``\\s`` of JSON Schema validators.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from upcoach_llm.common.limits import MAX_NAME_CHARS

NOT_BLANK = r"[^\t-\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# The one role whose message content may be blank: a reply of no text (a stop sequence that came
# first) goes back as history as it came.
BLANK_CONTENT_ROLE = "assistant"


def unless_blank_role(then: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema keywords of a message: ``then`` holds unless its role is BLANK_CONTENT_ROLE."""
    return {"if": {"properties": {"role": {"not": {"const": BLANK_CONTENT_ROLE}}}}, "then": then}


class Schema:
    """JSON Schema keywords added to a type's generated schema, for checks that a validator of
    the type or of its field enforces."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(core_schema), **self.keywords}


def problem(value: str, *, max_length: int, min_length: int = 0,
            blank: bool = True) -> str | None:
    """Why the string cannot be accepted, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must be valid Unicode text (a lone surrogate at character {exc.start})"
    if len(value) > max_length:
        return f"must be at most {max_length} characters, got {len(value)}"
    if len(value) < min_length:
        return f"must be at least {min_length} character{'s' if min_length > 1 else ''}"
    if not blank and not value.strip():
        return "must not be blank"
    return None


def keywords(max_length: int, *, min_length: int = 0, blank: bool = True) -> dict[str, Any]:
    """The JSON Schema keywords of what ``problem`` accepts."""
    result: dict[str, Any] = {"maxLength": max_length}
    if not blank:
        result |= {"minLength": max(min_length, 1), "pattern": NOT_BLANK}
    elif min_length:
        result["minLength"] = min_length
    return result


def refuse(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (no "Value error, " prefix)."""
    return PydanticCustomError("invalid_value", message)


def text(max_length: int, *, min_length: int = 0, blank: bool = True) -> Any:
    """A str field type that enforces ``problem`` and documents it."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            reason = problem(value, max_length=max_length, min_length=min_length, blank=blank)
            if reason:
                raise refuse(reason)
        return value

    return Annotated[str, BeforeValidator(check),
                     Schema(**keywords(max_length, min_length=min_length, blank=blank))]


def described(max_length: int, *, min_length: int = 0, blank: bool = True) -> Any:
    """A str type inside a union whose field validator runs ``problem`` on it (so that a bad
    value is reported at the field, not at the union member): documented, not checked here."""
    return Annotated[str, Schema(**keywords(max_length, min_length=min_length, blank=blank))]


Name = text(MAX_NAME_CHARS)
