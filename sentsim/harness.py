"""The evaluation harness: score a model on a test set, for three tasks, and keep what failed.

- ``sts``: graded pairs (STS-B). Spearman and Pearson x100 of each metric's similarity against the gold score.
- ``pairs``: 0/1 pairs (MSRP). Accuracy, F1, precision and recall at a threshold chosen on a *dev* file (or given),
  average precision and ROC AUC.
- ``faq``: retrieval (BANKING77). Each FAQ row is (question, answer); each query row is (query, expected answer),
  an empty expected answer meaning out of scope. Top-1 accuracy, MRR@10 and recall@k over distinct answers; with
  a threshold (chosen on dev queries), in-scope accuracy and out-of-scope recall.

Test files never choose anything: thresholds come from dev files, from the user, or from the model. Every task
returns a :class:`TaskResult` (figures, one record per test item, the failed items worst first, the arrays the
plots need); :func:`sentsim.reports.write_report` writes it out. Data is a file (CSV/TSV/JSONL/Parquet, read by
:func:`sentsim.data.read_pairs` or :func:`read_qa`), a path under ``../shared/data`` (:func:`data_dir`), or a
``datasets`` id written ``ID[@CONFIG][:SPLIT]``. Bad input raises a one-line :class:`~sentsim.errors.SentsimError`.

Ranking and the (question, answer) tables come from :mod:`sentsim.retrieval`, which the FAQ bot shares.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

from sentsim.data import (
    _FORMATS,
    PairData,
    parse_score_range,
    read_pairs,
)
from sentsim.errors import ConfigError, DataError, check_positive_int
from sentsim.evaluation import best_threshold, binary_metrics, score_metrics
from sentsim.retrieval import QAData, rank, read_qa
from sentsim.similarity import METRICS, check_metric
from sentsim.thresholds import dev_scores, same_labels

__all__ = [
    "Task", "TASKS", "TaskResult", "QAData", "evaluate", "evaluate_sts", "evaluate_pairs", "evaluate_faq",
    "rank", "read_qa", "data_dir", "parse_ks",
]  # fmt: skip

logger = logging.getLogger(__name__)

Task = Literal["sts", "pairs", "faq"]
TASKS: tuple[str, ...] = ("sts", "pairs", "faq")
DEFAULT_DATA: dict[str, dict[str, Any]] = {  # under data_dir(), used when no test data is named
    "sts": {"data": "stsb/test.csv", "score_range": (0.0, 5.0)},
    "pairs": {"test": "msrp/test.tsv", "dev": "msrp/dev.tsv"},
    "faq": {"faq": "banking77/train.csv", "queries": "banking77/test.csv"},
}
_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?(@[\w.-]+)?(:\S+)?$")


@dataclass
class TaskResult:
    """What one evaluation found.

    Args:
        task: ``sts``, ``pairs`` or ``faq``.
        model: The model's name or path, for the record.
        metric: The similarity metric of the per-item scores and the threshold.
        metrics: Figures (x100 except ``threshold``), e.g. ``spearman_cosine`` or ``accuracy``.
        primary: The key of the headline figure in ``metrics``.
        data: Where each input came from: ``{"test": ..., "dev": ...}`` or ``{"faq": ..., "queries": ...}``.
        threshold: The decision threshold applied to test, or None.
        threshold_source: Where it came from, in words (a dev file, the user, the model).
        items: One record per test item, in file order (``row`` is the 1-based row in the file).
        errors: The failed items, worst first (for ``sts`` every pair, by rank disagreement).
        arrays: What the plots need (scores, gold labels, ...), by name.
        counts: Sizes: pairs, queries, FAQ entries, ...
        wall_time_s: Seconds the evaluation took, reading and encoding included.
    """

    task: str
    model: str
    metric: str
    metrics: dict[str, float]
    primary: str
    data: dict[str, str]
    threshold: float | None = None
    threshold_source: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def score(self) -> float:
        """The headline figure, ``metrics[primary]``."""
        return self.metrics[self.primary]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: everything but the items and arrays."""
        keys = ("task", "model", "metric", "primary", "data", "threshold", "threshold_source", "metrics", "counts")
        out = {k: getattr(self, k) for k in keys}
        return {**out, "wall_time_s": round(self.wall_time_s, 3), "errors": len(self.errors)}


