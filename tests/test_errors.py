"""sentsim.errors.check_text: the one text check the bot, the HTTP service, the demo and the adapter share."""

from __future__ import annotations

import pytest

from sentsim.errors import ConfigError, DataError, SentsimError, TextError, TextTooLongError, check_text
from sentsim.faq import FAQBot, QueryError, QueryTooLongError


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("", TextError, "^the query is empty$"),
        (" \t\n", TextError, "^the query is only spaces$"),
        (42, TextError, "^the query must be text, not int$"),
        (None, TextError, "^the query must be text, not NoneType$"),
        ("x" * 11, TextTooLongError, "^the query has 11 characters, over the limit of 10$"),
    ],
)
def test_bad_text_gets_one_line_naming_the_field(value, error, message):
    with pytest.raises(error, match=message) as info:
        check_text(value, "the query", 10)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SentsimError)


def test_good_text_is_stripped_unless_empty_text_is_allowed():
    assert check_text("  hi there \n", "q", 12) == "hi there"
    assert check_text("x" * 10, "q", 10) == "x" * 10  # the limit itself is allowed
    assert check_text("  ", "q", 10, allow_empty=True) == "  "
    assert check_text("", "q", 10, allow_empty=True) == ""
    with pytest.raises(TextTooLongError):
        check_text(" " * 11, "q", 10, allow_empty=True)  # the size cap holds even where empty text is fine


def test_callers_choose_the_error_classes():
    with pytest.raises(ConfigError):
        check_text(3.5, "texts[0]", 10, error=ConfigError, too_long=DataError)
    with pytest.raises(DataError, match="texts\\[0\\] has 1,001 characters, over the limit of 1,000"):
        check_text("y" * 1001, "texts[0]", 1000, error=ConfigError, too_long=DataError)


def test_the_bot_raises_query_errors_that_are_text_errors():
    with pytest.raises(QueryTooLongError) as info:
        FAQBot.check_query("z" * 21, max_chars=20)
    assert isinstance(info.value, QueryError) and isinstance(info.value, TextTooLongError)
    with pytest.raises(QueryError, match="only spaces"):
        FAQBot.check_query("   ")
    assert FAQBot.check_query(" pin? ") == "pin?"
