"""Language tags (BCP 47, RFC 5646): the check every service applies to a request's ``locale``,
and RFC 4647's lookup order in which a tag finds the closest configured language (a request may
name several, most preferred first: each is looked up in turn).

A tag is checked for its shape only (subtags of 1 to 8 letters or digits joined by ``-``, the
first of letters, at most MAX_LOCALE_CHARS in all), not against the IANA registry: an unknown but
well-formed tag simply falls back. Tags compare case-insensitively, as BCP 47 says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.common.limits import MAX_LOCALE_CHARS, MAX_MORE_LOCALES

_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


def is_locale(value: str) -> bool:
    """Whether value is a well-formed language tag of at most MAX_LOCALE_CHARS."""
    return len(value) <= MAX_LOCALE_CHARS and _TAG.fullmatch(value) is not None


def check_locale(field: str, value: str) -> str:
    """value when empty (no locale) or a well-formed tag; else InvalidArgument naming field."""
    if value and not is_locale(value):
        if len(value) > MAX_LOCALE_CHARS:
            raise InvalidArgument(f"at most {MAX_LOCALE_CHARS} characters, got {len(value)}",
                                  field=field)
        raise InvalidArgument("not a BCP 47 language tag such as es or en-GB", field=field)
    return value


def check_locales(locale: str, more: Sequence[str]) -> tuple[str, ...]:
    """A request's languages, most preferred first: ``locale`` then ``more_locales``, each
    checked (InvalidArgument naming the field), empty ones left out."""
    check_locale("locale", locale)
    if len(more) > MAX_MORE_LOCALES:
        raise InvalidArgument(f"at most {MAX_MORE_LOCALES} tags, got {len(more)}",
                              field="more_locales")
    for index, tag in enumerate(more):
        check_locale(f"more_locales[{index}]", tag)
    return tuple(tag for tag in (locale, *more) if tag)


def locale_fields(locales: Sequence[str]) -> dict[str, str | list[str]]:
    """Languages, most preferred first, as a request's ``locale`` and ``more_locales``."""
    return {"locale": locales[0] if locales else "", "more_locales": list(locales[1:])}


def lookup_order(tag: str) -> list[str]:
    """The tag, lower-cased, then each shorter prefix (RFC 4647 lookup: a prefix never ends in
    a single-letter subtag), ``zh-Hant-CN`` -> ``zh-hant-cn``, ``zh-hant``, ``zh``."""
    subtags = tag.lower().split("-") if tag else []
    order = []
    while subtags:
        order.append("-".join(subtags))
        subtags.pop()
        while subtags and len(subtags[-1]) == 1:
            subtags.pop()
    return order
