"""Accept-Language to the router's locale: weights parsed as RFC 9110 writes them, the most
preferred tag wins (the first on a tie), ``*`` and ``q=0`` are no preference, and a malformed
header is a 400 naming it."""

from __future__ import annotations

import pytest

from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.http.language import preferred_locale


@pytest.mark.parametrize(("header", "locale"), [
    (None, ""), ("", ""), ("es", "es"), ("en-GB", "en-GB"),
    ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr-CH"),
    ("en;q=0.8, es", "es"),
    ("en;q=0.5, es;q=0.5", "en"),
    ("de;q=0.1,es-MX;q=0.900", "es-MX"),
    ("es ; q=0.7 , en ;Q=0.3", "es"),
    ("en;q=1.000", "en"),
    ("*", ""), ("*, es;q=0.2", "es"),
    ("es;q=0", ""), ("es;q=0.000, en;q=0.001", "en"),
    (" , es ,, ", "es"),
])
def test_the_preferred_tag(header: str | None, locale: str) -> None:
    assert preferred_locale(header) == locale


@pytest.mark.parametrize("header", [
    "es;q=1.5", "es;q=2", "es;q=0.1234", "es;q=", "es;q=.5", "es;level=1", "es;q=0.5;x=1",
    "es_ES", "es-", "e$", "español", "es MX", "a" * 36, "en-" + "abcdefghi"])
def test_a_malformed_header_is_400_naming_it(header: str) -> None:
    with pytest.raises(APIError) as caught:
        preferred_locale(header)
    error = caught.value
    assert (error.status, error.param) == (400, "Accept-Language")
    assert error.message.startswith("Accept-Language: ")
    assert len(error.message) < 200
