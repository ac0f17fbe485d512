"""Dev/test metrics for similarity scores, and decision thresholds for binary (paraphrase) tasks.

Two kinds of gold data are scored here:

- *graded* gold (STS-B style, a 0..1 or 0..5 score per pair): :func:`score_metrics` reports the Spearman
  and Pearson correlations of the predicted similarities with the gold scores, times 100 as is usual in
  papers. Spearman is the headline metric: it only depends on the ranking, so it is the same whatever
  monotone mapping a similarity metric uses (see :mod:`sentsim.similarity`).
- *binary* gold (MSRP / QQP style, 1 = same meaning): :func:`binary_metrics` reports accuracy, F1,
  precision and recall at a decision threshold, plus the threshold-free average precision and ROC AUC.
  :func:`best_threshold` picks the threshold on dev data; apply it unchanged to test data.
  :func:`binarize` turns graded gold into binary labels.

All functions take array-likes, are pure (no model, no I/O) and return plain Python floats. Bad input
(different lengths, no examples, labels other than 0/1, NaN or infinite values) raises
:class:`sentsim.errors.ConfigError`.

Example:
    >>> scores = [0.9, 0.8, 0.3, 0.1]
    >>> labels = [1, 1, 0, 0]
    >>> score_metrics(scores, [5.0, 4.0, 2.0, 0.5])["spearman"]
    100.0
    >>> t = best_threshold(scores, labels)
    >>> t
    0.55
    >>> binary_metrics(scores, labels, t)["accuracy"]
    100.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from sentsim.errors import ConfigError

__all__ = ["spearman", "pearson", "score_metrics", "binary_metrics", "best_threshold", "binarize"]

Objective = Literal["accuracy", "f1"]
OBJECTIVES: tuple[str, ...] = ("accuracy", "f1")


# --------------------------------------------------------------------------------------------- checks
def _as_values(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a non-empty 1-D float64 array of finite values, or ConfigError."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a sequence of numbers ({exc}).") from None
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if arr.size == 0:
        raise ConfigError(f"{name} is empty; at least one example is needed.")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} holds NaN or infinite values at index {int(np.argmin(np.isfinite(arr)))}.")
    return arr


def _as_labels(x: ArrayLike, name: str = "labels") -> np.ndarray:
    """``x`` as a non-empty 1-D int64 array of 0/1 labels, or ConfigError."""
    arr = _as_values(x, name)
    bad = (arr != 0) & (arr != 1)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ConfigError(f"{name} must be 0 or 1, got {arr[i]:g} at index {i}.")
    return arr.astype(np.int64)


def _check_same_length(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[0] != b.shape[0]:
        msg = f"{names[0]} and {names[1]} must have the same length, got {a.shape[0]} and {b.shape[0]}."
        raise ConfigError(msg)


# ------------------------------------------------------------------------------------- correlations
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    # A constant input has no defined correlation; report 0.0 (no signal) rather than NaN and a warning.
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    xc = x - x.mean()
    yc = y - y.mean()
    # Scaling by the max first keeps the sums of squares away from overflow/underflow.
    xc /= np.abs(xc).max()
    yc /= np.abs(yc).max()
    r = float(np.dot(xc, yc) / np.sqrt(np.dot(xc, xc) * np.dot(yc, yc)))
    return min(1.0, max(-1.0, r))


def pearson(pred: ArrayLike, gold: ArrayLike) -> float:
    """Pearson correlation of predicted and gold scores, in ``[-1, 1]``.

    Args:
        pred: Predicted similarities, one per pair.
        gold: Gold scores, same length.

    Returns:
        The correlation (not times 100); ``0.0`` when either input is constant (including one example).

    Raises:
        ConfigError: Empty inputs, different lengths, or NaN/infinite values.

    Example:
        >>> pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
        1.0
        >>> pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
        0.0
    """
    x = _as_values(pred, "pred")
    y = _as_values(gold, "gold")
    _check_same_length(x, y, ("pred", "gold"))
    return _pearson(x, y)


def spearman(pred: ArrayLike, gold: ArrayLike) -> float:
    """Spearman rank correlation of predicted and gold scores, in ``[-1, 1]``.

    Ties get their average rank, as in :func:`scipy.stats.spearmanr`.

    Args:
        pred: Predicted similarities, one per pair.
        gold: Gold scores, same length.

    Returns:
        The correlation (not times 100); ``0.0`` when either input is constant (including one example).

    Raises:
        ConfigError: Empty inputs, different lengths, or NaN/infinite values.

    Example:
        >>> spearman([0.1, 0.5, 0.2], [1.0, 30.0, 2.0])
        1.0
        >>> spearman([0.3, 0.3], [1.0, 2.0])
        0.0
    """
    x = _as_values(pred, "pred")
    y = _as_values(gold, "gold")
    _check_same_length(x, y, ("pred", "gold"))
    return _pearson(rankdata(x), rankdata(y))


def score_metrics(pred: ArrayLike, gold: ArrayLike) -> dict[str, float]:
    """Correlations of predicted similarities with graded gold scores, times 100.

    Args:
        pred: Predicted similarities, one per pair.
        gold: Gold scores, same length.

    Returns:
        ``{"spearman": ..., "pearson": ...}``, each in ``[-100, 100]``.

    Raises:
        ConfigError: Empty inputs, different lengths, or NaN/infinite values.

    Example:
        >>> m = score_metrics([0.2, 0.4, 0.9], [1.0, 2.0, 3.0])
        >>> round(m["spearman"], 2), round(m["pearson"], 2)
        (100.0, 97.07)
    """
    return {"spearman": 100.0 * spearman(pred, gold), "pearson": 100.0 * pearson(pred, gold)}


# ------------------------------------------------------------------------------------ binary metrics
def _average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision as scikit-learn defines it: sum over thresholds of (R_k - R_{k-1}) * P_k."""
    n_pos = int(labels.sum())
    if n_pos == 0:
        return 0.0  # nothing to retrieve; scikit-learn also gives 0 here
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    tp = np.cumsum(labels[order])
    # Only the last position of each run of tied scores is a threshold.
    last = np.r_[s[1:] != s[:-1], True]
    tp = tp[last]
    predicted = np.flatnonzero(last) + 1
    precision = tp / predicted
    recall_gain = np.diff(np.r_[0, tp]) / n_pos
    return float(np.dot(recall_gain, precision))


