"""The FAQ bot: match a question to the nearest FAQ question and return its answer, or say it does not know.

An FAQ is a list of entries, each a question and its answer, with an optional id and tags; several questions may
share one answer (paraphrases of one entry: they share the answer's id). The bot embeds every FAQ question once.
``ask`` embeds the query, finds the nearest questions by cosine similarity, one per distinct answer, and answers
only when it is *confident*: its confidence (the best score, plus ``gap_weight`` times the best score's lead over the
next answer's) reaches the bot's threshold, and the best two answers are not too close to call (their scores differ
by at least the margin). ``calibrate`` chooses the threshold, the margin and the gap weight on labelled queries that
include out-of-scope ones.

Files: CSV, TSV, JSONL, Parquet (one row per question: question and answer columns, optional ``id`` and ``tags``),
or JSON / YAML (a list of entries, or ``{"entries": [...]}``, each with ``question`` or a ``questions`` list,
``answer``, optional ``id`` and ``tags``). A saved bot is a folder of JSON and NumPy files (no pickle) with a
fingerprint of the model that embedded it; loaded with another model, it re-embeds its questions.

Example:
    >>> import sentsim
    >>> bot = sentsim.FAQBot.from_pairs(
    ...     [("How do I reset my password?", "Use the 'Forgot password' link on the sign-in page."),
    ...      ("Where can I download my invoices?", "Invoices are under Billing > History.")],
    ...     threshold=0.5)
    >>> bot.ask("I forgot my password").answer
    "Use the 'Forgot password' link on the sign-in page."
    >>> bot.ask("What's the weather like on Mars?").answer is None
    True
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from sentsim.errors import (
    ConfigError,
    DataError,
    ModelError,
    TextError,
    TextTooLongError,
    check_positive_int,
    check_text,
)
from sentsim.index import VectorIndex, check_kind

logger = logging.getLogger(__name__)

__all__ = [
    "FAQBot",
    "FAQEntry",
    "Answer",
    "Alternative",
    "QueryError",
    "read_faq",
    "check_gap_weight",
    "default_faq_path",
    "default_queries_path",
]

MAX_QUERY_CHARS = 2_000  # a question longer than this is not a question; the server returns 413 for it
MAX_ENTRY_CHARS = 20_000
_MAX_FETCH = 2_048  # questions an answer's search fetches at most before it ranks every entry by answer
FORMAT_VERSION = 1
_PROBES = (  # embedded to fingerprint a model: a bot loaded with another model re-embeds its questions
    "How do I reset my password?",
    "The cat sat on the mat.",
    "Quarterly revenue grew by eight percent.",
)
Objective = Literal["balanced", "precision", "accuracy"]


class QueryError(TextError):
    """A query the bot cannot take: empty, only spaces, too long, or not text."""


class QueryTooLongError(QueryError, TextTooLongError):
    """A query over the bot's size limit."""


@dataclass(frozen=True)
class FAQEntry:
    """One FAQ question with its answer. Questions that share an answer share its ``id``."""

    question: str
    answer: str
    id: str
    tags: tuple[str, ...] = ()


class Alternative(NamedTuple):
    """Another candidate answer, for "did you mean ...?"."""

    question: str
    answer: str
    score: float
    id: str


@dataclass
class Answer:
    """What :meth:`FAQBot.ask` returns.

    Attributes:
        query: The question asked.
        answer: The answer text, or None when the bot should not answer.
        score: Cosine similarity of the best-matching FAQ question; with the bot's ``answer_k`` above 1, the
            answer's score: the mean of its ``answer_k`` best questions' similarities.
        confident: The confidence reaches the threshold and the answer is not ambiguous.
        question: The FAQ question that matched best (also when not confident, for "did you mean ...?").
        id: The id of the best match's entry.
        reason: ``answered``, ``below_threshold`` or ``ambiguous``.
        alternatives: The next best matches, one per other answer, best first (their scores as ``score``).
        threshold, margin, gap_weight: The rule the decision used.
        confidence: What the threshold was held against: ``score + gap_weight * (score - the next answer's
            score)``; ``score`` itself with ``gap_weight`` 0 (the default) or an FAQ of one answer.
    """

    query: str
    answer: str | None
    score: float
    confident: bool
    question: str
    id: str
    reason: str
    alternatives: list[Alternative] = field(default_factory=list)
    threshold: float = 0.0
    margin: float = 0.0
    gap_weight: float = 0.0
    confidence: float | None = None

    def __post_init__(self) -> None:
        if self.confidence is None:
            self.confidence = self.score

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("query", "answer", "score", "confident", "question", "id", "reason")}
        out["alternatives"] = [a._asdict() for a in self.alternatives]
        return {**out, "threshold": self.threshold, "margin": self.margin, "gap_weight": self.gap_weight,
                "confidence": self.confidence}  # fmt: skip


