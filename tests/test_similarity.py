"""Tests for sentsim.similarity against scikit-learn's reference implementations."""

from __future__ import annotations

import doctest
import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics.pairwise import cosine_similarity, euclidean_distances, manhattan_distances

from sentsim import similarity
from sentsim.errors import ConfigError
from sentsim.similarity import METRICS, check_metric, distance_to_similarity, matrix, pairwise

SEEDS = [0, 1, 2]


def _data(seed: int, n: int = 23, m: int = 17, d: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 a (n, d), b (n, d) and c (m, d), with a zero row and a duplicated row thrown in."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)).astype(np.float32)
    b = rng.normal(size=(n, d)).astype(np.float32)
    c = rng.normal(size=(m, d)).astype(np.float32)
    a[3] = 0.0
    b[5] = 0.0
    b[7] = a[7]
    c[2] = a[1]
    return a, b, c


def _reference_matrix(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric == "cosine":
        return cosine_similarity(a64, b64)
    if metric == "euclidean":
        return 1.0 / (1.0 + euclidean_distances(a64, b64))
    if metric == "manhattan":
        return 1.0 / (1.0 + manhattan_distances(a64, b64))
    return np.dot(a64, b64.T)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_matches_sklearn(seed: int, metric: str) -> None:
    a, b, _ = _data(seed)
    got = pairwise(a, b, metric)
    assert got.shape == (a.shape[0],)
    assert got.dtype == np.float32
    want = np.diag(_reference_matrix(a, b, metric))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", METRICS)
def test_matrix_matches_sklearn(seed: int, metric: str) -> None:
    a, _, c = _data(seed)
    got = matrix(a, c, metric)
    assert got.shape == (a.shape[0], c.shape[0])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _reference_matrix(a, c, metric), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", METRICS)
def test_float64_in_float64_out(metric: str) -> None:
    a, b, c = (x.astype(np.float64) for x in _data(3))
    assert pairwise(a, b, metric).dtype == np.float64
    assert matrix(a, c, metric).dtype == np.float64
    np.testing.assert_allclose(matrix(a, c, metric), _reference_matrix(a, c, metric), rtol=1e-10, atol=1e-12)
    # a float32/float64 mix and integer input are computed in float64
    assert pairwise(a.astype(np.float32), b, metric).dtype == np.float64
    assert matrix(np.arange(6).reshape(3, 2), np.ones((2, 2), dtype=np.int32), metric).dtype == np.float64


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", METRICS)
def test_matrix_diagonal_equals_pairwise(seed: int, metric: str) -> None:
    a, _, _ = _data(seed)
    a_copy = a.copy()
    np.testing.assert_allclose(np.diag(matrix(a, a_copy, metric)), pairwise(a, a_copy, metric), rtol=1e-5)


def test_distance_mapping() -> None:
    d = np.array([0.0, 0.5, 1.0, 3.0, 99.0])
    np.testing.assert_allclose(distance_to_similarity(d), 1.0 / (1.0 + d))
    assert distance_to_similarity(d.astype(np.float32)).dtype == np.float32
    sims = distance_to_similarity(np.random.default_rng(0).exponential(size=50))
    assert np.all((sims > 0) & (sims <= 1))
    assert distance_to_similarity(np.array([0.0]))[0] == 1.0
    with pytest.raises(ConfigError, match="non-negative"):
        distance_to_similarity(np.array([1.0, -0.5]))


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_distance_metrics_rank_like_negated_distance(metric: str) -> None:
    a, b, _ = _data(4, n=40)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    dist = (euclidean_distances if metric == "euclidean" else manhattan_distances)(a64, b64).diagonal()
    sims = pairwise(a, b, metric)
    assert spearmanr(sims, -dist).statistic == pytest.approx(1.0)
    # identical vectors (row 7 of a and b, and a with itself): exactly 1; any other pair: between 0 and 1
    assert sims[7] == 1.0
    assert pairwise(a, a, metric).tolist() == [1.0] * a.shape[0]
    assert np.all((np.delete(sims, 7) > 0) & (np.delete(sims, 7) < 1))


def test_cosine_zero_vectors_are_zero_without_warnings() -> None:
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    b = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = pairwise(a, b, "cosine")
        mat = matrix(a, b, "cosine")
    assert p.tolist() == [0.0, 0.0, 0.0]
    assert not np.isnan(mat).any()
    assert mat[0].tolist() == [0.0, 0.0, 0.0]
    assert mat[:, 1].tolist() == [0.0, 0.0, 0.0]
    assert mat[1, 0] == pytest.approx(6 / np.sqrt(14 * 3))


def test_cosine_stays_in_range() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(50, 8)).astype(np.float32)
    for result in (pairwise(a, a * 3.0, "cosine"), matrix(a, -a, "cosine")):
        assert np.all(np.abs(result) <= 1.0)


def test_euclidean_matrix_is_numerically_safe() -> None:
    # Large, nearly identical vectors: the |x|^2 + |y|^2 - 2xy expansion cancels badly here.
    rng = np.random.default_rng(6)
    a = (1e4 + rng.normal(scale=1e-3, size=(30, 384))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = matrix(a, a, "euclidean")
    assert not np.isnan(got).any()
    assert np.all((got > 0) & (got <= 1))
    np.testing.assert_allclose(np.diag(got), 1.0, rtol=1e-6)
    a64 = a.astype(np.float64)
    exact = np.sqrt(((a64[:, None, :] - a64[None, :, :]) ** 2).sum(axis=2))  # no cancellation
    np.testing.assert_allclose(got, 1.0 / (1.0 + exact), rtol=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_matrix_chunks_agree_with_one_block(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _, c = _data(7, n=29, m=13)
    whole = matrix(a, c, metric)
    monkeypatch.setattr(similarity, "_CHUNK_BYTES", 3 * c.shape[0] * 8)  # 3 rows per chunk, last one short
    np.testing.assert_allclose(matrix(a, c, metric), whole, rtol=1e-6)
    monkeypatch.setattr(similarity, "_CHUNK_BYTES", 1)  # one row per chunk
    np.testing.assert_allclose(matrix(a, c, metric), whole, rtol=1e-6)


def test_manhattan_matrix_does_not_build_an_n_m_d_tensor() -> None:
    rng = np.random.default_rng(8)
    n, m, d = 300, 250, 384
    a = rng.normal(size=(n, d)).astype(np.float32)
    b = rng.normal(size=(m, d)).astype(np.float32)
    tracemalloc.start()
    try:
        got = matrix(a, b, "manhattan")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * m * d * 4 / 10  # the full tensor would be ~115 MB
    np.testing.assert_allclose(got[:5, :5], 1.0 / (1.0 + manhattan_distances(a[:5], b[:5])), rtol=1e-5)


def test_empty_inputs() -> None:
    assert pairwise(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)
    for metric in METRICS:
        assert matrix(np.zeros((0, 4)), np.ones((3, 4)), metric).shape == (0, 3)
        assert matrix(np.ones((2, 4)), np.zeros((0, 4)), metric).shape == (2, 0)


def test_shape_errors_name_the_shapes() -> None:
    with pytest.raises(ConfigError, match=r"\(3, 4\) and \(3, 5\)"):
        pairwise(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ConfigError, match=r"\(3, 4\) and \(2, 4\)"):
        pairwise(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(ConfigError, match=r"\(3, 4\) and \(2, 5\)"):
        matrix(np.ones((3, 4)), np.ones((2, 5)), "manhattan")
    with pytest.raises(ConfigError, match=r"2-D.*\(4,\)"):
        pairwise(np.ones(4), np.ones(4))
    with pytest.raises(ConfigError, match="numeric"):
        matrix(np.array([["a", "b"]]), np.ones((1, 2)))
    assert issubclass(ConfigError, ValueError)


def test_unknown_metric_lists_the_valid_names() -> None:
    for call in (lambda: check_metric("jaccard"), lambda: pairwise(np.ones((1, 2)), np.ones((1, 2)), "l2")):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert all(name in message for name in METRICS), message
    with pytest.raises(ConfigError, match="cosine, euclidean, manhattan, dot"):
        matrix(np.ones((1, 2)), np.ones((1, 2)), "Cosine")  # type: ignore[arg-type]
    assert [check_metric(name) for name in METRICS] == list(METRICS)


def test_doctests_pass() -> None:
    result = doctest.testmod(similarity)
    assert result.attempted > 0
    assert result.failed == 0
