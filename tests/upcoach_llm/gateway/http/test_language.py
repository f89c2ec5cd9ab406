"""Accept-Language to the router's locale and more_locales: weights parsed as RFC 9110 writes
them, tags from the most preferred down (the header's order on a tie), ``*`` and ``q=0`` are no
preference, repeats and tags past the ninth are dropped, and a malformed header is a 400 naming
it."""

from __future__ import annotations

import pytest

from upcoach_llm.common.limits import MAX_MORE_LOCALES
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.http.language import preferred_locales


@pytest.mark.parametrize(("header", "locales"), [
    (None, ()), ("", ()), ("es", ("es",)), ("en-GB", ("en-GB",)),
    ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", ("fr-CH", "fr", "en", "de")),
    ("en;q=0.8, es", ("es", "en")),
    ("ca-ES, es;q=0.8", ("ca-ES", "es")),
    ("en;q=0.5, es;q=0.5", ("en", "es")),
    ("de;q=0.1,es-MX;q=0.900", ("es-MX", "de")),
    ("es ; q=0.7 , en ;Q=0.3", ("es", "en")),
    ("en;q=1.000", ("en",)),
    ("*", ()), ("*, es;q=0.2", ("es",)),
    ("es;q=0", ()), ("es;q=0.000, en;q=0.001", ("en",)),
    (" , es ,, ", ("es",)),
    ("es, ES;q=0.5, en, es", ("es", "en")),
])
def test_the_tags_most_preferred_first(header: str | None, locales: tuple[str, ...]) -> None:
    assert preferred_locales(header) == locales


def test_only_the_most_preferred_tags_are_kept() -> None:
    tags = [f"x{chr(ord('a') + i)}" for i in range(20)]
    header = ", ".join(f"{tag};q=0.{10 + i}" for i, tag in enumerate(tags))
    assert preferred_locales(header) == tuple(reversed(tags))[:1 + MAX_MORE_LOCALES]


@pytest.mark.parametrize("header", [
    "es;q=1.5", "es;q=2", "es;q=0.1234", "es;q=", "es;q=.5", "es;level=1", "es;q=0.5;x=1",
    "es_ES", "es-", "e$", "español", "es MX", "a" * 36, "en-" + "abcdefghi"])
def test_a_malformed_header_is_400_naming_it(header: str) -> None:
    with pytest.raises(APIError) as caught:
        preferred_locales(header)
    error = caught.value
    assert (error.status, error.param) == (400, "Accept-Language")
    assert error.message.startswith("Accept-Language: ")
    assert len(error.message) < 200