# ------------------------------------------------------------------------------------------------ files
def default_faq_path() -> Path:
    """The FAQ that ships with sentsim: its own help desk (``sentsim/faqs/sentsim_help.yaml``)."""
    return Path(__file__).resolve().parent / "faqs" / "sentsim_help.yaml"


def default_queries_path() -> Path:
    """Labelled queries for the shipped FAQ (``query,expected``; an empty expected id: out of scope)."""
    return default_faq_path().with_name("sentsim_help_queries.csv")


def _norm(question: str) -> str:
    """The form two questions are compared in: case-folded, runs of spaces as one."""
    return " ".join(question.casefold().split())


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise DataError(f"{where}: tags must be a list of strings or a comma-separated string")


def _text(value: Any, where: str, what: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: the {what} is empty")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise DataError(f"{where}: the {what} must be text, not {type(value).__name__}")
    text = str(value).strip()
    if len(text) > MAX_ENTRY_CHARS:
        raise DataError(f"{where}: the {what} has {len(text)} characters, over the limit of {MAX_ENTRY_CHARS}")
    return text


def _parse_nested(source: str, text: str, suffix: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: line {exc.lineno} is not valid JSON ({exc.msg})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} " if mark is not None else ""
        raise DataError(f"{source}: {where}is not valid YAML ({getattr(exc, 'problem', None) or 'syntax'})") from None


def _nested_rows(source: str, data: Any) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) for every question of a JSON/YAML FAQ."""
    if isinstance(data, dict) and "entries" in data:
        data = data["entries"]
    if not isinstance(data, list):
        raise DataError(f"{source}: expected a list of entries (or {{'entries': [...]}}), found {type(data).__name__}")
    rows = []
    for n, entry in enumerate(data, 1):
        where = f"{source}: entry {n}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object with question and answer, found {type(entry).__name__}")
        unknown = sorted(set(entry) - {"question", "questions", "answer", "id", "tags"})
        if unknown:
            raise DataError(f"{where}: unknown key {unknown[0]!r}; expected question(s), answer, id, tags")
        if "answer" not in entry:
            raise DataError(f"{where}: no answer")
        questions = entry.get("questions", [])
        if "question" in entry:
            questions = [entry["question"], *questions]
        if not isinstance(questions, list) or not questions:
            raise DataError(f"{where}: no question (give question: ... or questions: [...])")
        for m, question in enumerate(questions, 1):
            rows.append(
                (
                    f"{where}, question {m}" if len(questions) > 1 else where,
                    {"question": question, "answer": entry["answer"], "id": entry.get("id"), "tags": entry.get("tags")},
                )
            )
    return rows


def _table_rows(path: Path, columns: Sequence[str] | str | None) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) for every row of a CSV/TSV/JSONL/Parquet FAQ."""
    from sentsim.data import open_table, read_records
    from sentsim.retrieval import read_qa

    qa = read_qa(path, columns)  # checks the question and answer columns, one line per bad row
    rows = [
        (f"{qa.source}: row {r}", {"question": q, "answer": a}) for q, a, r in zip(qa.questions, qa.answers, qa.rows)
    ]
    source, file, fmt = open_table(path)
    names, records, has_header = read_records(source, file, fmt, lambda first: qa.columns[0] in first)
    extra = {k: names.index(k) for k in ("id", "tags") if has_header and k in names}
    if extra:
        by_row = {row: record for row, record in records}
        for (_, item), row in zip(rows, qa.rows):
            record = by_row[row]
            for key, pos in extra.items():
                item[key] = record.get(key) if isinstance(record, dict) else record[pos]
    return rows


def read_faq(
    path: str | os.PathLike,
    columns: str | Sequence[str] | None = None,
    on_duplicate: Literal["error", "last"] = "error",
) -> list[FAQEntry]:
    """Read an FAQ file into entries, one per question.

    Args:
        path: CSV, TSV, JSONL, Parquet, JSON or YAML (see the module's description).
        columns: For tables: the question and answer columns, e.g. ``"text,category"``; found by name when None.
        on_duplicate: The same question (ignoring case and spacing) given two different answers is an error that
            names both rows; ``"last"`` keeps the later one instead.

    Raises:
        DataError: a missing or empty file, a missing answer column, an empty question or answer, a duplicate.
    """
    file = Path(path)
    source = os.fspath(path)
    if not file.is_file():
        raise DataError(f"{source}: {'is a directory, not a file' if file.is_dir() else 'file not found'}")
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataError(f"{source}: line {line} is not valid UTF-8") from None
        if not text.strip():
            raise DataError(f"{source}: the file is empty")
        data = _parse_nested(source, text, suffix)
        rows = _nested_rows(source, data)
    else:
        rows = _table_rows(file, columns)
    if not rows:
        raise DataError(f"{source}: no entries")
    return _entries(rows, on_duplicate)


