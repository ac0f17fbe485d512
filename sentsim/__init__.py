"""sentsim: Siamese sentence similarity. One shared encoder embeds both sentences of a pair; a similarity head
(cosine, Euclidean, Manhattan, dot) says how alike they are.

Example:
    >>> import sentsim
    >>> model = sentsim.load()
    >>> model.similarity("A man plays a guitar.", "Someone is playing a guitar.") > 0.5
    True
"""

from __future__ import annotations

from sentsim._version import __version__
from sentsim.config import ModelConfig
from sentsim.encoders import build_lstm, load
from sentsim.errors import ConfigError, DataError, ModelError, OutputExistsError, SentsimError
from sentsim.faq import Answer, FAQBot, QueryError
from sentsim.index import VectorIndex
from sentsim.model import SiameseModel, Verdict


def train(config=None, **kwargs):
    """Fine-tune a Siamese model on sentence pairs; see :func:`sentsim.training.train` and
    :class:`sentsim.training.TrainConfig` for the settings.

    Example:
        >>> import sentsim
        >>> sentsim.train(train="pairs.csv", dev="dev.csv", loss="auto", output_dir="runs/my-model")  # doctest: +SKIP
    """
    from sentsim.training import train as _train

    return _train(config, **kwargs)


def distill(config=None, **kwargs):
    """Distill a teacher (the bundled model by default) into a fast LSTM on unlabelled sentences; see
    :func:`sentsim.distillation.distill` and :class:`sentsim.distillation.DistillConfig` for the settings.

    Example:
        >>> import sentsim
        >>> sentsim.distill(files=["sentences.txt"], dev="dev.csv", output_dir="runs/student")  # doctest: +SKIP
    """
    from sentsim.distillation import distill as _distill

    return _distill(config, **kwargs)


def average_models(models, output_dir=None, **kwargs):
    """Average the weights of several models fine-tuned from the same base; see
    :func:`sentsim.averaging.average_models`.

    Example:
        >>> import sentsim
        >>> sentsim.average_models(["runs/seed42", "runs/seed43"], "runs/soup", dev="dev.csv")  # doctest: +SKIP
    """
    from sentsim.averaging import average_models as _average

    return _average(models, output_dir, **kwargs)


__all__ = [
    "__version__",
    "load",
    "train",
    "distill",
    "average_models",
    "build_lstm",
    "SiameseModel",
    "FAQBot",
    "VectorIndex",
    "Answer",
    "QueryError",
    "Verdict",
    "ModelConfig",
    "SentsimError",
    "DataError",
    "ModelError",
    "ConfigError",
    "OutputExistsError",
]
