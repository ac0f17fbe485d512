"""Tests for sentsim.evaluation against scipy.stats, scikit-learn and brute-force searches."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from sentsim import evaluation
from sentsim.errors import ConfigError
from sentsim.evaluation import (
    best_threshold,
    binarize,
    binary_metrics,
    pearson,
    score_metrics,
    spearman,
)

SEEDS = list(range(6))


def _binary_data(seed: int, n: int = 60, decimals: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Scores that predict the labels imperfectly, rounded so that many scores tie."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    scores = np.round(0.35 * labels + rng.uniform(0.0, 0.65, size=n), decimals)
    return scores, labels


def _plateau_data(seed: int, groups: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """Tied groups with one positive and one negative each, between single examples: passing such a group
    leaves accuracy unchanged, so the best candidates form runs of different lengths."""
    rng = np.random.default_rng(seed)
    scores: list[float] = []
    labels: list[int] = []
    for g in range(groups):
        score = round(g / groups, 3)
        if rng.random() < 0.5:
            scores += [score, score]
            labels += [0, 1]
        else:
            scores.append(score)
            labels.append(int(rng.random() < g / groups))
    order = rng.permutation(len(scores))
    return np.array(scores)[order], np.array(labels)[order]


def _objective(scores: np.ndarray, labels: np.ndarray, t: float, objective: str) -> float:
    pred = scores >= t
    tp = int(np.sum(pred & (labels == 1)))
    fp = int(np.sum(pred & (labels == 0)))
    fn = int(np.sum(~pred & (labels == 1)))
    if objective == "accuracy":
        return float(np.mean(pred == (labels == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _brute_force(scores: np.ndarray, labels: np.ndarray, objective: str) -> tuple[float, np.ndarray]:
    """O(n^2): best objective over every threshold that splits the data differently, and the predictions
    of the middle candidate of the first longest run of best candidates (the documented tie rule)."""
    distinct = sorted(set(scores.tolist()))
    # Thresholds at each distinct score, plus one above the maximum, give every possible split in order.
    candidates = [distinct[0] - 1.0] + distinct[1:] + [distinct[-1] + 1.0]
    values = [_objective(scores, labels, t, objective) for t in candidates]
    best = max(values)
    runs: list[list[int]] = []
    for j, v in enumerate(values):
        if v == best:
            if runs and runs[-1][-1] == j - 1:
                runs[-1].append(j)
            else:
                runs.append([j])
    longest = max(runs, key=len)  # the first of the longest
    chosen = candidates[longest[(len(longest) - 1) // 2]]
    return best, scores >= chosen


# ------------------------------------------------------------------------------------- correlations
@pytest.mark.parametrize("seed", SEEDS)
def test_correlations_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = rng.uniform(0, 5, size=50)
    pred = gold + rng.normal(scale=2.0, size=50)
    assert spearman(pred, gold) == pytest.approx(stats.spearmanr(pred, gold).statistic, abs=1e-12)
    assert pearson(pred, gold) == pytest.approx(stats.pearsonr(pred, gold).statistic, abs=1e-12)
    # with ties (average ranks) and plain lists
    pred_t, gold_t = np.round(pred).tolist(), np.round(gold).tolist()
    assert spearman(pred_t, gold_t) == pytest.approx(stats.spearmanr(pred_t, gold_t).statistic, abs=1e-12)
    assert pearson(pred_t, gold_t) == pytest.approx(stats.pearsonr(pred_t, gold_t).statistic, abs=1e-12)


def test_score_metrics_are_times_100() -> None:
    rng = np.random.default_rng(10)
    gold = rng.uniform(size=30)
    pred = gold + rng.normal(scale=0.3, size=30)
    got = score_metrics(pred, gold)
    assert set(got) == {"spearman", "pearson"}
    assert got["spearman"] == pytest.approx(100 * stats.spearmanr(pred, gold).statistic)
    assert got["pearson"] == pytest.approx(100 * stats.pearsonr(pred, gold).statistic)
    assert all(isinstance(v, float) for v in got.values())
    assert score_metrics([1, 2, 3], [3, 2, 1]) == {"spearman": -100.0, "pearson": -100.0}


def test_correlation_with_shuffled_gold_is_worse() -> None:
    rng = np.random.default_rng(11)
    gold = rng.uniform(size=200)
    pred = gold + rng.normal(scale=0.2, size=200)
    shuffled = rng.permutation(gold)
    assert spearman(pred, gold) > spearman(pred, shuffled) + 0.3
    assert pearson(pred, gold) > pearson(pred, shuffled) + 0.3


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ([0.5, 0.5, 0.5], [1.0, 2.0, 3.0]),
        ([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]),
        ([0.1], [0.9]),
        ([0.1] * 7, [0.1] * 7),
    ],
)
def test_constant_input_gives_zero_without_warnings(pred: list[float], gold: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert spearman(pred, gold) == 0.0
        assert pearson(pred, gold) == 0.0
        assert score_metrics(pred, gold) == {"spearman": 0.0, "pearson": 0.0}


# ----------------------------------------------------------------------------------- binary metrics
@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_match_sklearn(seed: int) -> None:
    scores, labels = _binary_data(seed)
    rng = np.random.default_rng(seed)
    # a random threshold, one exactly on a (tied) score, and one above every score (no positive predictions)
    for t in (float(rng.uniform(0.2, 0.8)), float(scores[0]), float(scores.max()) + 0.1):
        pred = (scores >= t).astype(int)
        got = binary_metrics(scores, labels, t)
        want = {
            "accuracy": 100 * accuracy_score(labels, pred),
            "f1": 100 * f1_score(labels, pred, zero_division=0),
            "precision": 100 * precision_score(labels, pred, zero_division=0),
            "recall": 100 * recall_score(labels, pred, zero_division=0),
            "average_precision": 100 * average_precision_score(labels, scores),
            "roc_auc": 100 * roc_auc_score(labels, scores),
            "threshold": t,
        }
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-9), key
            assert isinstance(got[key], float), key


@pytest.mark.parametrize("labels", [[1, 1, 1, 1], [0, 0, 0, 0]])
def test_binary_metrics_single_class_is_nan_free(labels: list[int]) -> None:
    scores = [0.1, 0.4, 0.4, 0.9]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = binary_metrics(scores, labels, 0.3)
    assert not any(np.isnan(v) for v in got.values())
    assert got["roc_auc"] == 50.0
    assert got["average_precision"] == (100.0 if labels[0] == 1 else 0.0)
    assert got["accuracy"] == (75.0 if labels[0] == 1 else 25.0)
    if labels[0] == 0:
        assert got["f1"] == got["precision"] == got["recall"] == 0.0


def test_binary_metrics_accepts_bool_and_float_labels() -> None:
    scores = [0.9, 0.2, 0.7]
    base = binary_metrics(scores, [1, 0, 0], 0.5)
    assert binary_metrics(scores, [True, False, False], 0.5) == base
    assert binary_metrics(np.array(scores), np.array([1.0, 0.0, 0.0]), np.float32(0.5)) == base


def test_binary_metrics_with_shuffled_labels_is_worse() -> None:
    scores, labels = _binary_data(12, n=300, decimals=3)
    shuffled = np.random.default_rng(12).permutation(labels)
    true_m = binary_metrics(scores, labels, 0.5)
    shuf_m = binary_metrics(scores, shuffled, 0.5)
    for key in ("accuracy", "f1", "average_precision", "roc_auc"):
        assert true_m[key] > shuf_m[key] + 10, key


# ----------------------------------------------------------------------------------- best threshold
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("objective", ["accuracy", "f1"])
@pytest.mark.parametrize("data", ["ties", "some-ties", "distinct", "plateaus"])
def test_best_threshold_matches_brute_force(seed: int, objective: str, data: str) -> None:
    if data == "plateaus":
        scores, labels = _plateau_data(seed)
    else:
        decimals = {"ties": 1, "some-ties": 2, "distinct": 6}[data]
        scores, labels = _binary_data(seed, n=40 + seed * 7, decimals=decimals)
    t = best_threshold(scores, labels, objective)  # type: ignore[arg-type]
    best, chosen_pred = _brute_force(scores, labels, objective)
    got = _objective(scores, labels, t, objective)
    assert got >= best
    assert got == pytest.approx(best)
    # the tie rule: same predictions as the middle of the first longest run of best candidates
    np.testing.assert_array_equal(scores >= t, chosen_pred)
    # the metric reported at that threshold is the optimum found
    metric = binary_metrics(scores, labels, t)[objective]
    assert metric == pytest.approx(100 * best)


def test_best_threshold_returns_a_candidate() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    labels = np.array([0, 1, 0, 1, 1])
    assert best_threshold(scores, labels) == pytest.approx(0.375)  # midpoint of 0.35 and 0.4


def test_best_threshold_breaks_ties_toward_the_middle_of_the_run() -> None:
    # Groups of tied scores with one positive and one negative each leave accuracy unchanged, so
    # the candidates between 0.2|0.4, 0.4|0.6 and 0.6|0.8 all reach the best accuracy (6/8).
    scores = [0.1, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.9]
    labels = [0, 0, 1, 0, 1, 0, 1, 1]
    assert best_threshold(scores, labels, "accuracy") == pytest.approx(0.5)
    # a different order of the same data gives the same threshold
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    assert best_threshold([scores[i] for i in order], [labels[i] for i in order]) == pytest.approx(0.5)


@pytest.mark.parametrize("objective", ["accuracy", "f1"])
def test_best_threshold_with_shuffled_labels_is_worse(objective: str) -> None:
    scores, labels = _binary_data(13, n=400, decimals=3)
    shuffled = np.random.default_rng(13).permutation(labels)
    t_true = best_threshold(scores, labels, objective)  # type: ignore[arg-type]
    t_shuf = best_threshold(scores, shuffled, objective)  # type: ignore[arg-type]
    true_value = binary_metrics(scores, labels, t_true)[objective]
    shuf_value = binary_metrics(scores, shuffled, t_shuf)[objective]
    assert true_value > shuf_value + 5


def test_best_threshold_single_class_one_example_constant_scores() -> None:
    scores = [0.2, 0.5, 0.9]
    t = best_threshold(scores, [1, 1, 1])
    assert t < 0.2 and binary_metrics(scores, [1, 1, 1], t)["accuracy"] == 100.0
    t = best_threshold(scores, [0, 0, 0])
    assert t > 0.9 and binary_metrics(scores, [0, 0, 0], t)["accuracy"] == 100.0
    t = best_threshold(scores, [1, 1, 1], "f1")
    assert binary_metrics(scores, [1, 1, 1], t)["f1"] == 100.0
    assert np.isfinite(best_threshold(scores, [0, 0, 0], "f1"))  # f1 is 0 everywhere; any finite answer

    assert best_threshold([0.5], [1]) < 0.5
    assert best_threshold([0.5], [0]) > 0.5
    assert best_threshold([0.5], [1], "f1") < 0.5

    assert best_threshold([0.5] * 5, [1, 1, 1, 0, 0]) < 0.5  # majority positive
    assert best_threshold([0.5] * 5, [1, 0, 0, 0, 0]) > 0.5  # majority negative
    assert best_threshold([0.5] * 5, [1, 0, 0, 0, 0], "f1") < 0.5  # any positive beats f1 = 0


def test_best_threshold_separates_adjacent_floats() -> None:
    lo = 0.3
    hi = float(np.nextafter(lo, 1.0))  # the midpoint of adjacent floats rounds onto one of them
    for scores in ([lo, hi], [hi, lo]):
        labels = [0, 1] if scores[0] == lo else [1, 0]
        t = best_threshold(scores, labels)
        assert binary_metrics(scores, labels, t)["accuracy"] == 100.0


def test_best_threshold_is_fast_on_a_million_examples() -> None:
    rng = np.random.default_rng(14)
    labels = rng.integers(0, 2, size=1_000_000)
    scores = labels + rng.normal(size=labels.size)
    t = best_threshold(scores, labels)  # O(n^2) would never finish
    assert t == pytest.approx(0.5, abs=0.05)


# ---------------------------------------------------------------------------------------- binarize
def test_binarize() -> None:
    got = binarize([0.0, 0.5, 0.69, 0.7, 0.71, 1.0])
    assert got.tolist() == [0, 0, 0, 1, 1, 1]
    assert got.dtype == np.int64
    assert binarize(np.array([3.5, 3.4]) / 5.0).tolist() == [1, 0]  # 3.5 on STS-B's 0..5 scale
    assert binarize([0.2, 0.6], cutoff=0.5).tolist() == [0, 1]
    assert binarize([0.0, 1.0], cutoff=0.0).tolist() == [1, 1]


def test_binarize_rejects_unscaled_scores_and_bad_cutoffs() -> None:
    with pytest.raises(ConfigError, match="divide STS-B"):
        binarize([0.0, 3.8, 5.0])
    with pytest.raises(ConfigError, match="divide STS-B"):
        binarize([-0.1, 0.5])
    for cutoff in (1.5, -0.1, float("nan"), "0.7"):
        with pytest.raises(ConfigError, match="cutoff"):
            binarize([0.5], cutoff=cutoff)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="empty"):
        binarize([])


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call",
    [
        lambda: spearman([], []),
        lambda: pearson([1.0, 2.0], [1.0]),
        lambda: score_metrics([1.0, np.nan], [1.0, 2.0]),
        lambda: spearman([1.0, np.inf], [1.0, 2.0]),
        lambda: pearson([[1.0, 2.0]], [[1.0, 2.0]]),
        lambda: spearman(["a", "b"], [1.0, 2.0]),
        lambda: binary_metrics([0.1, 0.2], [0, 2], 0.5),
        lambda: binary_metrics([0.1, 0.2], [0, -1], 0.5),
        lambda: binary_metrics([0.1, 0.2], [0, 0.5], 0.5),
        lambda: binary_metrics([0.1, 0.2], [0, 1, 1], 0.5),
        lambda: binary_metrics([], [], 0.5),
        lambda: binary_metrics([0.1, 0.2], [0, 1], float("nan")),
        lambda: binary_metrics([0.1, 0.2], [0, 1], "0.5"),
        lambda: best_threshold([], []),
        lambda: best_threshold([0.1, 0.2], [1]),
        lambda: best_threshold([0.1, np.nan], [1, 0]),
        lambda: best_threshold([0.1, 0.2], [1, 3]),
    ],
)
def test_bad_input_raises_config_error(call) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message


def test_error_messages_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="same length, got 2 and 1"):
        pearson([1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="empty"):
        binary_metrics([], [], 0.5)
    with pytest.raises(ConfigError, match="0 or 1, got 2 at index 1"):
        best_threshold([0.1, 0.2], [0, 2])
    with pytest.raises(ConfigError, match="accuracy, f1"):
        best_threshold([0.1, 0.2], [0, 1], "auc")  # type: ignore[arg-type]


def test_doctests_pass() -> None:
    result = doctest.testmod(evaluation)
    assert result.attempted > 0
    assert result.failed == 0
