"""The maths of the similarity head: compare sentence embeddings with one of four metrics.

Every function here is a pure function over NumPy arrays of embeddings, one embedding per row. Whatever the
metric, the value returned is a *similarity*: higher always means more alike.

- ``"cosine"``: the cosine of the angle between the two vectors, in ``[-1, 1]``. A zero vector has no
  direction; its cosine similarity with anything is defined as ``0.0`` (no NaN, no warning).
- ``"dot"``: the plain dot product, unbounded. It equals cosine for unit-length embeddings.
- ``"euclidean"`` and ``"manhattan"``: the L2 and L1 *distances* are mapped to similarities with

  .. code-block:: text

      similarity = 1 / (1 + distance)

  which lies in ``(0, 1]``, equals ``1`` exactly for identical vectors and falls monotonically towards ``0``
  as the distance grows. Because the mapping is strictly decreasing, any rank-based measure (Spearman
  correlation, ROC AUC, average precision, a best threshold found by sorting) gives the same result as it
  would for the negated distance; only the values differ, and a threshold found on one scale must not be
  used on the other. :func:`distance_to_similarity` applies the mapping.

Inputs are converted to a floating dtype: ``float32`` inputs give ``float32`` results (``float64``
inputs, or a ``float32``/``float64`` mix, give ``float64``; integer inputs give ``float64``).

Example:
    >>> import numpy as np
    >>> a = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    >>> b = np.array([[1.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    >>> pairwise(a, b, "cosine")
    array([ 1., -1.], dtype=float32)
    >>> pairwise(a, b, "euclidean")
    array([1.  , 0.25], dtype=float32)
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
from scipy.spatial.distance import cdist

from sentsim.errors import ConfigError

__all__ = ["Metric", "METRICS", "check_metric", "pairwise", "matrix", "distance_to_similarity"]

Metric = Literal["cosine", "euclidean", "manhattan", "dot"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "manhattan", "dot")

# Upper bound on the scratch memory one chunk of `matrix` may use (bytes). The (n, m) result itself is
# not counted: the caller asked for it.
_CHUNK_BYTES = 64 * 1024 * 1024


def check_metric(metric: str) -> Metric:
    """Check that ``metric`` names a supported similarity metric.

    Args:
        metric: The name to check.

    Returns:
        The same name, typed as :data:`Metric`.

    Raises:
        ConfigError: ``metric`` is not one of :data:`METRICS`.

    Example:
        >>> check_metric("cosine")
        'cosine'
        >>> try:
        ...     check_metric("jaccard")
        ... except ConfigError as err:
        ...     print(err)
        Unknown similarity metric 'jaccard'; choose one of: cosine, euclidean, manhattan, dot.
    """
    if not isinstance(metric, str) or metric not in METRICS:
        raise ConfigError(f"Unknown similarity metric {metric!r}; choose one of: {', '.join(METRICS)}.")
    return cast(Metric, metric)


def _as_embeddings(x: np.ndarray, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D floating array, or raise ConfigError."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ConfigError(f"Embeddings {name} must be a numeric array, not dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ConfigError(f"Embeddings {name} must be real-valued, not dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ConfigError(f"Embeddings {name} must be a 2-D array (rows, dims), got shape {arr.shape}.")
    return arr


def _result_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """float32 for float32 (or smaller) inputs, float64 when either input is float64 or an integer."""
    dtype = np.result_type(a.dtype, b.dtype, np.float32)
    if not np.issubdtype(dtype, np.floating) or dtype.itemsize > 8:
        dtype = np.dtype(np.float64)
    return np.dtype(dtype)


def _row_norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0, without warnings."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def distance_to_similarity(d: np.ndarray) -> np.ndarray:
    """Map distances to similarities with ``1 / (1 + d)``.

    The result lies in ``(0, 1]``: ``1`` for a distance of ``0``, falling monotonically towards ``0``.
    NaN distances stay NaN and an infinite distance gives ``0``.

    Args:
        d: Non-negative distances, any shape.

    Returns:
        Similarities with the same shape; ``float32`` for ``float32`` input, else ``float64``.

    Raises:
        ConfigError: ``d`` is not numeric or holds a negative distance.

    Example:
        >>> distance_to_similarity(np.array([0.0, 1.0, 3.0]))
        array([1.  , 0.5 , 0.25])
    """
    arr = np.asarray(d)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ConfigError(f"Distances must be numeric, not dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ConfigError(f"Distances must be real-valued, not dtype {arr.dtype}.")
    dtype = np.result_type(arr.dtype, np.float32)
    if dtype.itemsize > 8:
        dtype = np.dtype(np.float64)
    arr = arr.astype(dtype, copy=False)
    if np.any(arr < 0):
        raise ConfigError(f"Distances must be non-negative, got a minimum of {float(np.nanmin(arr))}.")
    return np.reciprocal(arr + dtype.type(1))


def pairwise(a: np.ndarray, b: np.ndarray, metric: Metric = "cosine") -> np.ndarray:
    """Similarity of each row of ``a`` with the same row of ``b``.

    Args:
        a: Embeddings, shape ``(n, d)``.
        b: Embeddings, shape ``(n, d)``.
        metric: One of :data:`METRICS`; see the module docstring for what each returns.

    Returns:
        Shape ``(n,)``: element ``i`` compares ``a[i]`` with ``b[i]``. Higher means more alike.

    Raises:
        ConfigError: Unknown metric, or ``a`` and ``b`` are not 2-D arrays of the same shape.

    Example:
        >>> a = np.array([[3.0, 4.0], [1.0, 1.0]])
        >>> b = np.array([[0.0, 0.0], [2.0, 3.0]])
        >>> pairwise(a, b, "cosine")  # a zero vector has cosine similarity 0
        array([0.        , 0.98058068])
        >>> pairwise(a, b, "dot")
        array([0., 5.])
        >>> pairwise(a, b, "manhattan")  # 1 / (1 + 7) and 1 / (1 + 3)
        array([0.125, 0.25 ])
    """
    metric = check_metric(metric)
    a = _as_embeddings(a, "a")
    b = _as_embeddings(b, "b")
    if a.shape != b.shape:
        raise ConfigError(f"pairwise needs a and b of the same shape (n, d), got {a.shape} and {b.shape}.")
    dtype = _result_dtype(a, b)
    a = a.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)

    if metric == "dot":
        return np.einsum("ij,ij->i", a, b)
    if metric == "cosine":
        num = np.einsum("ij,ij->i", a, b)
        sims = _safe_divide(num, _row_norms(a) * _row_norms(b))
        return np.clip(sims, -1.0, 1.0, out=sims)
    diff = a - b
    if metric == "euclidean":
        dist = _row_norms(diff)
    else:
        dist = np.abs(diff, out=diff).sum(axis=1)
    return distance_to_similarity(dist)


def _rows_per_chunk(m: int) -> int:
    """Rows of ``a`` per chunk so that one ``(rows, m)`` float64 block fits in ``_CHUNK_BYTES``."""
    return max(1, _CHUNK_BYTES // max(1, m * 8))


def matrix(a: np.ndarray, b: np.ndarray, metric: Metric = "cosine") -> np.ndarray:
    """Similarity of every row of ``a`` with every row of ``b``.

    Euclidean distances use ``|x|^2 + |y|^2 - 2 x.y`` on vectors centred on the mean of ``b`` (distances
    do not change under a shift, and cancellation does), computed in ``float64`` chunks, with tiny negative
    values from rounding clipped to 0 before the square root. Manhattan distances are accumulated in
    ``float64`` by :func:`scipy.spatial.distance.cdist`, never as an ``(n, m, d)`` tensor. Both work over
    chunks of rows of ``a`` so that scratch memory stays bounded (about 64 MiB) beyond the result itself.

    Args:
        a: Embeddings, shape ``(n, d)``.
        b: Embeddings, shape ``(m, d)``.
        metric: One of :data:`METRICS`; see the module docstring for what each returns.

    Returns:
        Shape ``(n, m)``: element ``[i, j]`` compares ``a[i]`` with ``b[j]``. Higher means more alike.
        With ``b`` equal to ``a`` the diagonal equals ``pairwise(a, a, metric)`` up to rounding.

    Raises:
        ConfigError: Unknown metric, or ``a`` and ``b`` are not 2-D arrays with the same number of columns.

    Example:
        >>> a = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> b = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
        >>> matrix(a, b, "dot")
        array([[1., 1., 0.],
               [0., 1., 0.]])
        >>> matrix(a, b, "manhattan")
        array([[1.        , 0.5       , 0.5       ],
               [0.33333333, 0.5       , 0.5       ]])
    """
    metric = check_metric(metric)
    a = _as_embeddings(a, "a")
    b = _as_embeddings(b, "b")
    if a.shape[1] != b.shape[1]:
        msg = f"matrix needs a (n, d) and b (m, d) with the same d, got shapes {a.shape} and {b.shape}."
        raise ConfigError(msg)
    dtype = _result_dtype(a, b)
    a = a.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)
    n = a.shape[0]
    m = b.shape[0]

    if metric == "dot":
        return a @ b.T
    if metric == "cosine":
        a_unit = _safe_divide(a, _row_norms(a)[:, None])
        b_unit = _safe_divide(b, _row_norms(b)[:, None])
        sims = a_unit @ b_unit.T
        return np.clip(sims, -1.0, 1.0, out=sims)

    out = np.empty((n, m), dtype=dtype)
    if metric == "euclidean":
        # The expansion cancels badly for large, close vectors. Distances do not change under a shift, so
        # centre both sides on b's mean, and work in float64 (as scikit-learn does for float32 input).
        shift = b.mean(axis=0, dtype=np.float64) if m else np.zeros(b.shape[1])
        b64 = b.astype(np.float64) - shift
        b_sq = np.einsum("ij,ij->i", b64, b64)
        step = _rows_per_chunk(m)
        for start in range(0, n, step):
            a64 = a[start : start + step].astype(np.float64) - shift
            sq = a64 @ b64.T
            sq *= -2.0
            sq += np.einsum("ij,ij->i", a64, a64)[:, None]
            sq += b_sq[None, :]
            np.maximum(sq, 0.0, out=sq)
            np.sqrt(sq, out=sq)
            out[start : start + step] = distance_to_similarity(sq)
        return out

    # scipy's C loop accumulates |x - y| without an (n, m, d) tensor; chunks bound its float64 output.
    b64 = np.ascontiguousarray(b, dtype=np.float64)
    step = _rows_per_chunk(m)
    for start in range(0, n, step):
        a64 = np.ascontiguousarray(a[start : start + step], dtype=np.float64)
        out[start : start + step] = cdist(a64, b64, metric="cityblock")
    out += dtype.type(1)
    return np.reciprocal(out, out=out)
