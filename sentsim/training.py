"""Fine-tuning a Siamese model on sentence pairs, on top of sentence-transformers' trainer.

sentsim owns the workflow around the trainer: reading and checking the data, choosing the loss, evaluating on
dev during training, keeping the best checkpoint, resuming, choosing the decision threshold on dev (never on
test) and saving the model atomically with a record of how it was trained.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sentsim.data import PairData, parse_columns, parse_score_range, read_pairs
from sentsim.encoders import new_model
from sentsim.errors import ConfigError
from sentsim.loading import check_output_folder
from sentsim.losses import LOSSES, build_loss, check_proxy_margin, choose_loss
from sentsim.model import SiameseModel
from sentsim.thresholds import choose_thresholds, dev_figures

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "train"]

DEFAULT_LR = {"transformer": 2e-5, "lstm": 1e-3}


@dataclass
class TrainConfig:
    """Settings of one training run; ``__post_init__`` checks them.

    Args:
        train: the training pairs (CSV, TSV, JSONL or Parquet), or a :class:`~sentsim.data.PairData`.
        output_dir: where the trained model goes (written atomically).
        dev: pairs to evaluate on during training, keep the best checkpoint by and choose the threshold on.
        columns: ``"sentence1,sentence2,score"``: the columns to read, by header name or 0-based position.
        score_range: the declared range of the score column, scaled to 0..1 (``(0, 5)`` for STS-B).
        loss: ``auto`` or one of ``cosine``, ``cosent``, ``angle``, ``contrastive``, ``online_contrastive``, ``mnrl``.
        encoder: ``transformer`` (the base model itself) or ``lstm`` (a BiLSTM over the base's token embeddings).
        base_model: the model to start from; the bundled all-MiniLM-L6-v2 when None.
        epochs, batch_size, learning_rate, warmup_ratio, weight_decay: the optimisation; the learning rate
            defaults to 2e-5 for the transformer and 1e-3 for the LSTM.
        seed: makes runs repeatable.
        eval_steps: evaluate (and checkpoint) every this many steps; once per epoch when None.
        early_stopping_patience: stop after this many evaluations without a better dev figure.
        resume: continue from the last checkpoint of a killed run with the same ``output_dir``.
        overwrite: replace a model already in ``output_dir``.
        same_cutoff: for graded dev scores in 0..1, pairs at or above this count as "same meaning" when the
            decision threshold is chosen.
        threshold_objective: what the dev threshold maximises, ``accuracy`` or ``f1``.
        max_train_rows: read at most this many training rows.
        keep_checkpoints: keep ``OUTPUT_DIR.checkpoints/`` after a successful run.
        average_best: average the weights of this many best checkpoints (by the dev figure) and keep the average
            when it beats the best single checkpoint on dev; needs dev data and two or more evaluations (set
            ``eval_steps`` to evaluate within an epoch).
        show_progress: progress bars.
        proxies: loss ``proxy`` only: a starting vector per group (``{group: vector}``), e.g. group means the caller
            has already embedded; a group left out starts at its mean embedding by the starting model.
        proxy_margin: loss ``proxy`` only: the additive cosine margin of :func:`sentsim.losses.proxy_softmax`.
    """

    train: str | os.PathLike | PairData
    output_dir: str | os.PathLike
    dev: str | os.PathLike | PairData | None = None
    columns: str | Sequence[str] | None = None
    dev_columns: str | Sequence[str] | None = None
    score_range: str | tuple[float, float] | None = None
    loss: str = "auto"
    encoder: Literal["transformer", "lstm"] = "transformer"
    base_model: str | None = None
    epochs: float = 4
    batch_size: int = 16
    learning_rate: float | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    eval_steps: int | None = None
    early_stopping_patience: int | None = None
    resume: bool = False
    overwrite: bool = False
    same_cutoff: float = 0.7
    threshold_objective: Literal["accuracy", "f1"] = "accuracy"
    max_train_rows: int | None = None
    keep_checkpoints: bool = False
    average_best: int | None = None
    show_progress: bool = True
    proxies: Mapping[Any, Any] | None = None
    proxy_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.proxies is not None and self.loss != "proxy":
            raise ConfigError(f"proxies are the starting vectors of loss 'proxy', not of loss {self.loss!r}")
        self.proxy_margin = check_proxy_margin(self.proxy_margin)
        if self.proxy_margin and self.loss != "proxy":
            raise ConfigError(f"proxy_margin is a setting of loss 'proxy', not of loss {self.loss!r}")
        if self.encoder not in ("transformer", "lstm"):
            raise ConfigError(f"encoder must be 'transformer' or 'lstm', not {self.encoder!r}")
        if not self.epochs > 0:
            raise ConfigError(f"epochs must be > 0, not {self.epochs}")
        if self.batch_size < 1 or (self.loss == "mnrl" and self.batch_size < 2):
            raise ConfigError(f"batch_size must be >= 1 (>= 2 for mnrl), not {self.batch_size}")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LR[self.encoder]
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, not {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ConfigError(f"eval_steps must be >= 1, not {self.eval_steps}")
        if self.early_stopping_patience is not None and (self.early_stopping_patience < 1 or self.dev is None):
            raise ConfigError("early_stopping_patience must be >= 1 and needs dev data")
        if self.average_best is not None and (self.average_best < 2 or self.dev is None):
            raise ConfigError("average_best must be >= 2 and needs dev data")
        if not 0 < self.same_cutoff <= 1:
            raise ConfigError(f"same_cutoff must be in (0, 1], not {self.same_cutoff}")
        if self.threshold_objective not in ("accuracy", "f1"):
            raise ConfigError(f"threshold_objective must be 'accuracy' or 'f1', not {self.threshold_objective!r}")
        self.columns = parse_columns(self.columns)
        self.dev_columns = parse_columns(self.dev_columns) or self.columns
        self.score_range = parse_score_range(self.score_range)
        check_output_folder(self.output_dir, self.overwrite or self.resume)

    @property
    def checkpoint_dir(self) -> Path:
        out = Path(self.output_dir).expanduser().resolve()
        return out.parent / f"{out.name}.checkpoints"


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: SiameseModel
    output_dir: Path
    loss: str
    loss_reason: str
    dev_metrics: dict[str, float] | None
    dev_before: dict[str, float] | None
    wall_time_s: float


def _evaluator(dev: PairData, cutoff: float):
    from sentence_transformers.sentence_transformer import evaluation

    if dev.kind == "none":
        return None, None
    if dev.kind == "score":
        ev = evaluation.EmbeddingSimilarityEvaluator(
            dev.sentence1, dev.sentence2, dev.labels, name="dev", similarity_fn_names=["cosine"], write_csv=False
        )
        return ev, "eval_dev_spearman_cosine"
    labels = [int(x) for x in dev.labels or []]
    ev = evaluation.BinaryClassificationEvaluator(
        dev.sentence1, dev.sentence2, labels, name="dev", similarity_fn_names=["cosine"], write_csv=False
    )
    return ev, "eval_dev_cosine_ap"


PROXY_LR_FACTOR = 50  # the proxies start as group means and must move faster than the encoder's weights


def group_sums(emb: np.ndarray, groups: Sequence[Any]) -> dict[Any, np.ndarray]:
    """Each group's summed embeddings (float32), from embeddings already made: the direction of the group's mean,
    which is all the proxy loss's starting vectors need (they are normalized)."""
    sums: dict[Any, np.ndarray] = {}
    for row, g in zip(np.asarray(emb, dtype=np.float32), groups):
        sums[g] = sums[g] + row if g in sums else row.copy()
    return sums


def _proxy_data(data: PairData, model: SiameseModel, given: Mapping[Any, Any] | None = None):
    """loss 'proxy': a dataset of each pair's first sentence and its group's index, and the starting proxies: the
    ``given`` vector of a group, else its mean embedding by the starting model (only those sentences are embedded)."""
    import datasets

    groups = sorted(set(data.groups or []))
    code = {g: c for c, g in enumerate(groups)}
    labels = np.array([code[g] for g in data.groups or []])
    given = dict(given or {})
    if unknown := [g for g in given if g not in code]:
        raise ConfigError(f"proxies given for {len(unknown)} group(s) the pairs do not have, e.g. {unknown[0]!r}")
    dim = model.dimension
    proxies = np.zeros((len(groups), dim), dtype=np.float32)
    for g, vector in given.items():
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != dim:
            raise ConfigError(f"the proxy given for group {g!r} has {v.shape[0]} values; the model embeds in {dim}")
        proxies[code[g]] = v
    rows = [i for i, c in enumerate(labels) if groups[c] not in given]
    logger.info(
        "proxy: one vector per group, %d groups; %d given, the rest start at their mean embeddings",
        len(groups), len(given),
    )  # fmt: skip
    if rows:
        texts = [data.sentence1[i] for i in rows]
        emb = model.encode(texts, batch_size=64, show_progress_bar=len(rows) >= 1_000)
        for g, total in group_sums(emb, [data.groups[i] for i in rows]).items():
            proxies[code[g]] = total
    proxies /= np.maximum(np.linalg.norm(proxies, axis=1, keepdims=True), 1e-12)
    features = datasets.Features({"sentence1": datasets.Value("string"), "label": datasets.Value("int64")})
    dataset = datasets.Dataset.from_dict({"sentence1": data.sentence1, "label": labels.tolist()}, features=features)
    return dataset, proxies


def _train_dataset(data: PairData, loss: str, cutoff: float):
    if loss != "mnrl" or data.kind == "none":
        return data.to_dataset()
    keep = [i for i, y in enumerate(data.labels or []) if y >= cutoff]
    logger.info("mnrl: training on the %d of %d pairs labelled as positives", len(keep), len(data))
    return data.select(keep).to_dataset().remove_columns(["score" if data.kind == "score" else "label"])


def _pairs(source, columns, score_range, max_rows=None) -> PairData:
    """Pairs from a file, or pairs already read (a :class:`PairData`, e.g. built by the FAQ trainer)."""
    if isinstance(source, PairData):
        return source if max_rows is None else source.select(range(min(max_rows, len(source))))
    return read_pairs(source, columns, score_range, max_rows=max_rows)


def _last_checkpoint(folder: Path) -> str | None:
    """The newest *complete* checkpoint in ``folder``.

    The trainer writes a checkpoint folder in place and its ``trainer_state.json`` last, so a kill during a save
    leaves a newest folder without it. That folder is removed (with a warning) and the one before is used."""
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    for path in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if (path / "trainer_state.json").is_file():
            return str(path)
        logger.warning("%s: incomplete checkpoint (killed while saving), removed", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


LOSS_PARAMETERS = "loss_parameters.safetensors"  # a checkpoint's loss weights that are not the encoder's (proxies)


def _loss_parameters(loss) -> dict:
    """The loss module's own trainable weights (not those of the encoder it wraps), by name."""
    return (
        {n: p for n, p in loss.named_parameters() if not n.startswith("model.")}
        if hasattr(loss, "named_parameters")
        else {}
    )


def _trainer_class(base: type) -> type:
    """The trainer class with two seams changed.

    ``_save`` runs on the main process only. Under torchrun, transformers 5 calls it on every rank, and
    sentence-transformers' ``_save`` assumes it is the only writer: two ranks writing one checkpoint folder raced (a
    rank's model card vanished under it, and the run failed).

    A checkpoint also keeps the loss's own weights (the proxies of loss 'proxy'), which sentence-transformers leaves
    out, and ``--resume`` loads them back; without that a resumed run started its proxies again from the group
    means. They are written before ``trainer_state.json``, the mark of a complete checkpoint."""
    from safetensors.torch import load_file, save_file

    class SentsimTrainer(base):  # type: ignore[misc, valid-type]
        def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
            if not self.args.should_save:
                return
            super()._save(output_dir, state_dict=state_dict)
            if own := _loss_parameters(self.loss):
                folder = output_dir if output_dir is not None else self.args.output_dir
                save_file(
                    {n: p.detach().cpu().contiguous() for n, p in own.items()}, os.path.join(folder, LOSS_PARAMETERS)
                )

        def _load_from_checkpoint(self, checkpoint_path: str, *args: Any, **kwargs: Any) -> None:
            super()._load_from_checkpoint(checkpoint_path, *args, **kwargs)
            own = _loss_parameters(self.loss)
            if not own:
                return
            path = os.path.join(checkpoint_path, LOSS_PARAMETERS)
            if not os.path.isfile(path):
                logger.warning("%s: no %s, so the loss's own weights start again", checkpoint_path, LOSS_PARAMETERS)
                return
            saved = load_file(path)
            import torch

            with torch.no_grad():
                for name, param in own.items():
                    if name not in saved or saved[name].shape != param.shape:
                        raise ConfigError(f"{path}: {name} does not match this run's loss (other data or groups?)")
                    param.copy_(saved[name].to(param.device, param.dtype))
            logger.info("loaded the loss's own weights (%s) from %s", ", ".join(own), path)

    return SentsimTrainer


def _average_best(trainer, model: SiameseModel, evaluator, best_key: str, k: int, folder: Path) -> dict | None:
    """Average the ``k`` best checkpoints by their dev figure; load the average into ``model`` when it beats the best
    single checkpoint (which the trainer has loaded) on dev. Returns what was done, for the training record."""
    from sentsim.averaging import average_models

    scored = {e["step"]: e[best_key] for e in trainer.state.log_history if best_key in e}
    ranked = [
        s for s in sorted(scored, key=scored.get, reverse=True) if (folder / f"checkpoint-{s}/modules.json").is_file()
    ]
    folders = [folder / f"checkpoint-{s}" for s in ranked[:k]]
    if len(folders) < 2:
        logger.warning("average_best: %d checkpoint(s) with a dev figure, nothing to average", len(folders))
        return None
    key = best_key.removeprefix("eval_")
    best_single = float(scored[ranked[0]])  # the trainer's dev figure of the checkpoint it loaded at the end
    soup = average_models(folders, device=str(model.encoder.device))
    averaged = float(evaluator(soup.encoder)[key])
    used = averaged > best_single
    if used:
        model.encoder.load_state_dict(soup.encoder.state_dict())
    logger.info(
        "average of %d best checkpoints: dev %s %.4f against the best single %.4f: %s",
        len(folders), key, averaged, best_single, "kept" if used else "not kept",
    )  # fmt: skip
    return {
        "checkpoints": [f.name for f in folders],
        "dev_figure": key,
        "dev_best_single": round(100 * best_single, 3),
        "dev_averaged": round(100 * averaged, 3),
        "kept": used,
    }


def train(config: TrainConfig | None = None, **kwargs: Any) -> TrainResult:
    """Fine-tune a Siamese model on sentence pairs and save it with its dev threshold.

    Pass a :class:`TrainConfig` or its fields as keywords.

    Example:
        >>> import sentsim  # doctest: +SKIP
        >>> sentsim.train(train="pairs.csv", dev="dev.csv", loss="auto", output_dir="runs/my-model")  # doctest: +SKIP
    """
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.training_args import BatchSamplers
    from transformers import EarlyStoppingCallback

    cfg = config if config is not None else TrainConfig(**kwargs)
    started = time.perf_counter()

    # 1. Data
    train_data = _pairs(cfg.train, cfg.columns, cfg.score_range, cfg.max_train_rows)
    dev_data = _pairs(cfg.dev, cfg.dev_columns, cfg.score_range) if cfg.dev is not None else None
    loss_name, reason = choose_loss(cfg.loss, train_data, cfg.encoder)
    grouped = loss_name == "mnrl" and train_data.groups is not None
    if grouped:
        reason += "; in-batch sentences of a pair's own group are left out of its negatives"
    logger.info("loss: %s (%s)", loss_name, reason)

    # 2. Model and the dev figures it starts from
    model = new_model(cfg.encoder, cfg.base_model)
    dev_before = dev_figures(model, dev_data, cfg.same_cutoff) if dev_data is not None else None
    if dev_before:
        logger.info("dev before training: %s", dev_before)

    # 3. Trainer
    if loss_name == "proxy":
        from sentsim.losses import proxy_softmax

        train_dataset, proxies = _proxy_data(train_data, model, cfg.proxies)
        loss_module = proxy_softmax(model.encoder, proxies, margin=cfg.proxy_margin)
    else:
        train_dataset = _train_dataset(train_data, loss_name, cfg.same_cutoff)
        loss_module = build_loss(loss_name, model.encoder, grouped=grouped)
    evaluator, best_key = _evaluator(dev_data, cfg.same_cutoff) if dev_data is not None else (None, None)
    per_steps = cfg.eval_steps is not None
    strategy = "steps" if per_steps else "epoch"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(cfg.checkpoint_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        dataloader_pin_memory=False,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        eval_strategy=strategy if evaluator is not None else "no",
        save_strategy=strategy,
        eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps if per_steps else 500,
        save_total_limit=None if cfg.average_best else 2,
        load_best_model_at_end=evaluator is not None,
        metric_for_best_model=best_key,
        greater_is_better=True,
        logging_steps=max(1, cfg.eval_steps or 50),
        report_to="none",
        disable_tqdm=not cfg.show_progress,
        batch_sampler=BatchSamplers.NO_DUPLICATES if loss_name == "mnrl" else BatchSamplers.BATCH_SAMPLER,
        ddp_backend="gloo" if os.environ.get("WORLD_SIZE") else None,
        dataloader_num_workers=0,
        learning_rate_mapping={r"^proxies$": cfg.learning_rate * PROXY_LR_FACTOR} if loss_name == "proxy" else {},
    )
    callbacks = [EarlyStoppingCallback(cfg.early_stopping_patience)] if cfg.early_stopping_patience else []
    trainer = _trainer_class(SentenceTransformerTrainer)(
        model=model.encoder,
        args=args,
        train_dataset=train_dataset,
        loss=loss_module,
        evaluator=evaluator,
        callbacks=callbacks,
    )
    resume_from = _last_checkpoint(cfg.checkpoint_dir) if cfg.resume else None
    if cfg.resume and resume_from is None:
        logger.warning("--resume: no checkpoint in %s, starting from the beginning", cfg.checkpoint_dir)
    elif resume_from:
        logger.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=resume_from)
    averaging = None
    if cfg.average_best and evaluator is not None and trainer.is_world_process_zero():
        averaging = _average_best(trainer, model, evaluator, best_key, cfg.average_best, cfg.checkpoint_dir)

    # 4. Threshold and figures on dev, then save (the main process only, under torchrun)
    wall = time.perf_counter() - started
    dev_after = None
    if dev_data is not None:
        dev_after = dev_figures(model, dev_data, cfg.same_cutoff)
        model.config.thresholds = choose_thresholds(model, dev_data, cfg.same_cutoff, cfg.threshold_objective)
        model.config.threshold_source = f"dev file {dev_data.source}, best {cfg.threshold_objective}" + (
            f", gold >= {cfg.same_cutoff} as same meaning" if dev_data.kind == "score" else ""
        )
        logger.info("dev after training: %s; thresholds %s", dev_after, model.config.thresholds)
    model.config.dev_metrics = dev_after
    model.config.training = {
        "loss": loss_name,
        "loss_reason": reason,
        "train_file": train_data.source,
        "train_pairs": len(train_data),
        "train_label_kind": train_data.kind,
        "dev_file": dev_data.source if dev_data is not None else None,
        "dev_before": dev_before,
        "wall_time_s": round(wall, 1),
        "global_steps": trainer.state.global_step,
        "checkpoint_averaging": averaging,
        "settings": {
            f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in ("train", "dev", "output_dir", "proxies")
        },
    }
    out = Path(cfg.output_dir).expanduser().resolve()
    if trainer.is_world_process_zero():
        model.save(out, overwrite=True)
        if not cfg.keep_checkpoints:
            shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)
    return TrainResult(model, out, loss_name, reason, dev_after, dev_before, wall)