def _entries(rows: Iterable[tuple[str, dict[str, Any]]], on_duplicate: str = "error") -> list[FAQEntry]:
    """Checked entries from (where, row) pairs: ids filled in, duplicates refused or resolved."""
    entries: list[FAQEntry] = []
    where_of: dict[str, tuple[int, str]] = {}  # normalised question -> (index in entries, where)
    id_of_answer: dict[str, str] = {}
    answer_of_id: dict[str, str] = {}
    for where, row in rows:
        question = _text(row.get("question"), where, "question")
        answer = _text(row.get("answer"), where, "answer")
        given = row.get("id")
        entry_id = str(given).strip() if given not in (None, "") else None
        if entry_id is None:
            entry_id = id_of_answer.get(answer) or f"entry-{len(answer_of_id) + 1}"
            while entry_id in answer_of_id and answer_of_id[entry_id] != answer:
                entry_id += "+"
        elif entry_id in answer_of_id and answer_of_id[entry_id] != answer:
            raise DataError(f"{where}: id {entry_id!r} is used with another answer elsewhere in the file")
        id_of_answer.setdefault(answer, entry_id)
        answer_of_id.setdefault(entry_id, answer)
        entry = FAQEntry(question, answer, entry_id, _tags(row.get("tags"), where))
        key = _norm(question)
        if key in where_of:
            index, first = where_of[key]
            if entries[index].answer == answer:
                continue  # the same question and answer twice: keep one
            if on_duplicate != "last":
                raise DataError(
                    f"{where}: the question {question[:60]!r} is also at {first.split(': ', 1)[-1]} with another "
                    "answer; remove one, or keep the last (on_duplicate='last', --keep-last)"
                )
            entries[index] = entry
            where_of[key] = (index, where)
            continue
        where_of[key] = (len(entries), where)
        entries.append(entry)
    return entries


