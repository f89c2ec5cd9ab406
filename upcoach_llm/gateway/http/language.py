"""The caller's languages from ``Accept-Language`` (RFC 9110 §12.5.4), for the router's
``locale`` and ``more_locales``.

The header is a list of language ranges with optional weights, ``ca-ES, es;q=0.9, en;q=0.5``;
the languages are its ranges from the highest weight down, in the header's order on a tie,
leaving out ``*`` (any language: no preference), ranges weighted ``q=0`` (not acceptable) and
repeats, and keeping the first 1 + MAX_MORE_LOCALES. The router answers a crisis in the first of
them it has a text for. A malformed header, or a range longer than a language tag may be
(common/locales.py), is a 400 naming the header: silently answering in the default language
would hide the client's bug.
"""

from __future__ import annotations

import re

from upcoach_llm.common.limits import MAX_LOCALE_CHARS, MAX_MORE_LOCALES
from upcoach_llm.common.locales import is_locale
from upcoach_llm.gateway.errors import APIError

HEADER = "Accept-Language"
_WEIGHT = re.compile(r"^[ \t]*;[ \t]*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)[ \t]*$")


def preferred_locales(value: str | None) -> tuple[str, ...]:
    """The language tags of an Accept-Language value, most preferred first; empty when none."""
    weighted: dict[str, tuple[float, str]] = {}
    for element in (value or "").split(","):
        if not element.strip(" \t"):
            continue  # the list syntax allows empty elements
        tag, _, weight = element.partition(";")
        tag = tag.strip(" \t")
        quality = 1.0
        if weight:
            match = _WEIGHT.match(";" + weight)
            if match is None:
                raise _bad(f"{_shown(weight.strip())!r} is not a weight such as q=0.8")
            quality = float(match.group(1))
        if tag != "*" and not is_locale(tag):
            raise _bad(f"{_shown(tag)!r} is not a language tag such as es or en-GB "
                       f"(at most {MAX_LOCALE_CHARS} characters)")
        if tag != "*" and quality > 0 and tag.lower() not in weighted:
            weighted[tag.lower()] = (quality, tag)
    ranked = sorted(weighted.values(), key=lambda entry: -entry[0])  # stable: ties keep order
    return tuple(tag for _, tag in ranked[:1 + MAX_MORE_LOCALES])


def _shown(text: str) -> str:
    return text if len(text) <= MAX_LOCALE_CHARS else text[:MAX_LOCALE_CHARS] + "..."


def _bad(reason: str) -> APIError:
    return APIError(400, f"{HEADER}: {reason}", param=HEADER, code="invalid_value")
