"""Distilling a transformer into the fast LSTM encoder: the student learns to reproduce the teacher's embeddings.

No labels are needed: the teacher (the bundled model by default) embeds unlabelled sentences once, and a fresh
BiLSTM over the teacher's own word pieces and input embeddings (:func:`sentsim.encoders.build_lstm`) is trained to
give the same vectors (cosine distance by default, or MSE). The student lands in the teacher's embedding space, so
it can be compared against the teacher's embeddings, dropped into an FAQ bot made with the teacher's thresholds,
and fine-tuned on pairs afterwards with ``sentsim train --encoder lstm --base-model STUDENT``. It encodes about
ten times faster on a CPU (``eval/bench_speed.py --lstm``).

Example:
    >>> import sentsim  # doctest: +SKIP
    >>> result = sentsim.distill(files=["sentences.txt"], output_dir="runs/student")  # doctest: +SKIP
    >>> result.model.encode("How do I reset my card PIN?").shape  # doctest: +SKIP
    (384,)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sentsim.data import PairData, parse_columns, parse_score_range, read_pairs, read_sentences
from sentsim.encoders import build_lstm, load
from sentsim.errors import ConfigError, DataError
from sentsim.loading import check_output_folder
from sentsim.model import SiameseModel
from sentsim.thresholds import choose_thresholds, dev_figures

logger = logging.getLogger(__name__)

__all__ = ["DistillConfig", "DistillResult", "distill"]

DISTANCES = ("cosine", "mse", "l2")


@dataclass
class DistillConfig:
    """Settings of one distillation run; ``__post_init__`` checks them.

    Args:
        output_dir: where the student goes (written atomically).
        files: text files to take sentences from (:func:`sentsim.data.read_sentences`: ``.txt`` one per line,
            or the sentence columns of a CSV, TSV, JSONL or Parquet table).
        texts: sentences given directly; used together with ``files``. Duplicates are dropped.
        columns: the text columns of the table files, when they are not the known names.
        teacher: the model to reproduce: a folder, a hub id, or a loaded :class:`SiameseModel`; the bundled
            model when None.
        hidden_dim: LSTM state size per direction; None gives half the teacher's dimension, so the student's
            (bidirectional) embedding has the teacher's size, which the distance needs.
        num_layers: stacked LSTM layers.
        max_seq_length: tokens the student reads per sentence.
        epochs, batch_size, learning_rate, warmup_ratio, weight_decay, seed: the optimisation.
        distance: ``cosine`` (1 - cosine to the teacher's vector), ``mse`` or ``l2``.
        dev: graded pairs (e.g. STS-B dev) to report the teacher and the student on, and to choose the student's
            decision threshold on; the student is not selected on it.
        dev_columns, score_range, same_cutoff: how to read the dev pairs, as in :class:`sentsim.TrainConfig`.
        max_sentences: use at most this many distinct sentences.
        overwrite: replace a model already in ``output_dir``.
        show_progress: progress bars.
    """

    output_dir: str | os.PathLike
    files: Sequence[str | os.PathLike] | str | os.PathLike = ()
    texts: Sequence[str] = ()
    columns: str | Sequence[str] | None = None
    teacher: str | os.PathLike | SiameseModel | None = None
    hidden_dim: int | None = None
    num_layers: int = 1
    max_seq_length: int = 128
    epochs: float = 3
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    seed: int = 42
    distance: Literal["cosine", "mse", "l2"] = "cosine"
    dev: str | os.PathLike | PairData | None = None
    dev_columns: str | Sequence[str] | None = None
    score_range: str | tuple[float, float] | None = None
    same_cutoff: float = 0.7
    max_sentences: int | None = None
    overwrite: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.files, (str, os.PathLike)):
            self.files = [self.files]
        if isinstance(self.texts, str):
            raise ConfigError("texts must be a list of sentences, not one string")
        if not self.files and not self.texts:
            raise ConfigError("nothing to distill on: give files (text or table files) or texts")
        if self.distance not in DISTANCES:
            raise ConfigError(f"distance must be one of {', '.join(DISTANCES)}, not {self.distance!r}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ConfigError(f"hidden_dim must be >= 1, not {self.hidden_dim}")
        if self.num_layers < 1 or self.max_seq_length < 2:
            raise ConfigError("num_layers must be >= 1 and max_seq_length >= 2")
        if not self.epochs > 0:
            raise ConfigError(f"epochs must be > 0, not {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, not {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ConfigError(f"max_sentences must be >= 1, not {self.max_sentences}")
        self.dev_columns = parse_columns(self.dev_columns)
        self.score_range = parse_score_range(self.score_range)
        check_output_folder(self.output_dir, self.overwrite)


@dataclass
class DistillResult:
    """What :func:`distill` returns. The dev figures are Spearman and Pearson x100 (None without dev data)."""

    model: SiameseModel
    output_dir: Path
    sentences: int
    teacher_dev: dict[str, float] | None
    dev_before: dict[str, float] | None
    dev_metrics: dict[str, float] | None
    wall_time_s: float


def _sentences(cfg: DistillConfig) -> list[str]:
    found: list[str] = []
    for path in cfg.files:
        found += read_sentences(path, cfg.columns)
    for i, text in enumerate(cfg.texts):
        if not isinstance(text, str):
            raise DataError(f"texts[{i}]: expected text, found {type(text).__name__}")
        if text.strip():
            found.append(text.strip())
    sentences = list(dict.fromkeys(found))[: cfg.max_sentences]
    if not sentences:
        raise DataError("no sentences to distill on: the files and texts hold only blank lines")
    return sentences


def distill(config: DistillConfig | None = None, **kwargs: Any) -> DistillResult:
    """Train a fresh LSTM student to reproduce a teacher's embeddings, and save it. Pass a :class:`DistillConfig`
    or its fields as keywords.

    Example:
        >>> import sentsim  # doctest: +SKIP
        >>> sentsim.distill(files=["../shared/data/banking77/train.csv"], output_dir="runs/student")  # doctest: +SKIP
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import EmbedDistillLoss

    cfg = config if config is not None else DistillConfig(**kwargs)
    started = time.perf_counter()

    # 1. Sentences, dev pairs and the teacher
    sentences = _sentences(cfg)
    dev = None
    if cfg.dev is not None:
        dev = cfg.dev if isinstance(cfg.dev, PairData) else read_pairs(cfg.dev, cfg.dev_columns, cfg.score_range)
    teacher = cfg.teacher if isinstance(cfg.teacher, SiameseModel) else load(cfg.teacher, backend="torch")
    hidden = cfg.hidden_dim or teacher.dimension // 2
    if 2 * hidden != teacher.dimension:
        raise ConfigError(
            f"the student's embedding has 2 x hidden_dim = {2 * hidden} dimensions and the teacher's "
            f"{teacher.dimension}; they must match (leave hidden_dim unset for {teacher.dimension // 2})"
        )
    logger.info("embedding %d sentences with the teacher", len(sentences))
    targets = teacher.encode(sentences, batch_size=64, show_progress_bar=cfg.show_progress)
    teacher_dev = dev_figures(teacher, dev, cfg.same_cutoff) if dev is not None else None

    # 2. The student, from the teacher's own tokenizer and input embeddings
    base = cfg.teacher.source if isinstance(cfg.teacher, SiameseModel) else cfg.teacher
    student = build_lstm(base, hidden_dim=hidden, num_layers=cfg.num_layers, max_seq_length=cfg.max_seq_length)
    dev_before = dev_figures(student, dev, cfg.same_cutoff) if dev is not None else None

    # 3. Train on (sentence, teacher embedding)
    checkpoints = Path(cfg.output_dir).expanduser().resolve()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints.parent / f"{checkpoints.name}.checkpoints"),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="no",
        logging_steps=100,
        report_to="none",
        disable_tqdm=not cfg.show_progress,
        dataloader_pin_memory=False,
        dataloader_num_workers=0,
    )
    data = Dataset.from_dict({"sentence": sentences, "label": np.asarray(targets, dtype=np.float32)})
    loss = EmbedDistillLoss(student.encoder, distance_metric=cfg.distance)
    trainer = SentenceTransformerTrainer(model=student.encoder, args=args, train_dataset=data, loss=loss)
    trainer.train()
    wall = time.perf_counter() - started

    # 4. Dev figures, thresholds, the record, and the atomic save
    dev_after = None
    if dev is not None:
        dev_after = dev_figures(student, dev, cfg.same_cutoff)
        student.config.thresholds = choose_thresholds(student, dev, cfg.same_cutoff)
        student.config.threshold_source = f"dev file {dev.source}, best accuracy" + (
            f", gold >= {cfg.same_cutoff} as same meaning" if dev.kind == "score" else ""
        )
        logger.info("dev: teacher %s, student before %s, after %s", teacher_dev, dev_before, dev_after)
    student.config.dev_metrics = dev_after
    skip = ("files", "texts", "teacher", "dev", "output_dir")
    student.config.training = {
        "kind": "distillation",
        "teacher": str(teacher.source or teacher.config.base_model),
        "distance": cfg.distance,
        "files": [os.fspath(p) for p in cfg.files],
        "sentences": len(sentences),
        "dev_file": dev.source if dev is not None else None,
        "teacher_dev": teacher_dev,
        "dev_before": dev_before,
        "wall_time_s": round(wall, 1),
        "global_steps": trainer.state.global_step,
        "settings": {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in skip} | {"hidden_dim": hidden},
    }
    out = Path(cfg.output_dir).expanduser().resolve()
    student.save(out, overwrite=True)
    return DistillResult(student, out, len(sentences), teacher_dev, dev_before, dev_after, wall)