# ------------------------------------------------------------------------------------------------ data
def data_dir() -> Path:
    """The public data beside the project: ``$SENTSIM_DATA``, else ``../shared/data`` from the working folder or
    from the project root."""
    if os.environ.get("SENTSIM_DATA"):
        return Path(os.environ["SENTSIM_DATA"])
    candidates = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _from_datasets(spec: str, split: str, tmp: Path, names_for_labels: bool) -> Path:
    """Load ``ID[@CONFIG][:SPLIT]`` with ``datasets`` and write it as Parquet for the file readers."""
    import datasets

    ident, _, chosen = spec.partition(":")
    ident, _, config = ident.partition("@")
    try:
        ds = datasets.load_dataset(ident, config or None, split=chosen or split)
    except Exception as exc:  # hub, network and builder errors share no base class
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{spec}: not a file here or in {data_dir()}, nor a loadable datasets id ({first})") from None
    frame = ds.to_pandas()
    for name, feature in ds.features.items():
        if names_for_labels and isinstance(feature, datasets.ClassLabel):  # an answer is its label's name
            frame[name] = [feature.int2str(int(v)) for v in frame[name]]
    path = tmp / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec)}.parquet"
    frame.to_parquet(path, index=False)
    return path


def _locate(spec: str | os.PathLike, split: str, stack: ExitStack, names_for_labels: bool = False) -> tuple[Path, str]:
    """``(path, label)``: a local file, else the same path under :func:`data_dir`, else a ``datasets`` id (written
    to a temporary Parquet file; ``label`` is then the id, for messages)."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.exists() or path.is_absolute():
        return path, text
    shared = data_dir() / path
    if shared.exists():
        return shared, os.fspath(shared)
    if path.suffix.lower().lstrip(".") in _FORMATS or not _DATASET_ID.match(text):
        raise DataError(f"{text}: file not found (here or in {data_dir()})")
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sentsim-eval-")))
    return _from_datasets(text, split, tmp, names_for_labels), text


def _named(located: tuple[Path, str], read, *args, **kwargs):
    """Run a reader on a located file; messages and ``source`` name the label (a datasets id, not a temp file)."""
    path, label = located
    try:
        data = read(path, *args, **kwargs)
    except DataError as exc:
        raise DataError(str(exc).replace(os.fspath(path), label)) from None
    data.source = label
    return data


def _read_pair_file(spec, split, stack, columns, score_range, max_rows=None) -> PairData:
    return _named(_locate(spec, split, stack), read_pairs, columns, score_range, max_rows=max_rows)


def _read_qa_file(spec, split, stack, columns, allow_empty, max_rows=None) -> QAData:
    return _named(_locate(spec, split, stack, names_for_labels=True), read_qa, columns, allow_empty, max_rows=max_rows)


def parse_ks(spec: str | Sequence[int]) -> tuple[int, ...]:
    """Parse the cut-offs of recall@k, e.g. ``"1,5,10"``, into sorted distinct positive ints.

    Example:
        >>> parse_ks("10, 1,5")
        (1, 5, 10)
    """
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        ks = sorted({int(str(p).strip()) for p in parts})
    except ValueError:
        ks = []
    if not ks or ks[0] < 1:
        raise ConfigError(f"ks {spec!r}: give positive whole numbers such as 1,5,10")
    return tuple(ks)


# ------------------------------------------------------------------------------------------ helpers
def _model(model: Any, name: str | None) -> tuple[Any, str]:
    """Load ``model`` when it is a path, hub id or None (the bundled model); name it for the record."""
    if model is None or isinstance(model, str | os.PathLike):
        from sentsim.encoders import BUNDLED_NAME, load

        return load(model), name or (BUNDLED_NAME if model is None else os.fspath(model))
    config = getattr(model, "config", None)
    base, trained = getattr(config, "base_model", None), getattr(config, "training", None)
    return model, name or (f"fine-tuned from {base}" if base and trained else base or type(model).__name__)


def _threshold(threshold: float | str | None, model: Any, metric: str) -> tuple[float | None, str | None]:
    """A threshold the user gave: a number, or ``"model"`` for the model's own."""
    if threshold is None:
        return None, None
    if isinstance(threshold, str) and threshold.strip().lower() == "model":
        value = model.config.threshold_for(metric)
        if value is None:
            raise ConfigError(f"the model has no decision threshold for metric {metric!r}; choose one on dev data")
        return float(value), f"the model's own ({model.config.threshold_source or 'source not recorded'})"
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ConfigError(f"threshold {threshold!r}: give a number, or 'model' for the model's own") from None
    if not np.isfinite(value):
        raise ConfigError(f"threshold {threshold!r}: give a finite number")
    return value, "given by the user"


