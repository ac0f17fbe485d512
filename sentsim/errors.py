"""The errors sentsim raises for bad input.

Every error a user can cause is a :class:`SentsimError`, a ``ValueError`` subclass whose message is one
sentence naming the file, row or field at fault. The CLI prints that sentence and exits with code 2.
"""

from __future__ import annotations

__all__ = ["SentsimError", "DataError", "ModelError", "OutputExistsError", "ConfigError"]


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
