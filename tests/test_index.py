"""sentsim.index.VectorIndex: exact search against a brute-force sort, FAISS flat and HNSW against exact."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import sentsim.index
from sentsim.errors import ConfigError
from sentsim.index import AUTO_HNSW_ROWS, HALF_PRECISION_ROWS, VectorIndex, resolve_kind

try:
    import faiss  # noqa: F401

    HAVE_FAISS = True
except ImportError:
    HAVE_FAISS = False
needs_faiss = pytest.mark.skipif(not HAVE_FAISS, reason="FAISS is not installed (pip install 'sentsim[faiss]')")


def unit_rows(n: int, d: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n_queries", [1, 5, 40])  # 40: more than the few-queries path, one product
def test_exact_search_is_the_brute_force_order(n_queries):
    # 2,500 rows of 384: three chunks of 1,024 rows, and below the rows where the half-precision step starts
    rows, queries = unit_rows(2500, d=384), unit_rows(n_queries, d=384, seed=1)
    index = VectorIndex(rows, kind="exact")
    scores, ids = index.search(queries, k=7)
    np.testing.assert_array_equal(index.vectors, rows)  # the rows read back from the transposed copy
    sims = queries @ rows.T
    want = np.argsort(-sims, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, want, axis=1), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def count_full_products(monkeypatch) -> list[int]:
    calls = [0]
    real = sentsim.index.inner_products

    def counting(queries, columns):
        calls[0] += 1
        return real(queries, columns)

    monkeypatch.setattr(sentsim.index, "inner_products", counting)
    return calls


def clustered_rows(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    """Rows in tight groups, as an FAQ's paraphrases are: many near neighbours for each query."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 20, d))
    x = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, d))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@needs_faiss
@pytest.mark.parametrize("k", [1, 7])
def test_exact_search_over_many_rows_reads_half_precision_first_and_stays_exact(monkeypatch, k):
    rows = clustered_rows(HALF_PRECISION_ROWS + 1000)
    queries = clustered_rows(60, seed=4) * 2.5  # not unit length: the error bound scales with the query
    index = VectorIndex(rows, kind="exact")
    assert index._half is not None
    calls = count_full_products(monkeypatch)
    sims = queries.astype(np.float64) @ rows.T.astype(np.float64)
    for query, row in zip(queries, sims):
        scores, ids = index.search(query, k=k)
        want = np.argsort(-row, kind="stable")[:k]
        assert ids[0].tolist() == want.tolist()
        np.testing.assert_allclose(scores[0], row[want], atol=1e-5)
    assert calls[0] == 0  # every query was settled by the half-precision candidates


@needs_faiss
def test_a_near_tie_at_the_edge_of_the_candidates_falls_back_to_the_full_product(monkeypatch):
    rng = np.random.default_rng(5)
    base = unit_rows(1, d=64, seed=6)[0]
    # 60 rows within 1e-4 of each other's score: far closer than float16 can tell apart, beyond k + 32 candidates
    twins = base + 1e-3 * rng.standard_normal((60, 64)).astype(np.float32)
    rows = np.concatenate([unit_rows(HALF_PRECISION_ROWS, d=64, seed=7), twins])
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    index = VectorIndex(rows, kind="exact")
    calls = count_full_products(monkeypatch)
    scores, ids = index.search(base, k=3)
    assert calls[0] == 1
    sims = rows @ base
    assert ids[0].tolist() == np.argsort(-sims, kind="stable")[:3].tolist()
    assert set(ids[0]) <= set(range(HALF_PRECISION_ROWS, len(rows)))


def test_exact_search_without_faiss_reads_the_fp32_rows(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    rows, query = clustered_rows(HALF_PRECISION_ROWS + 10), unit_rows(1, d=64, seed=8)
    index = VectorIndex(rows, kind="exact")
    assert index._half is None
    assert index.search(query, k=4)[1][0].tolist() == np.argsort(-(rows @ query[0]), kind="stable")[:4].tolist()


def test_k_is_capped_and_one_query_may_be_a_vector():
    rows = unit_rows(4)
    scores, ids = VectorIndex(rows).search(rows[2], k=10)
    assert ids.shape == (1, 4) and ids[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0)
    assert sorted(ids[0].tolist()) == [0, 1, 2, 3]


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="auto, exact, flat or hnsw"):
        VectorIndex(unit_rows(3), kind="ivf")
    with pytest.raises(ConfigError, match="non-empty"):
        VectorIndex(np.zeros((0, 8)))
    with pytest.raises(ConfigError, match="non-empty"):
        VectorIndex(np.zeros(8))
    bad = unit_rows(3)
    bad[1, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        VectorIndex(bad)
    with pytest.raises(ConfigError, match="48 columns"):
        VectorIndex(unit_rows(3)).search(np.zeros((1, 5)), k=1)


def test_auto_is_exact_below_the_switch():
    assert resolve_kind("auto", AUTO_HNSW_ROWS - 1) == "exact"
    assert resolve_kind("auto", AUTO_HNSW_ROWS) == ("hnsw" if HAVE_FAISS else "exact")


@needs_faiss
def test_faiss_flat_matches_exact():
    rows, queries = unit_rows(2000), unit_rows(20, seed=2)
    e_scores, e_ids = VectorIndex(rows, kind="exact").search(queries, k=5)
    f_scores, f_ids = VectorIndex(rows, kind="flat").search(queries, k=5)
    np.testing.assert_array_equal(f_ids, e_ids)
    np.testing.assert_allclose(f_scores, e_scores, atol=1e-5)


@needs_faiss
def test_hnsw_recall_grows_with_ef_search():
    # random 48-d directions are a hard case for a graph index: a small ef_search must miss some, a large one few
    rows, queries = unit_rows(20_000), unit_rows(200, seed=3)
    truth = VectorIndex(rows, kind="exact").search(queries, k=1)[1][:, 0]
    index = VectorIndex(rows, kind="hnsw", m=16, ef_construction=40, ef_search=1)
    low = float((index.search(queries, k=1)[1][:, 0] == truth).mean())
    index.ef_search = 256
    scores, ids = index.search(queries, k=3)
    high = float((ids[:, 0] == truth).mean())
    assert low < 0.9 and high >= 0.97 and high > low
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@needs_faiss
def test_hnsw_marks_missing_results_and_is_never_asked_for_more_than_it_holds():
    rows = unit_rows(3)
    scores, ids = VectorIndex(rows, kind="hnsw").search(rows[:1], k=10)
    assert ids.shape == (1, 3) and ids[0, 0] == 0
    assert np.isfinite(scores[ids >= 0]).all() and (scores[ids < 0] == -np.inf).all()
