"""Reading and validating sentence-pair files (CSV, TSV, JSON lines, Parquet).

:func:`read_pairs` turns a file of sentence pairs, with or without a label, into a :class:`PairData`. Every
problem with the input is a :class:`~sentsim.errors.DataError` whose one-line message names the file and,
where it applies, the row and column at fault. Rows are 1-based line numbers in the file (a header is row
1); for Parquet and JSON arrays they are 1-based record numbers.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.csv"
    >>> _ = path.write_text("sentence1,sentence2,score\\nA cat.,A dog.,2.5\\n", encoding="utf-8")
    >>> data = read_pairs(path, score_range=(0, 5))
    >>> (len(data), data.kind, data.labels, data.rows)
    (1, 'score', [0.5], [2])
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import pyarrow.parquet

from sentsim.errors import DataError

__all__ = [
    "LabelKind",
    "PairData",
    "read_pairs",
    "read_sentences",
    "open_table",
    "read_records",
    "parse_columns",
    "parse_score_range",
]

logger = logging.getLogger(__name__)

LabelKind = Literal["score", "binary", "none"]

KNOWN_NAMES: dict[str, tuple[str, ...]] = {  # lower-case column names read_pairs recognises in a header
    "first sentence": ("sentence1", "sentence_1", "sentence_a", "text1", "text_a", "s1", "question1",
                       "anchor", "query", "#1 string"),
    "second sentence": ("sentence2", "sentence_2", "sentence_b", "text2", "text_b", "s2", "question2",
                        "positive", "#2 string", "matched_question"),
    "label": ("score", "label", "similarity", "similarity_score", "relatedness_score", "gold", "quality",
              "is_duplicate"),
}  # fmt: skip
_FORMATS = {"csv": "csv", "tsv": "tsv", "txt": "tsv", "jsonl": "json", "json": "json", "parquet": "parquet"}


@dataclass
class PairData:
    """Sentence pairs read from one file, with labels scaled to 0..1 (or 0.0/1.0 for binary labels).

    Args:
        sentence1: The first sentence of each pair.
        sentence2: The second sentence of each pair.
        labels: One label per pair, or None when the file has no label column.
        kind: ``"score"``, ``"binary"`` or ``"none"``.
        source: The file path as given, for messages.
        rows: The 1-based row of each pair in the source file.
        label_column: The name of the label column used, or None.
        negatives: For unlabelled pairs: a hard negative per pair (a sentence like ``sentence1`` that does not mean
            the same), used by the multiple-negatives ranking loss beside the in-batch negatives.
        groups: For unlabelled pairs: the group of each pair (an FAQ answer, an intent) that its two sentences
            share. The multiple-negatives ranking loss then leaves out of each pair's softmax the in-batch sentences
            of its own group, which are paraphrases, not negatives.
        negative_groups: The group of each hard negative, so that another pair's hard negative from this pair's
            group is left out too.

    Example:
        >>> d = PairData(["a", "b"], ["c", "d"], [1.0, 0.0], "binary", "x.csv", [2, 3], "label")
        >>> (len(d), d.select([1]).rows, d.to_dataset().column_names)
        (2, [3], ['sentence1', 'sentence2', 'label'])
    """

    sentence1: list[str]
    sentence2: list[str]
    labels: list[float] | None
    kind: LabelKind
    source: str
    rows: list[int]
    label_column: str | None
    negatives: list[str] | None = None
    groups: list[str] | None = None
    negative_groups: list[str] | None = None

    def __post_init__(self) -> None:
        if self.negatives is not None and (self.kind != "none" or len(self.negatives) != len(self.sentence1)):
            raise ValueError("negatives need unlabelled pairs (kind 'none'), one per pair")
        if self.groups is not None and (self.kind != "none" or len(self.groups) != len(self.sentence1)):
            raise ValueError("groups need unlabelled pairs (kind 'none'), one per pair")
        if self.negative_groups is not None and (
            self.groups is None or self.negatives is None or len(self.negative_groups) != len(self.negatives)
        ):
            raise ValueError("negative_groups need groups and negatives, one per pair")

    def __len__(self) -> int:
        return len(self.sentence1)

    def to_dataset(self) -> datasets.Dataset:
        """Build an in-memory Dataset: sentence1, sentence2 and "score" or "label" (float64) when labelled."""
        data: dict[str, list[Any]] = {"sentence1": self.sentence1, "sentence2": self.sentence2}
        if self.negatives is not None:
            data["negative"] = self.negatives
        if self.labels is not None and self.kind != "none":
            data["score" if self.kind == "score" else "label"] = [float(x) for x in self.labels]
        features = {k: datasets.Value("float64" if k in ("score", "label") else "string") for k in data}
        if self.groups is not None:  # the loss's label: the pair's group code[, its hard negative's group code]
            code: dict[str, int] = {}
            columns = [self.groups] + ([self.negative_groups] if self.negative_groups is not None else [])
            data["label"] = [[code.setdefault(g, len(code)) for g in row] for row in zip(*columns)]
            features["label"] = datasets.Sequence(datasets.Value("int64"), length=len(columns))
        return datasets.Dataset.from_dict(data, features=datasets.Features(features))

    def select(self, indices: Iterable[int]) -> PairData:
        """Return the pairs at ``indices`` (in that order), keeping source, kind, rows and label column."""
        idx = [int(i) for i in indices]
        labels = None if self.labels is None else [self.labels[i] for i in idx]
        s1, s2, rows = ([v[i] for i in idx] for v in (self.sentence1, self.sentence2, self.rows))
        negatives, groups, negative_groups = (
            None if v is None else [v[i] for i in idx] for v in (self.negatives, self.groups, self.negative_groups)
        )
        return PairData(
            s1, s2, labels, self.kind, self.source, rows, self.label_column, negatives, groups, negative_groups
        )


def _show(text: Any, limit: int = 40) -> str:
    s = str(text).replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _fail(source: str, message: str, row: int | None = None, column: str | None = None) -> DataError:
    where = "".join([f": row {row}" if row is not None else "", f", column {column}" if column else ""])
    return DataError(f"{source}{where}: {message}".replace("\n", " ").replace("\r", " "))


def _number(value: Any) -> float | None:
    try:
        return float(value if isinstance(value, (bool, int, float)) else str(value).strip())
    except ValueError:
        return None


def parse_columns(spec: str | Sequence[str] | None) -> list[str] | None:
    """Split a column spec like ``"sentence1,sentence2,score"`` (or a list) into 2 or 3 stripped names.

    Args:
        spec: A comma-separated string, a sequence of names or 0-based positions, or None.

    Example:
        >>> parse_columns(" #1 String, #2 String ,Quality")
        ['#1 String', '#2 String', 'Quality']
    """
    if spec is None:
        return None
    names = [str(n).strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    if len(names) not in (2, 3) or not all(names):
        raise DataError(f"columns {_show(spec, 80)!r}: give 2 names (sentence1,sentence2) or 3 (and a label)")
    if len(set(names)) != len(names):
        raise DataError(f"columns {_show(spec, 80)!r}: a column is named twice")
    return names


def parse_score_range(spec: str | tuple | None) -> tuple[float, float] | None:
    """Parse a declared label range such as ``"0,5"``, ``"0:5"`` or ``(0, 5)`` into ``(low, high)``.

    Args:
        spec: The range as text or a pair of numbers, or None for no declared range.

    Example:
        >>> parse_score_range("0:5"), parse_score_range((1, 2))
        ((0.0, 5.0), (1.0, 2.0))
    """
    if spec is None:
        return None
    parts = spec.replace(":", ",").split(",") if isinstance(spec, str) else list(spec) if spec else []
    values = [_number(p) for p in parts] if len(parts) == 2 else []
    low, high = (values + [None, None])[:2]
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        raise DataError(f"score range {_show(spec, 60)!r}: give two numbers low,high such as 0,5")
    if not low < high:
        raise DataError(f"score range {_show(spec, 60)!r}: low must be less than high")
    return low, high


def _decode(source: str, path: Path) -> str:
    """Read a text file as UTF-8 (without a BOM), naming the line of the first byte that is not UTF-8."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except OSError as exc:
        raise _fail(source, f"cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(source, f"line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    if not text.strip():
        raise _fail(source, "the file is empty")
    return text


def _read_delimited(source: str, text: str, tsv: bool) -> list[tuple[int, list[str]]]:
    """Parse CSV/TSV text into (line number, cells) records, skipping blank lines."""
    opts: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {"strict": True}
    old_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # the text is in memory already; read_pairs checks max_chars per sentence
    reader = csv.reader(io.StringIO(text, newline=""), **opts)
    records, start = [], 1
    try:
        for cells in reader:
            if cells and not (len(cells) == 1 and not cells[0].strip()):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _fail(source, f"bad {'TSV' if tsv else 'CSV'} ({exc})", row=start) from None
    finally:
        csv.field_size_limit(old_limit)
    return records


def _read_json(source: str, path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Parse JSON lines (or one JSON array of objects) into (row, object) records."""
    text = _decode(source, path)
    array = text.lstrip().startswith("[")
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    chunks = [(1, text)] if array else lines
    items: list[tuple[int, Any]] = []
    for n, chunk in chunks:
        try:
            value = json.loads(chunk)
        except json.JSONDecodeError as exc:
            raise _fail(source, f"line {n + exc.lineno - 1} is not valid JSON ({exc.msg})") from None
        items.extend(enumerate(value, 1) if array and isinstance(value, list) else [(n, value)])
    for n, item in items:
        if not isinstance(item, dict):
            raise _fail(source, f"expected a JSON object, found {type(item).__name__}", row=n)
    return (list(items[0][1]) if items else []), items


def _read_parquet(source: str, path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    try:
        table = pyarrow.parquet.read_table(path)
    except (ValueError, OSError) as exc:
        msg = f"not a readable Parquet file ({_show(exc, 99)})"
        raise _fail(source, "the file is empty" if path.stat().st_size == 0 else msg) from None
    return table.column_names, list(enumerate(table.to_pylist(), 1))


def _is_header(first: list[str], spec: list[str] | None) -> bool:
    lowered = [c.strip().lower() for c in first]
    if spec is not None and (any(n.lower() in lowered for n in spec) or not all(n.isdigit() for n in spec)):
        return True  # names were given, so the first row must hold them
    label_pos = (int(spec[2]) if len(spec) == 3 else None) if spec else (2 if len(first) == 3 else None)
    if label_pos is not None and label_pos < len(first) and _number(first[label_pos]) is None:
        return True
    return all(any(c in KNOWN_NAMES[role] for c in lowered) for role in ("first sentence", "second sentence"))


def _resolve(source: str, names: list[str], has_header: bool, spec: list[str] | None) -> list[int]:
    """Map the requested (or known) column names to positions in ``names``."""
    found = ", ".join(_show(n) for n in names) if has_header else f"no header, positions 0..{len(names) - 1}"
    lowered = [n.strip().lower() for n in names]
    if spec is None:
        if not has_header:
            if len(names) not in (2, 3):
                raise _fail(source, f"{len(names)} columns and no header; pass columns, e.g. columns='0,1,2'")
            return list(range(len(names)))
        picked: list[int] = []
        for role, known in KNOWN_NAMES.items():
            pos = next((i for i, n in enumerate(lowered) if n in known), None)
            if pos is None and role != "label":
                msg = f"no {role} column; expected one of {', '.join(known)}; found: {found}"
                raise _fail(source, f"{msg}; pass columns, e.g. columns='sentence1,sentence2,score'")
            picked += [] if pos is None else [pos]
        return picked
    positions = []
    for name in spec:
        exact = [i for i, n in enumerate(names) if n == name]
        pos = (exact or [i for i, n in enumerate(lowered) if n == name.lower()] or [None])[0]
        if pos is None and name.isdigit() and int(name) < len(names):
            pos = int(name)
        if pos is None:
            raise _fail(source, f"no column {name!r}; expected {','.join(spec)}, found: {found}")
        positions.append(pos)
    return positions


def open_table(path: str | os.PathLike, max_rows: int | None = None) -> tuple[str, Path, str]:
    """Check that ``path`` is a readable table file: ``(source name, path, format)``, or a one-line DataError."""
    source, file = os.fspath(path), Path(path)
    if not file.is_file():
        raise _fail(source, "is a directory, not a file" if file.is_dir() else "file not found")
    fmt = _FORMATS.get(file.suffix.lower().lstrip("."))
    if fmt is None:
        raise _fail(source, f"unknown file type {file.suffix!r}; expected .{', .'.join(_FORMATS)}")
    if max_rows is not None and max_rows < 1:
        raise _fail(source, f"max_rows must be at least 1, got {max_rows}")
    return source, file, fmt


def read_records(
    source: str, file: Path, fmt: str, is_header: Callable[[list[str]], bool], max_rows: int | None = None
) -> tuple[list[str], list[tuple[int, Any]], bool]:
    """The rows of a table file: ``(column names, [(1-based row, values or record)], has_header)``.

    CSV/TSV rows are lists of strings, checked to have as many fields as the first row; ``is_header(first row)``
    says whether that row names the columns (else they are named ``"0"``, ``"1"``, ...). JSONL and Parquet rows
    are dicts. A file with no data rows is a one-line DataError."""
    if fmt in ("json", "parquet"):
        names, records = (_read_parquet if fmt == "parquet" else _read_json)(source, file)
        has_header = True
    else:
        cells = _read_delimited(source, _decode(source, file), fmt == "tsv")
        has_header = bool(is_header(cells[0][1]))
        names = cells[0][1] if has_header else [str(i) for i in range(len(cells[0][1]))]
        cells = cells[: None if max_rows is None else max_rows + has_header]
        for row, values in cells:
            if len(values) != len(names):
                raise _fail(source, f"{len(values)} fields, expected {len(names)}", row)
        records = cells[1:] if has_header else cells
    if not records:
        raise _fail(source, "the file has a header but no rows" if fmt in ("csv", "tsv") else "no rows")
    return names, records, has_header


def read_pairs(
    path: str | os.PathLike,
    columns: str | Sequence[str] | None = None,
    score_range: tuple[float, float] | None = None,
    header: bool | None = None,
    max_rows: int | None = None,
    max_chars: int = 100_000,
) -> PairData:
    """Read and validate a file of sentence pairs (.csv, .tsv/.txt, .jsonl/.json, .parquet).

    Args:
        path: The file to read.
        columns: Two names (no label) or three (with label), as ``"a,b,c"`` or a list; in a file without a
            header they may be 0-based positions such as ``"3,4,0"``. None picks known names, or else the 2
            or 3 columns in order.
        score_range: The declared range of the label column (e.g. ``(0, 5)`` for STS-B), scaled to 0..1. When
            None, labels that are all 0 or 1 are binary and others must lie in 0..1.
        header: Whether a CSV/TSV file has a header row; None detects it.
        max_rows: Read at most this many pairs.
        max_chars: The longest sentence allowed; a longer one is an error naming its row.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.tsv"
        >>> _ = p.write_bytes(b"\\xef\\xbb\\xbfQuality\\t#1 String\\t#2 String\\r\\n1\\tHi \\"u\\tHey\\r\\n")
        >>> d = read_pairs(p)
        >>> (d.sentence1, d.kind, d.label_column)
        (['Hi "u'], 'binary', 'Quality')
    """
    source, file, fmt = open_table(path, max_rows)
    spec, limits = parse_columns(columns), parse_score_range(score_range)
    detect = (lambda first: _is_header(first, spec)) if header is None else (lambda first: header)
    names, records, has_header = read_records(source, file, fmt, detect, max_rows)
    positions = _resolve(source, names, has_header, spec)
    keys: list[Any] = [names[i] for i in positions] if fmt in ("json", "parquet") else positions
    described = [f"{names[i]!r}" if has_header else str(i) for i in positions]
    records = records[:max_rows]
    s1, s2, raw_labels, rows = [], [], [], []  # type: ignore[var-annotated]
    for row, record in records:
        missing = [k for k in keys if k not in record] if isinstance(record, dict) else []
        if missing:
            raise _fail(source, f"no key {missing[0]!r}", row=row)
        values = [record[k] for k in keys]
        for value, column, out in zip(values[:2], described, (s1, s2)):
            out.append(_sentence(value, source, row, column, max_chars))
        if len(values) == 3:
            number = _number(values[2])
            if number is None or not math.isfinite(number):
                raise _fail(source, f"label {_show(values[2])!r} is not a finite number", row, described[2])
            raw_labels.append(number)
        rows.append(row)
    label_column = names[positions[2]] if len(positions) == 3 else None
    if label_column is None:
        labels, kind = None, "none"
    elif limits is None and all(v in (0.0, 1.0) for v in raw_labels):
        labels, kind = raw_labels, "binary"
    else:
        low, high = limits or (0.0, 1.0)
        for row, value in zip(rows, raw_labels):
            if not low <= value <= high:
                hint = (min(0, math.floor(min(raw_labels))), max(1, math.ceil(max(raw_labels))))
                how = f"declare the range with score_range={hint} / --score-range {hint[0]},{hint[1]}"
                msg = f"label {value:g} is outside the declared range {low:g}..{high:g}; {how}"
                raise _fail(source, msg, row, described[2])
        labels, kind = [(v - low) / (high - low) for v in raw_labels], "score"
    logger.info("read %d pairs from %s (labels: %s)", len(s1), source, kind)
    return PairData(s1, s2, labels, kind, source, rows, label_column)


SENTENCE_NAMES = ("text", "sentence", "sentences", "question", "utterance", "query")  # one-text columns


def _sentence(value: Any, source: str, row: int, column: str, max_chars: int) -> str:
    """``value`` if it is a non-empty text of at most ``max_chars`` characters, else a DataError naming the place."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(source, "the sentence is empty", row=row, column=column)
    if not isinstance(value, str):
        raise _fail(source, f"expected text, found {type(value).__name__}", row, column)
    if len(value) > max_chars:
        raise _fail(source, f"{len(value)} characters, over max_chars={max_chars}", row, column)
    return value


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def read_sentences(
    path: str | os.PathLike,
    columns: str | Sequence[str] | None = None,
    max_rows: int | None = None,
    max_chars: int = 100_000,
) -> list[str]:
    """The distinct sentences of a file, in the order they first appear (unlabelled text, e.g. for distillation).

    A ``.txt`` file holds one sentence per line (blank lines are skipped). A CSV, TSV, JSONL or Parquet table
    gives the sentences of ``columns`` (names, or 0-based positions in a file without a header), by default of
    every sentence column read_pairs knows (``sentence1``, ``#2 String``, ...) or else a ``text``, ``sentence``
    or ``question`` column; in a headerless table with a column of numbers (STS-B's sentence, sentence, score),
    the columns that are not numbers.

    Args:
        path: The file to read.
        columns: The text columns, as ``"a,b"`` or a list of any length.
        max_rows: Read at most this many lines or rows.
        max_chars: The longest sentence allowed; a longer one is an error naming its row.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
        >>> _ = p.write_text("text,category\\nHi there,a\\nHow are you?,b\\nHi there,a\\n")
        >>> read_sentences(p)
        ['Hi there', 'How are you?']
    """
    source, file = os.fspath(path), Path(path)
    if max_rows is not None and max_rows < 1:
        raise _fail(source, f"max_rows must be at least 1, got {max_rows}")
    wanted = None
    if columns is not None:
        wanted = [str(n).strip() for n in (columns.split(",") if isinstance(columns, str) else columns)]
    if wanted is not None and not (wanted and all(wanted)):
        raise DataError(f"columns {_show(columns, 80)!r}: give one or more column names or positions")
    found: list[str] = []
    if file.suffix.lower() == ".txt":
        if not file.is_file():
            raise _fail(source, "is a directory, not a file" if file.is_dir() else "file not found")
        for row, line in enumerate(_decode(source, file).splitlines(), start=1):
            if line.strip():
                if len(line) > max_chars:
                    raise _fail(source, f"{len(line)} characters, over max_chars={max_chars}", row)
                found.append(line.strip())
                if max_rows is not None and len(found) >= max_rows:
                    break
    else:
        source, file, fmt = open_table(path, max_rows)
        known = KNOWN_NAMES["first sentence"] + KNOWN_NAMES["second sentence"] + SENTENCE_NAMES
        if wanted is None:
            detect = lambda first: any(c.strip().lower() in known for c in first)  # noqa: E731
        else:
            detect = lambda first: not all(n.isdigit() for n in wanted) or any(n in first for n in wanted)  # noqa: E731
        names, records, has_header = read_records(source, file, fmt, detect, max_rows)
        lowered = [n.strip().lower() for n in names]
        listed = ", ".join(_show(n) for n in names) if has_header else f"no header, positions 0..{len(names) - 1}"
        sample = [record for _, record in records[:50]] if fmt not in ("json", "parquet") else []
        numeric = [i for i in range(len(names)) if sample and all(i < len(r) and _is_number(r[i]) for r in sample)]
        if wanted is None and not has_header and numeric and len(numeric) < len(names):
            # a headerless table whose first row is data, with a number column (STS-B: two sentences and a score):
            # its text columns are the others; an unknown header has no column of numbers from its first row on
            positions = [i for i in range(len(names)) if i not in numeric]
        elif wanted is None:
            positions = [i for i, n in enumerate(lowered) if n in known]
            if not positions:
                msg = f"no sentence column (e.g. text, sentence1, question); found: {listed}; pass columns"
                raise _fail(source, msg)
        else:
            positions = []
            for name in wanted:
                pos = next((i for i, n in enumerate(names) if n == name), None)
                if pos is None and name.isdigit() and int(name) < len(names):
                    pos = int(name)
                if pos is None:
                    raise _fail(source, f"no column {name!r}; found: {listed}")
                positions.append(pos)
        keys: list[Any] = [names[i] for i in positions] if fmt in ("json", "parquet") else positions
        for row, record in records[:max_rows]:
            for key, pos in zip(keys, positions):
                if isinstance(record, dict) and key not in record:
                    raise _fail(source, f"no key {key!r}", row=row)
                value = record[key]
                column = repr(names[pos]) if has_header else str(pos)
                found.append(_sentence(value, source, row, column, max_chars).strip())
    sentences = list(dict.fromkeys(found))
    logger.info("read %d distinct sentences from %s", len(sentences), source)
    return sentences