def _same_file(a: Any, b: Any, what: str) -> None:
    pa, pb = Path(os.fspath(a)), Path(os.fspath(b))
    if pa.exists() and pb.exists() and pa.resolve() == pb.resolve():
        raise ConfigError(f"{os.fspath(b)}: the dev file is the {what} file; choices must not be made on test data")


def _percentile(x: np.ndarray) -> np.ndarray:
    return rankdata(x) / len(x)


# --------------------------------------------------------------------------------------------- tasks
def evaluate_sts(
    model: Any = None,
    data: str | os.PathLike | None = None,
    *,
    columns: str | Sequence[str] | None = None,
    score_range: str | tuple[float, float] | None = None,
    max_rows: int | None = None,
    model_name: str | None = None,
) -> TaskResult:
    """Spearman and Pearson x100 of every similarity metric against graded gold scores (STS-B style).

    Args:
        model: A :class:`~sentsim.model.SiameseModel`, a model folder or hub id, or None for the bundled model.
        data: Test pairs with a score; None for STS-B test under :func:`data_dir` (scores 0..5).
        columns: ``sentence1,sentence2,score`` names or positions, as for :func:`sentsim.data.read_pairs`.
        score_range: The gold scores' range, e.g. ``(0, 5)``; scaled to 0..1.
        max_rows: Evaluate only the first rows.
        model_name: The name to record; by default the path or the model's base.

    Returns:
        Metrics ``spearman_<metric>`` and ``pearson_<metric>`` for cosine, euclidean, manhattan and dot (primary:
        Spearman of the model's metric); errors are every pair, worst first by the gap between its predicted and
        gold percentile ranks.
    """
    start = time.perf_counter()
    if data is None:  # STS-B test, beside the project
        data, score_range = DEFAULT_DATA["sts"]["data"], score_range or DEFAULT_DATA["sts"]["score_range"]
    with ExitStack() as stack:
        pairs = _read_pair_file(data, "test", stack, columns, score_range, max_rows)
    if pairs.kind == "none":
        raise DataError(f"{pairs.source}: no score column; sts needs sentence1,sentence2,score (pass columns)")
    if pairs.kind == "binary":
        logger.warning("%s: the labels are all 0 or 1; pass score_range if they are graded scores", pairs.source)
    model, name = _model(model, model_name)
    scores = dev_scores(model, pairs)  # {metric: (n,)}
    gold = np.asarray(pairs.labels, dtype=np.float64)
    metrics: dict[str, float] = {}
    for m in METRICS:
        figures = score_metrics(scores[m], gold)
        metrics[f"spearman_{m}"], metrics[f"pearson_{m}"] = figures["spearman"], figures["pearson"]
    pred = scores[model.metric].astype(np.float64)
    low, high = parse_score_range(score_range) or (0.0, 1.0)
    gold_shown = low + gold * (high - low)
    gap = np.abs(_percentile(pred) - _percentile(gold))
    items = [
        {"row": r, "sentence1": a, "sentence2": b, "gold": float(g), "predicted": float(p), "rank_gap": float(d)}
        for r, a, b, g, p, d in zip(pairs.rows, pairs.sentence1, pairs.sentence2, gold_shown, pred, gap)
    ]
    errors = [items[i] for i in np.argsort(-gap, kind="stable")]
    return TaskResult(
        task="sts",
        model=name,
        metric=model.metric,
        metrics=metrics,
        primary=f"spearman_{model.metric}",
        data={"test": pairs.source},
        items=items,
        errors=errors,
        arrays={"gold": gold_shown, "predicted": pred},
        counts={"pairs": len(pairs)},
        wall_time_s=time.perf_counter() - start,
    )


