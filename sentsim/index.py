"""Nearest neighbours of L2-normalised embeddings by inner product (cosine): exact NumPy search, or FAISS.

``exact`` gives the rows with the highest inner products, exactly; it needs nothing beyond NumPy and is the right
choice up to tens of thousands of rows. With FAISS installed and 4,096 rows or more, a single query first reads a
float16 copy for ``k + 32`` candidates, then rescores them in float32, with an error bound that proves no other row
can be among the ``k`` best (or reads every fp32 row when it cannot prove it). A chatbot's one question against
10,003 rows takes 0.68 ms p50 on 2 cores, 0.12 of sentence-transformers' ``semantic_search``
(eval/bench_search.py measures it). ``hnsw`` is FAISS's graph index
(``IndexHNSWFlat``): far fewer products per query, at the cost of a build step and of an approximation whose recall
``ef_search`` trades against time (at 1,000,000 rows: 0.30 ms p50 and recall@1 0.992 at the default 128, 0.20 ms
and 0.980 at 64).
``flat`` is FAISS's own exact index. ``auto`` is exact below 50,000 rows and HNSW from there when FAISS is
installed.

Example:
    >>> import numpy as np
    >>> from sentsim.index import VectorIndex
    >>> rows = np.eye(3, dtype=np.float32)
    >>> scores, ids = VectorIndex(rows, kind="exact").search(rows[[1]], k=2)
    >>> ids.tolist(), scores[0, 0].item()
    ([[1, 0]], 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentsim.errors import ConfigError

__all__ = ["VectorIndex", "KINDS", "AUTO_HNSW_ROWS"]

KINDS = ("auto", "exact", "flat", "hnsw")
AUTO_HNSW_ROWS = 50_000  # ``auto`` switches from exact search to HNSW at this many rows
_FEW_QUERIES = 32
# From this many rows, when FAISS is installed, exact search first reads a half-precision copy (see
# VectorIndex._search_via_half); below it the fp32 rows are few enough to read in full.
HALF_PRECISION_ROWS = 4096
_SPARE = 32  # candidates beyond k that the half-precision step returns
# Products of at most this many multiply-adds run on the calling thread: OpenBLAS 0.3.31 (NumPy's) wakes its own
# threads above about 400,000 (1,024 rows of 384 stay on one thread, 1,536 do not; measured with getrusage).
_CHUNK_MACS = 1024 * 384


def inner_products(queries: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``queries @ columns``, where ``columns`` is ``(dim, n)``: the rows stored transposed, C-ordered, so that a
    query's products run down contiguous memory. For a few queries (a chatbot's), in chunks small enough that one
    query's product runs on the calling thread (1,024 rows of dimension 384), written straight into the result: one
    large product wakes OpenBLAS's own threads, which then spin for a while and hold the cores the next encoding needs
    (measured on 2 cores over 10,000 questions: 1.7 ms instead of 3.5 ms for the search, and 11 ms instead of
    21 ms for the encoding of the next question)."""
    q, (dim, n) = queries.shape[0], columns.shape
    step = max(64, _CHUNK_MACS // dim)
    if q > _FEW_QUERIES or n <= step:
        return queries @ columns  # (q, n)
    if q > 1:
        return np.concatenate([queries @ columns[:, start : start + step] for start in range(0, n, step)], axis=1)
    out = np.empty((1, n), dtype=np.result_type(queries, columns))
    for start in range(0, n, step):
        np.matmul(queries, columns[:, start : start + step], out=out[:, start : start + step])
    return out


def _half_precision_index(emb: np.ndarray) -> Any:
    """FAISS's float16 scalar-quantised copy of ``emb`` for inner products, or None without FAISS (or for values
    beyond float16's range)."""
    if np.abs(emb).max() > 60_000.0:
        return None
    try:
        import faiss
    except ImportError:
        return None
    half = faiss.IndexScalarQuantizer(emb.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    half.add(emb)
    return half


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"index must be auto, exact, flat or hnsw, not {kind!r}")
    return kind


def resolve_kind(kind: str, n: int) -> str:
    """What ``kind`` means for ``n`` rows: exact, flat or hnsw (``auto`` falls back to exact without FAISS)."""
    check_kind(kind)
    if kind == "exact" or (kind == "auto" and n < AUTO_HNSW_ROWS):
        return "exact"
    try:
        import faiss  # noqa: F401
    except ImportError:
        if kind == "auto":
            return "exact"
        raise ConfigError(f"index {kind!r} needs FAISS: pip install 'sentsim[faiss]'") from None
    return "hnsw" if kind in ("auto", "hnsw") else "flat"


class VectorIndex:
    """An index over the rows of ``vectors`` (``(n, dim)``, L2-normalised), searched by inner product.

    Args:
        vectors: The rows to search, as float32 (no copy when they are float32 and C-ordered already). Exact
            search keeps them transposed (faster products for a single query), or, from 4,096 rows with FAISS
            installed, as they are plus a float16 copy; ``flat`` and ``hnsw`` keep FAISS's own copy as well.
        kind: ``auto``, ``exact``, ``flat`` or ``hnsw`` (see the module's text).
        m: HNSW: links per node (FAISS's ``M``); more is slower to build and more accurate.
        ef_construction: HNSW: the candidate list while building.
        ef_search: HNSW: the candidate list while searching, the knob between recall and time (128: recall@1
            0.99 at a million rows in eval/bench_search.py); it is raised to ``k`` when a search asks for more.
        progress: Show a progress bar while an HNSW index is built (a million rows take minutes).

    Raises:
        ConfigError: An unknown ``kind``, FAISS missing for ``flat`` or ``hnsw``, or ``vectors`` not a 2-D matrix.
    """

    def __init__(
        self,
        vectors: Any,
        kind: str = "auto",
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        progress: bool = False,
    ) -> None:
        emb = np.ascontiguousarray(vectors, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            raise ConfigError(f"an index needs a non-empty (rows, dim) matrix, not shape {emb.shape}")
        if not np.isfinite(emb).all():
            raise ConfigError("an index cannot hold NaN or infinite values")
        self.kind = resolve_kind(kind, emb.shape[0])
        self.ef_search = int(ef_search)
        self._faiss: Any = None
        self._half: Any = None
        if self.kind == "exact":
            self._half = _half_precision_index(emb) if emb.shape[0] >= HALF_PRECISION_ROWS else None
            if self._half is not None:  # the fp32 rows stay row-major: candidates are rescored row by row
                self.vectors = emb
                self._columns = emb.T  # (dim, n), an F-ordered view, for the rare full product
                # |half-precision score - fp32 score| <= |query| * this (see _search_via_half)
                d = emb.shape[1]
                top_norm = float(np.sqrt(np.einsum("ij,ij->i", emb, emb).max()))
                self._half_error = 1.25 * (top_norm * (2.0**-11 + 2 * d * 2.0**-24) + np.sqrt(d) * 2.0**-24)
                return
            self._columns = np.ascontiguousarray(emb.T)  # (dim, n): what inner_products reads
            self.vectors = self._columns.T  # (n, dim), a view of the one copy
            return
        self.vectors = emb
        import faiss

        d = emb.shape[1]
        if self.kind == "flat":
            index = faiss.IndexFlatIP(d)
            index.add(emb)
        else:
            index = faiss.IndexHNSWFlat(d, int(m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            from tqdm.auto import tqdm

            step = 50_000
            with tqdm(total=emb.shape[0], desc="HNSW index", unit="rows", disable=not progress) as bar:
                for start in range(0, emb.shape[0], step):
                    index.add(emb[start : start + step])
                    bar.update(min(step, emb.shape[0] - start))
        self._faiss = index

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(q, min(k, len))``, best first; an HNSW search may return id -1 (with score
        -inf) where it found fewer than ``k`` rows."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ConfigError(f"queries must have {self.dim} columns, not shape {q.shape}")
        n = len(self)
        k = max(1, min(int(k), n))
        if self._faiss is None:
            if self._half is not None and q.shape[0] <= _FEW_QUERIES and k + _SPARE < n:
                return self._search_via_half(q, k)
            return self._search_full(q, k)
        if self.kind == "hnsw":
            self._faiss.hnsw.efSearch = max(self.ef_search, k)
        scores, idx = self._faiss.search(q, k)
        scores = np.where(idx < 0, -np.inf, scores)
        return scores.astype(np.float64), idx.astype(np.int64)

    def _search_full(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search by the fp32 product of the queries with every row."""
        n = len(self)
        sims = inner_products(q, self._columns)  # (q, n)
        if k < n:
            top = np.argpartition(sims, n - k, axis=1)[:, n - k :]  # the k largest, in no order
        else:
            top = np.tile(np.arange(n), (sims.shape[0], 1))
        scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(scores, order, axis=1).astype(np.float64), np.take_along_axis(top, order, 1)

    def _search_via_half(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search in two steps: the ``k + 32`` best rows by the half-precision copy (half the bytes to read,
        which is what one query's search over thousands of rows waits on), then those rows' fp32 scores.

        Rounding a row to float16 moves each component by at most 2^-11 of itself (below 2^-14, by at most 2^-25),
        so the half-precision score of any row is within ``|q| * _half_error`` of its fp32 score (Cauchy-Schwarz,
        plus the float32 sums' own rounding). A row left out scores at most the last candidate's half-precision
        score; when that is more than two errors below the k-th candidate's, no row left out can beat any of the
        k best candidates, so rescoring the candidates gives the k best rows, as the full fp32 product does (up to
        float32 rounding between rows whose scores are equal to within it). A query for which that does not hold
        (near-ties around the k-th row) gets the full product instead."""
        import faiss

        kk = k + _SPARE
        threads = faiss.omp_get_max_threads()
        if q.shape[0] == 1:  # one query's scan is one thread's work: FAISS's others would only spin on the cores
            faiss.omp_set_num_threads(1)
        try:
            approx, cand = self._half.search(q, kk)
        finally:
            faiss.omp_set_num_threads(threads)
        err = np.linalg.norm(q, axis=1) * self._half_error
        scores = np.empty((q.shape[0], k), dtype=np.float64)
        ids = np.empty((q.shape[0], k), dtype=np.int64)
        for i in range(q.shape[0]):
            if not approx[i, kk - 1] < approx[i, k - 1] - 2 * err[i]:  # a near-tie at the edge (or a NaN query)
                full_scores, full_ids = self._search_full(q[i : i + 1], k)
                scores[i], ids[i] = full_scores[0], full_ids[0]
                continue
            rows = cand[i]
            sims = self.vectors[rows] @ q[i]
            top = np.argpartition(sims, kk - k)[kk - k :]
            order = np.lexsort((rows[top], -sims[top]))  # best first, the lower row first on a tie
            scores[i], ids[i] = sims[top[order]], rows[top[order]]
        return scores, ids

    def __repr__(self) -> str:
        return f"VectorIndex(rows={len(self)}, dim={self.dim}, kind={self.kind!r})"