def _roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic (ties count 1/2); 0.5 when only one class is present."""
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(scores)
    u = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def binary_metrics(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float]:
    """Classification metrics for similarity scores against 0/1 labels.

    A pair is predicted positive (same meaning) when ``score >= threshold``.

    Args:
        scores: Predicted similarities, one per pair.
        labels: Gold labels, 0 or 1, same length.
        threshold: Decision threshold, e.g. from :func:`best_threshold` on dev data.

    Returns:
        A dict with ``accuracy``, ``f1``, ``precision`` and ``recall`` at the threshold, times 100 (a
        ratio with a zero denominator counts as 0); ``average_precision`` and ``roc_auc``, which ignore
        the threshold, times 100 (``average_precision`` is 0 with no positive label, ``roc_auc`` is 50 when
        only one class is present); and ``threshold`` itself.

    Raises:
        ConfigError: Empty inputs, different lengths, labels other than 0/1, NaN/infinite scores, or a
            threshold that is not a number.

    Example:
        >>> m = binary_metrics([0.9, 0.6, 0.4, 0.2], [1, 0, 1, 0], threshold=0.5)
        >>> m["accuracy"], m["precision"], m["roc_auc"]
        (50.0, 50.0, 75.0)
    """
    s = _as_values(scores, "scores")
    y = _as_labels(labels)
    _check_same_length(s, y, ("scores", "labels"))
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.number)):
        raise ConfigError(f"threshold must be a number, got {threshold!r}.")
    if np.isnan(threshold):
        raise ConfigError("threshold must be a number, got NaN.")

    predicted = s >= threshold
    positive = y == 1
    tp = int(np.count_nonzero(predicted & positive))
    fp = int(np.count_nonzero(predicted & ~positive))
    fn = int(np.count_nonzero(~predicted & positive))
    tn = y.size - tp - fp - fn
    return {
        "accuracy": 100.0 * (tp + tn) / y.size,
        "f1": 100.0 * 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "precision": 100.0 * tp / (tp + fp) if tp else 0.0,
        "recall": 100.0 * tp / (tp + fn) if tp else 0.0,
        "average_precision": 100.0 * _average_precision(s, y),
        "roc_auc": 100.0 * _roc_auc(s, y),
        "threshold": float(threshold),
    }


def best_threshold(scores: ArrayLike, labels: ArrayLike, objective: Objective = "accuracy") -> float:
    """The decision threshold that maximises accuracy or F1 on these (dev) scores.

    The candidates are every threshold that changes a prediction: the midpoints between consecutive
    distinct sorted scores, plus one below the minimum (everything positive) and one above the maximum
    (everything negative), each half the score range (or 0.5 when all scores are equal) beyond it. One
    sort and cumulative sums of the labels give the objective at every candidate, so the cost is
    O(n log n). Several candidates often score the same; among the best, the longest run of consecutive
    candidates is taken (the first such run if several are equally long) and its middle candidate (the
    lower of the two middle ones for an even length) is returned: the threshold furthest from a change in
    the objective, so the one least sensitive to small shifts in test scores.

    Args:
        scores: Predicted similarities on dev data, one per pair.
        labels: Gold labels, 0 or 1, same length.
        objective: ``"accuracy"`` or ``"f1"``.

    Returns:
        The threshold, to use as ``score >= threshold`` with :func:`binary_metrics`. It works with one
        example and with a single class: for all-positive labels and accuracy, a threshold below every
        score is returned, for all-negative labels one above every score.

    Raises:
        ConfigError: Empty inputs, different lengths, labels other than 0/1, NaN/infinite scores, or an
            unknown objective.

    Example:
        >>> best_threshold([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1])
        0.375
        >>> best_threshold([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1], objective="f1")
        0.375
        >>> best_threshold([0.5], [1])  # below the only score: predict positive
        0.0
    """
    if objective not in OBJECTIVES:
        msg = f"Unknown threshold objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}."
        raise ConfigError(msg)
    s = _as_values(scores, "scores")
    y = _as_labels(labels)
    _check_same_length(s, y, ("scores", "labels"))

    order = np.argsort(s, kind="stable")
    s = s[order]
    y = y[order]
    # Distinct scores u[0] < ... < u[k-1]; group_end[j] = number of scores <= u[j].
    last = np.r_[s[1:] != s[:-1], True]
    u = s[last]
    group_end = np.flatnonzero(last) + 1
    # Candidate j (j = 0..k) predicts negative exactly the scores <= u[j-1], i.e. the first cut[j] scores.
    cut = np.r_[0, group_end]
    pos_below = np.r_[0, np.cumsum(y)[group_end - 1]]  # positives predicted negative (false negatives)
    n_pos = int(y.sum())
    fn = pos_below
    tn = cut - pos_below
    tp = n_pos - fn
    fp = (y.size - n_pos) - tn
    if objective == "accuracy":
        value = tp + tn  # integer counts: ties compare exactly
    else:
        denom = 2 * tp + fp + fn
        value = np.divide(2.0 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)

    # Longest run of consecutive best candidates, then its middle.
    best = np.flatnonzero(value == value.max())
    breaks = np.flatnonzero(np.diff(best) != 1)
    starts = np.r_[best[0], best[breaks + 1]]
    ends = np.r_[best[breaks], best[-1]]
    i = int(np.argmax(ends - starts))
    j = int(starts[i] + (ends[i] - starts[i]) // 2)

    spread = float(u[-1] - u[0])
    margin = spread / 2.0 if spread > 0 else 0.5
    if j == 0:
        t = u[0] - margin
        return float(t if t < u[0] else np.nextafter(u[0], -np.inf))
    if j == u.size:
        t = u[-1] + margin
        return float(t if t > u[-1] else np.nextafter(u[-1], np.inf))
    lo, hi = u[j - 1], u[j]
    t = lo / 2.0 + hi / 2.0
    # Rounding can put the midpoint of two adjacent floats on `lo`; `hi` separates them just as well.
    return float(t if lo < t <= hi else hi)


def binarize(gold_scores: ArrayLike, cutoff: float = 0.7) -> np.ndarray:
    """Turn graded gold similarity in ``[0, 1]`` into 0/1 "same meaning" labels.

    A pair counts as same meaning when ``gold >= cutoff``. The default 0.7 is 3.5 on STS-B's 0..5 scale
    (divide STS-B scores by 5 first). In the STS annotation guidelines 5 means "completely equivalent", 4
    "mostly equivalent, some unimportant details differ" and 3 "roughly equivalent, but some important
    information differs or is missing"; the cutoff halfway between 3 and 4 keeps only pairs where no
    important information differs, which is what a paraphrase label (MSRP, QQP) asks for, while averaged
    ratings such as 3.6 (most annotators said "mostly equivalent") still count.

    Args:
        gold_scores: Gold similarity scaled to ``[0, 1]``.
        cutoff: The lowest score that counts as same meaning, in ``[0, 1]``.

    Returns:
        An ``int64`` array of 0/1 labels, same length.

    Raises:
        ConfigError: Empty input, NaN/infinite values, scores or cutoff outside ``[0, 1]`` (for example
            STS-B scores not yet divided by 5).

    Example:
        >>> binarize([0.0, 0.69, 0.7, 1.0])
        array([0, 0, 1, 1])
        >>> binarize([0.5, 0.8], cutoff=0.5)
        array([1, 1])
    """
    g = _as_values(gold_scores, "gold_scores")
    if isinstance(cutoff, (bool, np.bool_)) or not isinstance(cutoff, (int, float, np.number)):
        raise ConfigError(f"cutoff must be a number in [0, 1], got {cutoff!r}.")
    if not 0.0 <= cutoff <= 1.0:
        raise ConfigError(f"cutoff must be in [0, 1], got {cutoff}.")
    if g.min() < 0.0 or g.max() > 1.0:
        raise ConfigError(
            f"gold_scores must be in [0, 1] (divide STS-B's 0..5 scores by 5), got values from "
            f"{g.min():g} to {g.max():g}."
        )
    return (g >= cutoff).astype(np.int64)
