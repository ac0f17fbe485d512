"""The small sentsim config that sits beside a sentence-transformers model folder.

A saved sentsim model is a plain sentence-transformers folder plus ``sentsim_config.json``: the similarity
metric, the decision threshold per metric (chosen on dev data, never on test), which encoder it is, how it was
trained and its dev figures. Plain ``SentenceTransformer(path)`` ignores the file.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from sentsim._version import __version__
from sentsim.backends import BACKENDS
from sentsim.errors import ModelError
from sentsim.similarity import check_metric

logger = logging.getLogger(__name__)

__all__ = ["CONFIG_NAME", "ModelConfig", "EncoderKind"]

CONFIG_NAME = "sentsim_config.json"
EncoderKind = Literal["transformer", "lstm"]


@dataclass
class ModelConfig:
    """What sentsim knows about a model beyond its weights.

    Args:
        metric: the default similarity metric (``cosine``, ``euclidean``, ``manhattan`` or ``dot``).
        thresholds: decision threshold per metric: a pair whose similarity is at least this is "same meaning".
        encoder: ``transformer`` or ``lstm``.
        base_model: the model it started from (a path or hub id), for the record.
        training: how it was trained (loss and why, epochs, learning rate, data, wall time, ...).
        dev_metrics: figures measured on the dev data after training.
        threshold_source: where the thresholds came from, in words.
        backend: how :func:`sentsim.load` runs the encoder by default: one of :data:`sentsim.backends.BACKENDS` (see
            :mod:`sentsim.backends`); ``auto`` chooses when the model is loaded (on a CPU, int8 where the CPU has
            VNNI and int8 is close enough to fp32, else OpenVINO in fp32; for an LSTM, torch-bf16 where the CPU
            has native bf16, else torch; torch on a GPU).

    Example:
        >>> cfg = ModelConfig(metric="cosine", thresholds={"cosine": 0.7})
        >>> cfg.threshold_for("cosine")
        0.7
    """

    metric: str = "cosine"
    thresholds: dict[str, float] = field(default_factory=dict)
    encoder: EncoderKind = "transformer"
    base_model: str | None = None
    training: dict[str, Any] | None = None
    dev_metrics: dict[str, float] | None = None
    threshold_source: str | None = None
    backend: str = "auto"
    sentsim_version: str = __version__

    def __post_init__(self) -> None:
        self.metric = check_metric(self.metric)
        if self.encoder not in ("transformer", "lstm"):
            raise ModelError(f"{CONFIG_NAME}: encoder must be 'transformer' or 'lstm', not {self.encoder!r}")
        if self.backend not in BACKENDS:
            raise ModelError(f"{CONFIG_NAME}: backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        clean: dict[str, float] = {}
        for name, value in (self.thresholds or {}).items():
            check_metric(name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ModelError(f"{CONFIG_NAME}: threshold for {name!r} must be a finite number, not {value!r}")
            clean[name] = float(value)
        self.thresholds = clean

    def threshold_for(self, metric: str) -> float | None:
        """The decision threshold for ``metric``, or None when none was chosen."""
        return self.thresholds.get(metric)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, folder: str | Path) -> None:
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CONFIG_NAME) -> ModelConfig:
        if not isinstance(data, dict):
            raise ModelError(f"{source}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            logger.warning("%s: ignoring unknown keys %s", source, ", ".join(unknown))
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, folder: str | Path) -> ModelConfig | None:
        """Read the config from a model folder; None when the folder has none (a plain sentence-transformers model)."""
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=str(path))
