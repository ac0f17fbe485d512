"""Retrieval building blocks shared by the evaluation harness and the FAQ bot: (question, answer) tables and ranking
of entries by similarity, with at most one entry per answer.

Example:
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> entries = np.array([[0.9, 0.1], [0.0, 1.0], [1.0, 0.0]])
    >>> idx, scores = rank(q, entries, k=2, groups=[0, 1, 0])  # at most one entry per answer group
    >>> idx.tolist()
    [[2, 1], [1, 0]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentsim.data import _fail, _resolve, open_table, parse_columns, read_records
from sentsim.errors import ConfigError, DataError, check_positive_int
from sentsim.similarity import check_metric, matrix

__all__ = ["QAData", "read_qa", "rank", "QUESTION_NAMES", "ANSWER_NAMES"]

QUESTION_NAMES = ("question", "text", "query", "utterance", "sentence", "sentence1", "input", "anchor")
ANSWER_NAMES = ("answer", "category", "intent", "label", "expected", "expected_answer", "response", "output")
_CHUNK_CELLS = 4_000_000  # similarity cells per chunk of queries in rank(): about 32 MiB of float64


@dataclass
class QAData:
    """Rows of (question, answer) text: an FAQ, or queries with their expected answer ("" = out of scope)."""

    questions: list[str]
    answers: list[str]
    source: str
    rows: list[int]
    columns: tuple[str, str]

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def in_scope(self) -> np.ndarray:
        """Boolean ``(n,)``: the rows with an expected answer."""
        return np.array([bool(a) for a in self.answers], dtype=bool)


def read_qa(
    path: str | os.PathLike,
    columns: str | Sequence[str] | None = None,
    allow_empty_answer: bool = False,
    max_rows: int | None = None,
    max_chars: int = 100_000,
) -> QAData:
    """Read (question, answer) rows from CSV, TSV, JSONL or Parquet, as :func:`sentsim.data.read_pairs` reads pairs.

    Args:
        path: The file.
        columns: Two names or 0-based positions, question first, e.g. ``"text,category"``. None picks a header's
            known names (question: text, query, ...; answer: answer, category, intent, label, ...), or the two
            columns of a file without a header.
        allow_empty_answer: Queries: an empty answer means out of scope. An FAQ needs every answer.
        max_rows: Read at most this many rows.
        max_chars: The longest text allowed.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.csv"
        >>> _ = p.write_text("text,category\\nWhere is my card?,card_arrival\\nTell me a joke,\\n")
        >>> d = read_qa(p, allow_empty_answer=True)
        >>> (d.answers, d.rows, d.columns, d.in_scope.tolist())
        (['card_arrival', ''], [2, 3], ('text', 'category'), [True, False])
    """
    source, file, fmt = open_table(path, max_rows)
    spec = parse_columns(columns)
    if spec is not None and len(spec) != 2:
        raise DataError(f"{source}: columns {','.join(spec)!r}: give 2 names, question,answer")

    def is_header(first: list[str]) -> bool:
        lowered = [c.strip().lower() for c in first]
        if spec is not None:
            return any(n.lower() in lowered for n in spec) or not all(n.isdigit() for n in spec)
        return any(c in QUESTION_NAMES or c in ANSWER_NAMES for c in lowered)

    names, records, has_header = read_records(source, file, fmt, is_header)
    if spec is None:
        lowered = [n.strip().lower() for n in names]
        picks = [
            next((names[i] for i, n in enumerate(lowered) if n in known), None)
            for known in (QUESTION_NAMES, ANSWER_NAMES)
        ]
        if has_header and None in picks:
            role = "question" if picks[0] is None else "answer"
            known = ", ".join(QUESTION_NAMES if picks[0] is None else ANSWER_NAMES)
            raise _fail(source, f"no {role} column; expected one of {known}; pass columns, e.g. 'text,category'")
        if not has_header and len(names) != 2:
            raise _fail(source, f"{len(names)} columns and no header; pass columns, e.g. columns='0,1'")
        spec = [str(p) for p in picks] if has_header else ["0", "1"]
    positions = _resolve(source, names, has_header, spec)
    keys: list[Any] = [names[i] for i in positions] if fmt in ("json", "parquet") else positions
    described = [repr(names[i]) if has_header else str(i) for i in positions]
    questions, answers, rows = [], [], []
    for row, record in records[:max_rows]:
        missing = [k for k in keys if k not in record] if isinstance(record, dict) else []
        if missing:
            raise _fail(source, f"no key {missing[0]!r}", row=row)
        question, answer = (record[k] for k in keys)
        if question is None or (isinstance(question, str) and not question.strip()):
            raise _fail(source, "the question is empty", row, described[0])
        if not isinstance(question, str):
            raise _fail(source, f"expected text, found {type(question).__name__}", row, described[0])
        answer = "" if answer is None else str(answer).strip()
        if not answer and not allow_empty_answer:
            raise _fail(source, "the answer is empty (an FAQ entry needs one)", row, described[1])
        for text, column in ((question, described[0]), (answer, described[1])):
            if len(text) > max_chars:
                raise _fail(source, f"{len(text)} characters, over max_chars={max_chars}", row, column)
        questions.append(question)
        answers.append(answer)
        rows.append(row)
    return QAData(questions, answers, source, rows, (names[positions[0]], names[positions[1]]))


def rank(
    query_emb: np.ndarray,
    entry_emb: np.ndarray,
    k: int,
    metric: str = "cosine",
    groups: Sequence[int] | np.ndarray | None = None,
    group_k: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar entries for each query, best first, from one similarity matrix per chunk of queries.

    Args:
        query_emb: Query embeddings ``(n, d)``.
        entry_emb: Entry (FAQ question) embeddings ``(m, d)``.
        k: How many to return per query; at most the number of entries (or of groups).
        metric: One of :data:`sentsim.similarity.METRICS`.
        groups: One integer per entry, e.g. the id of its answer. Then each group counts once, by its best
            entry: the result is the best entry of each of the ``k`` best groups (``k`` distinct answers).
        group_k: With ``groups``, score each group by the mean of its ``group_k`` best entries' similarities (a
            group with fewer entries, by the mean of all of them) instead of by its best one. With many paraphrases
            per answer, one stray paraphrase then no longer outvotes an answer that several of them match.

    Returns:
        ``(indices, scores)``, each ``(n, k)``: entry indices (int64) and their similarities, best first. With
        groups, each index is its group's best entry and each score is the group's score.

    Raises:
        ConfigError: ``k`` is not in ``1..entries`` (or ``1..groups``), ``group_k`` is not a positive integer (or
            is given without groups), or the shapes do not fit.

    Example:
        >>> q = np.array([[1.0, 0.0]])
        >>> idx, s = rank(q, np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]]), k=2)
        >>> idx.tolist(), s.round(2).tolist()
        ([[1, 2]], [[1.0, 0.6]])
        >>> g = [0, 1, 1]  # entry 0 alone answers 0; entries 1 and 2 share answer 1
        >>> q = np.array([[0.8, 0.6]])
        >>> e = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]])
        >>> [rank(q, e, k=2, groups=g, group_k=gk)[1].round(2).tolist() for gk in (1, 2)]
        [[[1.0, 0.8]], [[0.98, 0.8]]]
    """
    check_positive_int(group_k, "group_k")
    if group_k > 1 and groups is None:
        raise ConfigError("group_k scores groups of entries: give groups too")
    query_emb, entry_emb = np.asarray(query_emb), np.asarray(entry_emb)
    m = entry_emb.shape[0] if entry_emb.ndim == 2 else 0
    if groups is None:
        codes, order, starts, counts, n_items, what = None, None, None, None, m, "entries"
    else:
        raw = np.asarray(groups)
        if raw.shape != (m,):
            raise ConfigError(f"groups must hold one id per entry ({m}), got shape {raw.shape}")
        _, codes = np.unique(raw, return_inverse=True)
        order = np.argsort(codes, kind="stable")  # entries grouped, group by group
        starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
        counts = np.diff(np.r_[starts, m])
        n_items, what = len(starts), "distinct answers"
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n_items:
        raise ConfigError(f"k={k} must be between 1 and the number of {what} ({n_items})")
    n = query_emb.shape[0] if query_emb.ndim == 2 else 0
    out_idx = np.empty((n, k), dtype=np.int64)
    out_scores = np.empty((n, k), dtype=np.float64)
    step = max(1, _CHUNK_CELLS // max(1, m))
    for start in range(0, n, step):
        sims = matrix(query_emb[start : start + step], entry_emb, check_metric(metric))  # (c, m)
        if order is None:
            cand_scores, cand_index = sims, None
        else:
            grouped = sims[:, order]  # (c, m), group by group
            cand_scores = np.maximum.reduceat(grouped, starts, axis=1)  # (c, groups): each group's best score
            best = grouped == np.repeat(cand_scores, counts, axis=1)  # (c, m): entries that reach it
            first = np.minimum.reduceat(np.where(best, np.arange(m), m), starts, axis=1)  # (c, groups)
            cand_index = order[first]  # (c, groups): each group's best entry
            if group_k > 1:  # the mean of each group's group_k best: take the best out, group_k - 1 more times
                total, rest, rows = cand_scores.copy(), grouped.copy(), np.arange(grouped.shape[0])[:, None]
                taken = first
                for j in range(1, group_k):
                    rest[rows, taken] = -np.inf
                    nxt = np.maximum.reduceat(rest, starts, axis=1)
                    total += np.where(counts > j, nxt, 0.0)
                    hit = rest == np.repeat(nxt, counts, axis=1)
                    # a group with no entry left is all -inf: it takes its first entry again, a value never counted
                    taken = np.minimum.reduceat(np.where(hit, np.arange(m), m), starts, axis=1)
                cand_scores = total / np.minimum(counts, group_k)
        top = np.argpartition(-cand_scores, k - 1, axis=1)[:, :k]  # (c, k), unordered
        top_scores = np.take_along_axis(cand_scores, top, axis=1)
        by_score = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, by_score, axis=1)
        out_scores[start : start + step] = np.take_along_axis(top_scores, by_score, axis=1)
        out_idx[start : start + step] = top if cand_index is None else np.take_along_axis(cand_index, top, axis=1)
    return out_idx, out_scores
