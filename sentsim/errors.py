"""The errors sentsim raises for bad input.

Every error a user can cause is a :class:`SentsimError`, a ``ValueError`` subclass whose message is one
sentence naming the file, row or field at fault. The CLI prints that sentence and exits with code 2.
"""

from __future__ import annotations

import numbers
from typing import Any

__all__ = [
    "SentsimError",
    "DataError",
    "ModelError",
    "OutputExistsError",
    "ConfigError",
    "TextError",
    "TextTooLongError",
    "check_text",
    "check_positive_int",
]


class SentsimError(ValueError):
    """Base class of every error caused by bad input to sentsim."""


class DataError(SentsimError):
    """A data file is missing, empty, malformed or holds a bad row."""


class ModelError(SentsimError):
    """A model folder is missing, incomplete, unsafe (pickle weights) or not a sentence encoder."""


class OutputExistsError(SentsimError):
    """An output folder already holds a model and overwriting was not asked for."""


class ConfigError(SentsimError):
    """A setting has a value sentsim cannot use."""


class TextError(SentsimError):
    """A text input (a query, a sentence) is not text, is empty or only spaces, or is over its size limit."""


class TextTooLongError(TextError):
    """A text input is over its size limit (HTTP 413 in ``sentsim serve``)."""


def check_text(
    value: Any,
    field: str,
    limit: int,
    *,
    error: type[SentsimError] = TextError,
    too_long: type[SentsimError] = TextTooLongError,
    allow_empty: bool = False,
) -> str:
    """The one check every text input goes through: the library, the HTTP service and the demo.

    Args:
        value: what the caller gave.
        field: how the message names it ("the query", "sentence1").
        limit: the most characters allowed.
        error: the class raised for non-text or empty input.
        too_long: the class raised for input over ``limit``.
        allow_empty: accept empty and all-space text (an embedding of "" is legal).

    Returns:
        ``value`` without leading and trailing spaces (``value`` itself when ``allow_empty``).

    Example:
        >>> check_text("  how do I install it ", "the query", 100)
        'how do I install it'
        >>> check_text("   ", "the query", 100)
        Traceback (most recent call last):
        ...
        sentsim.errors.TextError: the query is only spaces
    """
    if not isinstance(value, str):
        raise error(f"{field} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise too_long(f"{field} has {len(value):,} characters, over the limit of {limit:,}")
    if allow_empty:
        return value
    text = value.strip()
    if not text:
        raise error(f"{field} is empty" if not value else f"{field} is only spaces")
    return text


def check_positive_int(value: Any, field: str) -> int:
    """``value`` when it is an integer >= 1 (a NumPy integer too, not a bool); else a one-line :class:`ConfigError`.

    Example:
        >>> check_positive_int(3, "answer_k")
        3
        >>> check_positive_int(0, "answer_k")
        Traceback (most recent call last):
        ...
        sentsim.errors.ConfigError: answer_k must be a positive integer, not 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{field} must be a positive integer, not {value!r}")
    return value