def evaluate_pairs(
    model: Any = None,
    test: str | os.PathLike | None = None,
    dev: str | os.PathLike | None = None,
    *,
    threshold: float | str | None = None,
    columns: str | Sequence[str] | None = None,
    dev_columns: str | Sequence[str] | None = None,
    score_range: str | tuple[float, float] | None = None,
    metric: str | None = None,
    objective: Literal["accuracy", "f1"] = "accuracy",
    same_cutoff: float = 0.7,
    max_rows: int | None = None,
    model_name: str | None = None,
) -> TaskResult:
    """Paraphrase classification: the threshold is chosen on ``dev`` and applied unchanged to ``test``.

    Args:
        model: A :class:`~sentsim.model.SiameseModel`, a model folder or hub id, or None for the bundled model.
        test: Test pairs with 0/1 labels (or graded scores, binarised at ``same_cutoff``); None for MSRP test, with
            MSRP dev as ``dev`` unless another is given.
        dev: Dev pairs that choose the threshold. Needed unless ``threshold`` is given.
        threshold: A number, or ``"model"`` for the model's own threshold, instead of choosing one on ``dev``.
        columns: Columns of the test file (and of dev, unless ``dev_columns``).
        dev_columns: Columns of the dev file.
        score_range: The range of graded labels, e.g. ``(0, 5)``.
        metric: The similarity metric; the model's by default.
        objective: What the dev threshold maximises: ``"accuracy"`` or ``"f1"``.
        same_cutoff: A graded score (0..1) at least this counts as same meaning.
        max_rows: Evaluate only the first test rows.
        model_name: The name to record.

    Returns:
        ``accuracy``, ``f1``, ``precision``, ``recall`` at the threshold, ``average_precision`` and ``roc_auc``
        (x100), ``threshold``, and ``dev_accuracy``/``dev_f1`` when chosen on dev; errors are the misclassified
        pairs, furthest from the threshold first.
    """
    start = time.perf_counter()
    if test is None:  # MSRP test, and its dev unless a threshold is given, beside the project
        test = DEFAULT_DATA["pairs"]["test"]
        dev = DEFAULT_DATA["pairs"]["dev"] if dev is None and threshold is None else dev
    if dev is not None and threshold is not None:
        raise ConfigError("give a dev file or a threshold, not both")
    if dev is None and threshold is None:
        raise ConfigError(
            f"{os.fspath(test)}: the pairs task needs a dev file (dev=..., --dev) to choose the threshold on, or a "
            "threshold; the test file is never used for that"
        )
    if dev is not None:
        _same_file(test, dev, "test")
    with ExitStack() as stack:
        data = _read_pair_file(test, "test", stack, columns, score_range, max_rows)
        dev_data = None
        if dev is not None:
            dev_data = _read_pair_file(dev, "validation", stack, dev_columns or columns, score_range)
    for d in (data, dev_data):
        if d is not None and d.kind == "none":
            raise DataError(f"{d.source}: no label column; the pairs task needs sentence1,sentence2,label")
    model, name = _model(model, model_name)
    metric = check_metric(metric or model.metric)
    labels = same_labels(data, same_cutoff)
    scores = dev_scores(model, data)[metric].astype(np.float64)
    arrays: dict[str, np.ndarray] = {"scores": scores, "labels": labels}
    dev_figures: dict[str, float] = {}
    if dev_data is None:
        value, source = _threshold(threshold, model, metric)
    else:
        dev_labels = same_labels(dev_data, same_cutoff)
        if dev_labels.min() == dev_labels.max():
            raise DataError(f"{dev_data.source}: every dev label is {dev_labels[0]}; a threshold needs both classes")
        dev_s = dev_scores(model, dev_data)[metric].astype(np.float64)
        value = best_threshold(dev_s, dev_labels, objective)
        source = f"best {objective} on {dev_data.source} ({len(dev_data)} pairs)"
        at_dev = binary_metrics(dev_s, dev_labels, value)
        dev_figures = {"dev_accuracy": at_dev["accuracy"], "dev_f1": at_dev["f1"]}
        arrays.update(dev_scores=dev_s, dev_labels=dev_labels)
    metrics = {**binary_metrics(scores, labels, value), **dev_figures}
    predicted = scores >= value
    items = [
        {"row": r, "sentence1": a, "sentence2": b, "label": int(y), "score": float(s), "predicted": int(p),
         "correct": bool(p == y), "margin": float(s - value)}
        for r, a, b, y, s, p in zip(data.rows, data.sentence1, data.sentence2, labels, scores, predicted)
    ]  # fmt: skip
    wrong = np.flatnonzero(predicted != labels.astype(bool))
    errors = [items[i] for i in wrong[np.argsort(-np.abs(scores[wrong] - value), kind="stable")]]
    data_names = {"test": data.source, **({"dev": dev_data.source} if dev_data is not None else {})}
    return TaskResult(
        task="pairs",
        model=name,
        metric=metric,
        metrics=metrics,
        primary=objective,
        data=data_names,
        threshold=float(value),
        threshold_source=source,
        items=items,
        errors=errors,
        arrays=arrays,
        counts={"test_pairs": len(data), "test_positive": int(labels.sum()), "dev_pairs": len(dev_data or [])},
        wall_time_s=time.perf_counter() - start,
    )


