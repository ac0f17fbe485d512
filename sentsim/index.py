"""Nearest neighbours of L2-normalised embeddings by inner product (cosine): exact NumPy search, or FAISS.

``exact`` multiplies the queries by every row; it needs nothing beyond NumPy and is the right choice up to tens of
thousands of rows (a chatbot's single question against 10,000 rows: 1.2 ms p50 on 2 cores, 0.23 of
sentence-transformers' ``semantic_search``; eval/bench_search.py measures it). ``hnsw`` is FAISS's graph index
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
_CHUNK_ROWS = 512


def inner_products(queries: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``queries @ columns``, where ``columns`` is ``(dim, n)``: the rows stored transposed, C-ordered, so that a
    query's products run down contiguous memory. For a few queries (a chatbot's), in chunks of 512 rows: products
    that small run on the calling thread, whereas one large product wakes OpenBLAS's own threads, which then spin
    for a while and hold the cores the next encoding needs (measured on 2 cores over 10,000 questions: 1.7 ms
    instead of 3.5 ms for the search, and 11 ms instead of 21 ms for the encoding of the next question)."""
    n = columns.shape[1]
    if queries.shape[0] > _FEW_QUERIES or n <= _CHUNK_ROWS:
        return queries @ columns  # (q, n)
    parts = [queries @ columns[:, start : start + _CHUNK_ROWS] for start in range(0, n, _CHUNK_ROWS)]
    return np.concatenate(parts, axis=1)  # (q, n)


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
        vectors: The rows to search, as float32: exact search keeps one transposed copy (faster products for a
            single query); FAISS keeps its own, and no copy is made when they are float32 and C-ordered already.
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
        if self.kind == "exact":
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
            sims = inner_products(q, self._columns)  # (q, n)
            if k < n:
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                top = np.tile(np.arange(n), (sims.shape[0], 1))
            scores = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-scores, axis=1, kind="stable")
            return np.take_along_axis(scores, order, axis=1).astype(np.float64), np.take_along_axis(top, order, 1)
        if self.kind == "hnsw":
            self._faiss.hnsw.efSearch = max(self.ef_search, k)
        scores, idx = self._faiss.search(q, k)
        scores = np.where(idx < 0, -np.inf, scores)
        return scores.astype(np.float64), idx.astype(np.int64)

    def __repr__(self) -> str:
        return f"VectorIndex(rows={len(self)}, dim={self.dim}, kind={self.kind!r})"