# ------------------------------------------------------------------------------------------------ index
class _Index:
    """The bot's :class:`~sentsim.index.VectorIndex` over its question embeddings, built again on the first search
    after they change (every change assigns a new array: add, remove, a reload that embeds them again)."""

    def __init__(self, kind: str = "auto") -> None:
        self.kind = check_kind(kind)
        self._built: VectorIndex | None = None
        self._of: np.ndarray | None = None  # the embeddings it was built on

    def search(self, emb: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, indices)``, each ``(q, k)``, best first."""
        if self._built is None or self._of is not emb:
            self._built, self._of = VectorIndex(emb, kind=self.kind), emb
        return self._built.search(queries, k)


CALIBRATION_GAP_WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # what calibrate tries by default (BENCHMARKS.md, issue 4)
MAX_GAP_WEIGHT = 100.0


def check_gap_weight(value: Any) -> float:
    """A gap weight as a float: a number in [0, MAX_GAP_WEIGHT]; anything else (NaN too) is a ConfigError.

    Example:
        >>> from sentsim.faq import check_gap_weight
        >>> check_gap_weight("0.5")
        0.5
    """
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"gap_weight must be a number, not {value!r}") from None
    if not 0 <= w <= MAX_GAP_WEIGHT:  # also refuses NaN
        raise ConfigError(f"gap_weight must be in [0, {MAX_GAP_WEIGHT:g}], not {value!r}")
    return w


# ------------------------------------------------------------------------------------------------ the bot
class FAQBot:
    """An FAQ bot over a Siamese model: see the module's description.

    Args:
        entries: The FAQ (from :func:`read_faq`, or :meth:`from_pairs` / :meth:`from_file`).
        model: A :class:`~sentsim.SiameseModel`; the bundled model when None.
        threshold: The lowest confidence the bot answers at; the model's cosine threshold when None.
        margin: The least gap between the best two answers' scores; closer than this, the bot calls it ambiguous.
        gap_weight: The confidence is the best score plus this times its lead over the next answer's score, so a
            match that stands clear of the rest counts for more than one as high whose runner-up is close behind.
            0 (the default): the best score alone. On BANKING77 with held-out intents, the weights calibrate chose
            (0.5 to 2) caught 53% of the out-of-scope questions at in-scope accuracy 90, against 45% for the best
            score alone (BENCHMARKS.md); ``calibrate`` chooses it on labelled queries.
        index: ``auto`` (exact NumPy search, FAISS HNSW from 50,000 questions when FAISS is installed), ``exact``,
            ``flat`` or ``hnsw`` (FAISS).
        batch_size: Encoding batch size.
        show_progress: A progress bar while embedding a large FAQ (None: for 1,000 questions or more).
        embeddings: The questions' embeddings by this model, one row per entry, when already computed.
        answer_k: Score each answer by the mean of its ``answer_k`` best questions' similarities (an answer with
            fewer questions, by all of them) instead of by its single best one. With many paraphrases per answer,
            one stray paraphrase of another answer then no longer outvotes an answer several paraphrases match:
            on BANKING77 (about 130 questions per answer) 4 was best on a dev split (BENCHMARKS.md). The threshold
            and margin apply to that score, so calibrate with the ``answer_k`` you ask with; it is saved with the
            bot. Above 1, every question is scored for each query (exact search, whatever ``index`` says).
    """

    def __init__(
        self,
        entries: Sequence[FAQEntry],
        model: Any = None,
        threshold: float | None = None,
        margin: float = 0.0,
        index: str = "auto",
        batch_size: int = 64,
        show_progress: bool | None = None,
        embeddings: np.ndarray | None = None,
        answer_k: int = 1,
        gap_weight: float = 0.0,
    ) -> None:
        self.answer_k = int(check_positive_int(answer_k, "answer_k"))
        self.gap_weight = check_gap_weight(gap_weight)
        if model is None:
            from sentsim.encoders import load

            model = load()
        if not entries:
            raise DataError("the FAQ has no entries")
        self.model = model
        self.entries: list[FAQEntry] = list(entries)
        self.threshold = float(threshold if threshold is not None else (model.config.threshold_for("cosine") or 0.5))
        if not 0 <= margin < 1:
            raise ConfigError(f"margin must be in [0, 1), not {margin}")
        self.margin = float(margin)
        self.calibration: dict[str, Any] | None = None
        self.batch_size = batch_size
        self._index = _Index(index)
        if embeddings is None:
            progress = len(self.entries) >= 1_000 if show_progress is None else show_progress
            embeddings = self._embed([e.question for e in self.entries], progress)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(self.entries):
            raise ConfigError(f"embeddings must be ({len(self.entries)}, dimension), a row per entry, not {emb.shape}")
        self._emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        self._rebuild_keys()

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike | None = None,
        model: Any = None,
        columns: str | Sequence[str] | None = None,
        on_duplicate: Literal["error", "last"] = "error",
        **kwargs: Any,
    ) -> FAQBot:
        """A bot over an FAQ file (see :func:`read_faq`).

        With ``path`` None it is the FAQ that ships with sentsim (its own help desk); unless a threshold is given,
        that bot is calibrated (balanced) on the labelled queries that ship beside it, 160 of them, 50 out of scope.
        """
        bot = cls(read_faq(path if path is not None else default_faq_path(), columns, on_duplicate), model, **kwargs)
        if path is None and kwargs.get("threshold") is None:
            from sentsim.retrieval import read_qa

            queries = read_qa(default_queries_path(), allow_empty_answer=True)
            bot.calibrate(queries.questions, queries.answers)
        return bot

    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[str, str] | tuple[str, str, str]],
        model: Any = None,
        on_duplicate: Literal["error", "last"] = "error",
        **kwargs: Any,
    ) -> FAQBot:
        """A bot over ``(question, answer)`` or ``(question, answer, id)`` tuples."""
        rows = []
        for n, pair in enumerate(pairs, 1):
            if not isinstance(pair, tuple | list) or len(pair) not in (2, 3):
                raise DataError(f"pair {n}: expected (question, answer) or (question, answer, id)")
            rows.append((f"pair {n}", dict(zip(("question", "answer", "id"), pair))))
        return cls(_entries(rows, on_duplicate), model, **kwargs)

    # ---------------------------------------------------------------- internals
    def _embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        emb = self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=progress)
        emb = np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    def _rebuild_keys(self) -> None:
        self._row_of = {_norm(e.question): i for i, e in enumerate(self.entries)}
        ids = sorted({e.id for e in self.entries})
        self._code_of = {entry_id: c for c, entry_id in enumerate(ids)}
        self._codes = np.array([self._code_of[e.id] for e in self.entries], dtype=np.int64)
        self._answer_of = {e.id: e.answer for e in self.entries}

    @staticmethod
    def check_query(query: Any, max_chars: int = MAX_QUERY_CHARS) -> str:
        """The query, stripped; or a one-line :class:`QueryError`."""
        return check_text(query, "the query", max_chars, error=QueryError, too_long=QueryTooLongError)

    def _candidates(self, q_emb: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query, the best entry of each of the ``k`` best distinct answers: (row, score), best first.

        The index returns the nearest questions, as many as ``k - 1`` answers have questions on average (at least
        32); when they hold fewer than ``k`` distinct answers, the search is repeated for those queries with 8
        times as many, up to :data:`_MAX_FETCH`, and only then are all entries ranked by answer. On BANKING77
        (130 questions per answer), the 32 nearest often held fewer than the 4 answers of ``ask``'s default, and
        ranking all 10,000 entries for those queries made ``ask`` take 3 ms more than the encoder (BENCHMARKS.md)."""
        n = len(self.entries)
        want = min(k, len(self._code_of))
        if self.answer_k > 1:  # an answer's score needs its answer_k best questions: rank them all, by answer
            from sentsim.retrieval import rank

            idx, scores = rank(q_emb, self._emb, want, "dot", groups=self._codes, group_k=self.answer_k)
            return [[(int(r), float(v)) for r, v in zip(rows, row)] for rows, row in zip(idx, scores)]
        out: list[list[tuple[int, float]]] = [[] for _ in range(q_emb.shape[0])]
        pending = list(range(q_emb.shape[0]))
        per_answer = -(-n // max(1, len(self._code_of)))  # questions per answer, on average
        fetch = min(n, max(4 * want + 16, 32, (want - 1) * per_answer))
        while pending:
            scores, idx = self._index.search(self._emb, q_emb[pending], fetch)
            short = []
            for qi, rows, row_scores in zip(pending, idx, scores):
                seen: set[int] = set()
                picks = []
                for row, score in zip(rows, row_scores):
                    if row < 0:
                        continue
                    code = self._codes[row]
                    if code not in seen:
                        seen.add(code)
                        picks.append((int(row), float(score)))
                        if len(picks) == want:
                            break
                out[qi] = picks
                if len(picks) < want and fetch < n:
                    short.append(qi)
            pending = short
            if pending and fetch >= _MAX_FETCH:  # many near questions share answers: rank them all, by answer
                from sentsim.retrieval import rank

                full_idx, full_scores = rank(q_emb[pending], self._emb, want, "dot", groups=self._codes)
                for qi, rows, row_scores in zip(pending, full_idx, full_scores):
                    out[qi] = [(int(r), float(s)) for r, s in zip(rows, row_scores)]
                break
            fetch = min(n, fetch * 8)
        return out

    def _decide(self, query: str, picks: list[tuple[int, float]], k: int) -> Answer:
        best_row, best = picks[0]
        second = picks[1][1] if len(picks) > 1 else None
        entry = self.entries[best_row]
        confidence = best if second is None else best + self.gap_weight * (best - second)
        if confidence < self.threshold:
            reason = "below_threshold"
        elif second is not None and best - second < self.margin:
            reason = "ambiguous"
        else:
            reason = "answered"
        alternatives = [
            Alternative(self.entries[r].question, self.entries[r].answer, s, self.entries[r].id)
            for r, s in picks[1 : k + 1]
        ]
        confident = reason == "answered"
        return Answer(
            query=query,
            answer=entry.answer if confident else None,
            score=best,
            confident=confident,
            question=entry.question,
            id=entry.id,
            reason=reason,
            alternatives=alternatives,
            threshold=self.threshold,
            margin=self.margin,
            gap_weight=self.gap_weight,
            confidence=confidence,
        )

    # ---------------------------------------------------------------- asking
    def ask(self, query: str, alternatives: int = 3, max_chars: int = MAX_QUERY_CHARS) -> Answer:
        """Answer one question; ``answer`` is None when the bot is not confident. See :class:`Answer`.

        Raises:
            QueryError: the query is empty, only spaces, longer than :data:`MAX_QUERY_CHARS`, or not text.
        """
        return self.ask_many([query], alternatives, max_chars)[0]

    def ask_many(self, queries: Sequence[str], alternatives: int = 3, max_chars: int = MAX_QUERY_CHARS) -> list[Answer]:
        """Answer many questions in one encoding pass (faster than :meth:`ask` in a loop)."""
        if isinstance(queries, str):
            raise QueryError("ask_many takes a list of queries, not one string (use ask)")
        texts = [self.check_query(q, max_chars) for q in queries]
        if not texts:
            return []
        if alternatives < 0:
            raise ConfigError(f"alternatives must be >= 0, not {alternatives}")
        # the runner-up answer is needed to decide (the margin, the gap weight) even when none is shown
        picks = self._candidates(self._embed(texts), max(2, alternatives + 1))
        return [self._decide(q, p, alternatives) for q, p in zip(texts, picks)]

    # ---------------------------------------------------------------- calibration
    def _expected_ids(self, expected: Sequence[str | None]) -> list[str | None]:
        ids = []
        by_answer = {e.answer: e.id for e in self.entries}
        for n, value in enumerate(expected, 1):
            if value is None or (isinstance(value, str) and not value.strip()):
                ids.append(None)
            elif value in self._code_of:
                ids.append(value)
            elif value in by_answer:
                ids.append(by_answer[value])
            else:
                raise DataError(f"expected answer {n}: {str(value)[:60]!r} is neither an id nor an answer of this FAQ")
        return ids

    def calibrate(
        self,
        queries: Sequence[str],
        expected: Sequence[str | None],
        objective: Objective = "balanced",
        target_precision: float = 0.95,
        margins: Sequence[float] = (0.0, 0.01, 0.02, 0.03, 0.05),
        gap_weights: Sequence[float] = CALIBRATION_GAP_WEIGHTS,
        target_accuracy: float = 0.90,
    ) -> float:
        """Choose the threshold, the ambiguity margin and the gap weight on labelled queries; set them and return the
        threshold.

        Args:
            queries: Questions, some in scope and ideally some out of scope.
            expected: Per query, the id or the answer text that is right, or None (or "") when out of scope.
            objective: ``balanced`` (default) maximises the mean of in-scope accuracy (answered and right) and
                out-of-scope recall (not answered); ``precision`` answers as many in-scope queries rightly as it
                can while at least ``target_precision`` of the answers it gives are right; ``accuracy`` abstains
                on as many out-of-scope queries as it can while in-scope accuracy stays at least
                ``target_accuracy`` (a bot that must keep answering its users, and says "I don't know" only
                where that costs no more than it allows).
            target_precision: For ``precision``.
            margins: The ambiguity margins to try with every threshold.
            gap_weights: The gap weights to try (see :class:`FAQBot`); ``(0,)`` keeps the best score alone.
            target_accuracy: For ``accuracy``.

        Every combination is scored on the queries; among equally good ones the smallest gap weight, then the
        smallest margin, then the middle threshold wins. The figures at the chosen setting are kept in
        :attr:`calibration` and saved with the bot.
        """
        if len(queries) != len(expected):
            raise ConfigError(f"{len(queries)} queries but {len(expected)} expected answers")
        if not queries:
            raise ConfigError("calibrate needs at least one labelled query")
        if objective not in ("balanced", "precision", "accuracy"):
            raise ConfigError(f"objective must be 'balanced', 'precision' or 'accuracy', not {objective!r}")
        if not 0 < target_precision <= 1:
            raise ConfigError(f"target_precision must be in (0, 1], not {target_precision}")
        if not 0 < target_accuracy <= 1:
            raise ConfigError(f"target_accuracy must be in (0, 1], not {target_accuracy}")
        weights = sorted({check_gap_weight(w) for w in gap_weights})
        if not weights:
            raise ConfigError("gap_weights must hold at least one weight")
        for m in margins:
            if not 0 <= m < 1:
                raise ConfigError(f"margins must be in [0, 1), not {m}")
        want = self._expected_ids(expected)
        texts = [self.check_query(q) for q in queries]
        picks = self._candidates(self._embed(texts, len(texts) >= 1_000), 2)
        best = np.array([p[0][1] for p in picks])
        gap = np.array([p[0][1] - p[1][1] if len(p) > 1 else np.inf for p in picks])
        lead = np.where(np.isfinite(gap), gap, 0.0)  # one answer only: the confidence is the best score
        right = np.array([w is not None and self.entries[p[0][0]].id == w for p, w in zip(picks, want)])
        in_scope = np.array([w is not None for w in want])
        n_in, n_out = int(in_scope.sum()), int((~in_scope).sum())

        def above(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
            """How many of ``values`` are >= each cut."""
            return len(values) - np.searchsorted(np.sort(values), cuts, side="left")

        options = []  # (key, gap weight, margin, threshold, in-scope acc., out-of-scope recall, precision, answered)
        for w in weights:
            conf = best + w * lead
            levels = np.unique(conf)[::-1]  # candidate thresholds: every confidence, high to low; then "answer none"
            lower = np.r_[levels[1:], levels[-1] - 0.01]
            cuts = np.r_[(levels + lower) / 2, levels[0] + 1e-6]  # between a level and the next, so ties fall together
            for m in sorted(set(margins)):
                eligible = gap >= m
                hits = above(conf[eligible & right], cuts)
                given = above(conf[eligible], cuts)
                wrongly = above(conf[eligible & ~in_scope], cuts)  # out-of-scope queries answered
                for t, h, g, x in zip(cuts, hits, given, wrongly):
                    acc = float(h / n_in) if n_in else None
                    oos = float((n_out - x) / n_out) if n_out else None
                    precision = float(h / g) if g else 1.0
                    if objective == "balanced":
                        key = (round(float(np.mean([v for v in (acc, oos) if v is not None])), 12),)
                    elif objective == "precision":
                        met = precision >= target_precision
                        key = (met, round(acc if met and acc is not None else precision, 12))
                    else:
                        met = acc is None or acc >= target_accuracy - 1e-12
                        key = (met, round((oos or 0.0) if met else acc, 12))
                    options.append((key, w, float(m), float(t), acc, oos, precision, int(g)))
        top = max(o[0] for o in options)
        tied = [o for o in options if o[0] == top]
        tied = [o for o in tied if o[1] == min(o[1] for o in tied)]  # the plainest rule that does as well
        tied = sorted((o for o in tied if o[2] == min(o[2] for o in tied)), key=lambda o: o[3])
        _, w, m, t, acc, oos, precision, given = tied[len(tied) // 2]  # the middle of the equally good thresholds
        if not n_out:
            logger.warning("calibrate: no out-of-scope queries, so nothing teaches the bot when to abstain")
        self.threshold, self.margin, self.gap_weight = t, m, w
        self.calibration = {
            "objective": objective,
            **({"target_precision": target_precision} if objective == "precision" else {}),
            **({"target_accuracy": target_accuracy} if objective == "accuracy" else {}),
            "threshold": round(t, 6),
            "margin": m,
            "gap_weight": w,
            "queries": len(texts),
            "in_scope": n_in,
            "out_of_scope": n_out,
            "in_scope_accuracy": None if acc is None else round(100 * acc, 2),
            "out_of_scope_recall": None if oos is None else round(100 * oos, 2),
            "precision": round(100 * precision, 2),
            "answered": given,
        }
        if objective == "precision" and precision < target_precision:
            logger.warning(
                "calibrate: no threshold reaches precision %.2f; the best is %.2f", target_precision, precision
            )
            self.calibration["target_met"] = False
        if objective == "accuracy" and acc is not None and acc < target_accuracy - 1e-12:
            logger.warning(
                "calibrate: no threshold keeps in-scope accuracy %.2f; the best is %.2f", target_accuracy, acc
            )
            self.calibration["target_met"] = False
        logger.info("calibrated: %s", self.calibration)
        return t

    # ---------------------------------------------------------------- editing
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def n_answers(self) -> int:
        """How many distinct answers (entries sharing an id count once)."""
        return len(self._code_of)

    def add(self, question: str, answer: str, id: str | None = None, tags: Sequence[str] = ()) -> FAQEntry:
        """Add one question (embedding only it). A question already in the FAQ with another answer is an error."""
        question = _text(question, "add", "question")
        answer = _text(answer, "add", "answer")
        key = _norm(question)
        if key in self._row_of:
            existing = self.entries[self._row_of[key]]
            if existing.answer == answer:
                return existing
            raise DataError(f"add: the question {question[:60]!r} is already in the FAQ with another answer")
        if id is None:
            id = next((e.id for e in self.entries if e.answer == answer), None)
            n = len(self._code_of) + 1
            while id is None or (id in self._answer_of and self._answer_of[id] != answer):
                id, n = f"entry-{n}", n + 1
        elif id in self._answer_of and self._answer_of[id] != answer:
            raise DataError(f"add: id {id!r} belongs to another answer")
        entry = FAQEntry(question, answer, str(id), tuple(tags))
        self._emb = np.vstack([self._emb, self._embed([question])])
        self.entries.append(entry)
        self._rebuild_keys()
        return entry

    def remove(self, question: str) -> FAQEntry:
        """Remove one question (matched ignoring case and spacing); the others keep their embeddings."""
        row = self._row_of.get(_norm(question)) if isinstance(question, str) else None
        if row is None:
            raise DataError(f"remove: the question {str(question)[:60]!r} is not in the FAQ")
        if len(self.entries) == 1:
            raise DataError("remove: the FAQ would be empty")
        entry = self.entries.pop(row)
        self._emb = np.delete(self._emb, row, axis=0)
        self._rebuild_keys()
        return entry

    # ---------------------------------------------------------------- saving
    def _fingerprint(self) -> np.ndarray:
        return self._embed(list(_PROBES))

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save the bot (entries, embeddings, threshold, calibration, model fingerprint) to a folder, atomically.

        Files: ``bot.json`` (settings), ``entries.json``, ``embeddings.npy`` and ``fingerprint.npy``; no pickle."""
        from sentsim import __version__
        from sentsim.loading import atomic_folder, check_output_folder

        target = check_output_folder(path, overwrite).resolve()
        with atomic_folder(target) as tmp:
            np.save(tmp / "embeddings.npy", self._emb, allow_pickle=False)
            np.save(tmp / "fingerprint.npy", self._fingerprint(), allow_pickle=False)
            entries = [
                {"question": e.question, "answer": e.answer, "id": e.id, "tags": list(e.tags)} for e in self.entries
            ]
            (tmp / "entries.json").write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
            settings = {
                "format": FORMAT_VERSION,
                "threshold": self.threshold,
                "margin": self.margin,
                "gap_weight": self.gap_weight,
                "answer_k": self.answer_k,
                "calibration": self.calibration,
                "index": self._index.kind,
                "model": {"base_model": self.model.config.base_model, "dimension": int(self._emb.shape[1])},
                "sentsim_version": __version__,
            }
            (tmp / "bot.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
        logger.info("saved the FAQ bot (%d questions) to %s", len(self.entries), target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, model: Any = None, **kwargs: Any) -> FAQBot:
        """Load a saved bot. With a model other than the one that embedded it (the bundled model when None), the
        questions are embedded again, and a warning says so."""
        folder = Path(path)
        if not (folder / "bot.json").is_file():
            raise ModelError(f"{folder}: not a saved FAQ bot (no bot.json)")
        try:
            settings = json.loads((folder / "bot.json").read_text(encoding="utf-8"))
            rows = json.loads((folder / "entries.json").read_text(encoding="utf-8"))
            emb = np.load(folder / "embeddings.npy", allow_pickle=False)
            probe = np.load(folder / "fingerprint.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{folder}: a damaged FAQ bot ({str(exc).splitlines()[0]})") from None
        if settings.get("format") != FORMAT_VERSION:
            raise ModelError(
                f"{folder}: FAQ bot format {settings.get('format')!r}, this sentsim reads {FORMAT_VERSION}"
            )
        entries = [
            FAQEntry(r["question"], r["answer"], r["id"], tuple(r.get("tags") or ()))
            for r in rows
            if isinstance(r, dict) and {"question", "answer", "id"} <= set(r)
        ]
        if len(entries) != len(rows) or emb.shape[0] != len(entries):
            raise ModelError(f"{folder}: entries.json and embeddings.npy do not match ({len(rows)} vs {emb.shape[0]})")
        if model is None:
            from sentsim.encoders import load

            model = load()
        kwargs.setdefault("index", settings.get("index", "auto"))
        kwargs.setdefault("answer_k", settings.get("answer_k", 1))
        kwargs.setdefault("gap_weight", settings.get("gap_weight", 0.0))  # 0 in bots saved before it existed
        bot = cls(entries, model, threshold=settings["threshold"], margin=settings["margin"], embeddings=emb, **kwargs)
        now = bot._fingerprint()
        if now.shape != probe.shape or not np.allclose(now, probe, atol=1e-3):
            logger.warning("%s: embedded by another model; embedding its %d questions again", folder, len(entries))
            bot._emb = bot._embed([e.question for e in entries], len(entries) >= 1_000)
            if settings.get("calibration"):
                logger.warning("%s: its threshold was calibrated for the other model; calibrate again", folder)
        bot.calibration = settings.get("calibration")
        return bot

    def __repr__(self) -> str:
        return (
            f"FAQBot({len(self.entries)} questions, {len(self._code_of)} answers, threshold={self.threshold:.4f}, "
            f"margin={self.margin}"
            + (f", gap_weight={self.gap_weight}" if self.gap_weight else "")
            + (f", answer_k={self.answer_k})" if self.answer_k > 1 else ")")
        )