def _retrieve(
    model, queries: QAData, faq_emb, codes, code_of: dict[str, int], k: int, metric: str, progress, answer_k: int = 1
):
    """Top-k distinct answers of each query: entry indices (n, k), scores (n, k), 1-based rank of the expected
    answer (0: not in the top k)."""
    emb = model.encode(queries.questions, batch_size=64, show_progress_bar=progress)
    idx, scores = rank(emb, faq_emb, k, metric, groups=codes, group_k=answer_k)
    answer_codes = codes[idx]  # (n, k)
    expected = np.array([code_of.get(a, -1) if a else -2 for a in queries.answers])  # -1 unknown, -2 out of scope
    hits = answer_codes == expected[:, None]  # (n, k)
    hit_rank = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)  # 1-based rank of the expected answer, 0: none
    return idx, scores, hit_rank


def evaluate_faq(
    model: Any = None,
    faq: str | os.PathLike | None = None,
    queries: str | os.PathLike | None = None,
    dev: str | os.PathLike | None = None,
    *,
    threshold: float | str | None = None,
    faq_columns: str | Sequence[str] | None = None,
    columns: str | Sequence[str] | None = None,
    dev_columns: str | Sequence[str] | None = None,
    metric: str | None = None,
    ks: str | Sequence[int] = (1, 5, 10),
    answer_k: int = 1,
    max_rows: int | None = None,
    model_name: str | None = None,
    show_progress: bool | None = None,
) -> TaskResult:
    """FAQ retrieval: each query's answer is the answer of its nearest FAQ question (or, with ``answer_k``, the
    answer whose best few questions match it best).

    FAQ questions are embedded once; one similarity matrix per chunk of queries is ranked with ``argpartition``.
    Several FAQ rows may share an answer (BANKING77: each train question is an entry whose answer is its intent);
    rankings count each answer once, at its best question (``answer_k=1``) or at the mean score of its
    ``answer_k`` best questions. A query with an empty expected answer is out of scope:
    with a threshold, the model answers only when the top score reaches it.

    Args:
        model: A :class:`~sentsim.model.SiameseModel`, a model folder or hub id, or None for the bundled model.
        faq: (question, answer) rows; None for BANKING77 train under :func:`data_dir` (with its test as queries).
        queries: (query, expected answer) rows; an empty answer means out of scope.
        dev: Dev queries, in and out of scope, that choose the threshold (best accuracy, abstaining counted right
            for out-of-scope queries). Needed when the test queries include out-of-scope ones, unless
            ``threshold`` is given.
        threshold: A number, or ``"model"``, instead of choosing one on ``dev``.
        faq_columns: Question and answer columns of the FAQ file, e.g. ``"text,category"``.
        columns: Query and expected-answer columns of the query files (dev too, unless ``dev_columns``).
        dev_columns: Columns of the dev queries.
        metric: The similarity metric; the model's by default.
        ks: The cut-offs of recall@k; MRR is cut at the largest. Each must be at most the FAQ's distinct answers.
        answer_k: Score each answer by the mean of its ``answer_k`` best questions' scores (an answer with fewer
            questions, by all of them); 1, the default, scores it by its best question. The threshold then applies
            to that mean. Worth trying where answers have many paraphrases (BANKING77: about 130 per intent).
        max_rows: Evaluate only the first test queries.
        model_name: The name to record.
        show_progress: Progress bars while encoding; by default for more than 1,000 texts.

    Returns:
        Over in-scope queries, x100: ``top1_accuracy``, ``mrr@K``, ``recall@k``; with a threshold also
        ``in_scope_accuracy`` (answered and right), ``out_of_scope_recall`` (abstained) and ``accuracy`` (both).
        Errors are the misanswered queries with what was returned, highest score first.
    """
    start = time.perf_counter()
    ks = parse_ks(ks)
    check_positive_int(answer_k, "answer_k")
    if faq is None and queries is None:  # BANKING77, beside the project
        faq, queries = DEFAULT_DATA["faq"]["faq"], DEFAULT_DATA["faq"]["queries"]
    if faq is None or queries is None:
        raise ConfigError("the faq task needs both an FAQ file (faq=..., --faq) and queries (queries=..., --queries)")
    if dev is not None:
        _same_file(queries, dev, "queries")
    if threshold is not None and dev is not None:
        raise ConfigError("give a dev file or a threshold, not both")
    with ExitStack() as stack:
        entries = _read_qa_file(faq, "train", stack, faq_columns, False)
        test = _read_qa_file(queries, "test", stack, columns, True, max_rows)
        dev_q = None if dev is None else _read_qa_file(dev, "validation", stack, dev_columns or columns, True)
    answers, codes = np.unique(np.array(entries.answers, dtype=object), return_inverse=True)
    code_of = {str(a): i for i, a in enumerate(answers)}
    if ks[-1] > len(answers):
        raise ConfigError(f"{entries.source}: k={ks[-1]} is more than the FAQ's {len(answers)} distinct answers")
    for q in (test, dev_q):
        if q is not None and not q.in_scope.any():
            raise DataError(f"{q.source}: no in-scope queries (every expected answer is empty)")
    if dev_q is not None and dev_q.in_scope.all():
        raise DataError(f"{dev_q.source}: no out-of-scope queries (empty expected answer) to choose a threshold on")
    oos = ~test.in_scope
    if oos.any() and dev_q is None and threshold is None:
        raise ConfigError(
            f"{test.source}: {int(oos.sum())} out-of-scope queries (empty expected answer) need a threshold: give dev "
            "queries with out-of-scope ones (dev=..., --dev) or a threshold"
        )
    unknown = sum(1 for a in test.answers if a and a not in code_of)
    if unknown:
        logger.warning("%s: %d expected answers are not in the FAQ %s", test.source, unknown, entries.source)
    model, name = _model(model, model_name)
    metric = check_metric(metric or model.metric)
    faq_emb = model.encode(entries.questions, batch_size=64, show_progress_bar=show_progress)
    idx, scores, hit_rank = _retrieve(model, test, faq_emb, codes, code_of, ks[-1], metric, show_progress, answer_k)
    inside = test.in_scope
    hr = hit_rank[inside]
    metrics = {"top1_accuracy": 100.0 * float(np.mean(hr == 1))}
    metrics[f"mrr@{ks[-1]}"] = 100.0 * float(np.mean(np.where(hr > 0, 1.0 / np.maximum(hr, 1), 0.0)))
    metrics.update({f"recall@{k}": 100.0 * float(np.mean((hr > 0) & (hr <= k))) for k in ks})
    top = scores[:, 0]
    value, source = _threshold(threshold, model, metric)
    counts = {"faq_entries": len(entries), "faq_answers": len(answers), "queries": len(test),
              "in_scope": int(inside.sum()), "out_of_scope": int(oos.sum()), "unknown_expected": unknown,
              "answer_k": answer_k}  # fmt: skip
    if dev_q is not None:
        _, dev_scores_, dev_rank = _retrieve(model, dev_q, faq_emb, codes, code_of, 1, metric, show_progress, answer_k)
        dev_oos = ~dev_q.in_scope
        right = dev_rank == 1
        keep = right | dev_oos  # an in-scope query answered wrong is wrong whatever the threshold
        value = best_threshold(dev_scores_[keep, 0], right[keep].astype(np.int64))
        source = f"best accuracy on {dev_q.source} ({len(dev_q)} queries, {int(dev_oos.sum())} out of scope)"
        counts["dev_queries"] = len(dev_q)
    answered = top >= value if value is not None else np.ones(len(test), dtype=bool)
    correct = np.where(inside, (hit_rank == 1) & answered, ~answered)
    if value is not None:
        metrics["in_scope_accuracy"] = 100.0 * float(np.mean(correct[inside]))
        if oos.any():
            metrics["out_of_scope_recall"] = 100.0 * float(np.mean(correct[oos]))
        metrics["accuracy"] = 100.0 * float(np.mean(correct))
        metrics["threshold"] = float(value)
    items = [
        {"row": r, "query": q, "expected": e, "answer": str(answers[codes[i[0]]]), "score": float(s[0]),
         "answered": bool(a), "correct": bool(c), "expected_rank": int(h) or None, "matched_question":
         entries.questions[i[0]], "top_answers": [str(answers[codes[j]]) for j in i]}
        for r, q, e, i, s, a, c, h in zip(test.rows, test.questions, test.answers, idx, scores, answered, correct,
                                          hit_rank)
    ]  # fmt: skip
    wrong = np.flatnonzero(~correct)
    errors = [items[i] for i in wrong[np.argsort(-top[wrong], kind="stable")]]
    return TaskResult(
        task="faq",
        model=name,
        metric=metric,
        metrics=metrics,
        primary="top1_accuracy",
        data={"faq": entries.source, "queries": test.source, **({"dev": dev_q.source} if dev_q is not None else {})},
        threshold=None if value is None else float(value),
        threshold_source=source,
        items=items,
        errors=errors,
        arrays={"top_score": top, "in_scope": inside, "right": hit_rank == 1},
        counts=counts,
        wall_time_s=time.perf_counter() - start,
    )


def evaluate(task: Task, model: Any = None, **kwargs: Any) -> TaskResult:
    """Run one task by name: ``evaluate("sts", model, data=...)`` is ``evaluate_sts(model, data=...)``.

    Example:
        >>> evaluate("ner")
        Traceback (most recent call last):
        ...
        sentsim.errors.ConfigError: unknown task 'ner'; choose one of: sts, pairs, faq
    """
    runners = {"sts": evaluate_sts, "pairs": evaluate_pairs, "faq": evaluate_faq}
    if task not in runners:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    return runners[task](model, **kwargs)
