"""The caller's language from ``Accept-Language`` (RFC 9110 §12.5.4), for the router's ``locale``.

The header is a list of language ranges with optional weights, ``es-MX, es;q=0.9, en;q=0.5``;
the locale is the range with the highest weight, the first of them on a tie, leaving out ``*``
(any language: no preference) and ranges weighted ``q=0`` (not acceptable). A malformed header,
or a range longer than a language tag may be (common/locales.py), is a 400 naming the header:
silently answering in the default language would hide the client's bug.
"""

from __future__ import annotations

import re

from upcoach_llm.common.limits import MAX_LOCALE_CHARS
from upcoach_llm.common.locales import is_locale
from upcoach_llm.gateway.errors import APIError

HEADER = "Accept-Language"
_WEIGHT = re.compile(r"^[ \t]*;[ \t]*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)[ \t]*$")


def preferred_locale(value: str | None) -> str:
    """The most preferred language tag of an Accept-Language value; empty when none is."""
    best, best_weight = "", 0.0
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
        if tag != "*" and quality > best_weight:
            best, best_weight = tag, quality
    return best


def _shown(text: str) -> str:
    return text if len(text) <= MAX_LOCALE_CHARS else text[:MAX_LOCALE_CHARS] + "..."


def _bad(reason: str) -> APIError:
    return APIError(400, f"{HEADER}: {reason}", param=HEADER, code="invalid_value")
