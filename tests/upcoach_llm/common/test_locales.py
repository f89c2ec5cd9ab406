"""Language tags: the shape check every service applies to ``locale``, and RFC 4647's lookup
order (written out here, not computed)."""

from __future__ import annotations

import pytest

from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.common.locales import check_locale, is_locale, lookup_order


@pytest.mark.parametrize("tag", ["es", "en-GB", "es-419", "zh-Hant-TW", "sr-Latn-RS",
                                 "de-CH-1996", "x-klingon", "EN-gb", "a" * 8 + "-b" * 13])
def test_well_formed_tags(tag: str) -> None:
    assert is_locale(tag) and check_locale("locale", tag) == tag


@pytest.mark.parametrize("tag", ["en_GB", "es-", "-es", "e$", "es--MX", "toolongtag",
                                 "es MX", "1es", "es-MX\n", "ñ", "a" * 8 + "-b" * 14])
def test_malformed_tags_are_invalid_argument_naming_the_field(tag: str) -> None:
    assert not is_locale(tag)
    with pytest.raises(InvalidArgument) as caught:
        check_locale("locale", tag)
    assert caught.value.field == "locale"
    assert tag not in caught.value.message


def test_no_locale_is_fine() -> None:
    assert check_locale("locale", "") == ""
    assert lookup_order("") == []


@pytest.mark.parametrize(("tag", "order"), [
    ("es", ["es"]),
    ("en-GB", ["en-gb", "en"]),
    ("zh-Hant-CN", ["zh-hant-cn", "zh-hant", "zh"]),
    ("zh-Hant-CN-x-private1", ["zh-hant-cn-x-private1", "zh-hant-cn", "zh-hant", "zh"]),
    ("de-CH-u-co-phonebk", ["de-ch-u-co-phonebk", "de-ch-u-co", "de-ch", "de"]),
])
def test_lookup_order_drops_subtags_and_singletons_from_the_end(tag, order) -> None:
    assert lookup_order(tag) == order
