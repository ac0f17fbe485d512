"""Tests for sentsim.data: reading and validating sentence-pair files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from sentsim.data import PairData, parse_columns, parse_score_range, read_pairs
from sentsim.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def fails(path: Path | str, *parts: str, **kwargs) -> str:
    """Read ``path`` expecting a one-line DataError that names the file and holds every part."""
    with pytest.raises(DataError) as info:
        read_pairs(path, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and "\r" not in message
    assert str(path) in message
    for part in parts:
        assert part in message, message
    return message


# ---------------------------------------------------------------- formats


def test_csv_with_header_and_score_range(tmp_path):
    path = write(tmp_path, "pairs.csv", "sentence1,sentence2,score\nA cat.,A dog.,2.5\nHi,Hello,5\n")
    data = read_pairs(path, score_range=(0, 5))
    assert isinstance(data, PairData)
    assert (len(data), data.kind, data.label_column, data.source) == (2, "score", "score", str(path))
    assert data.sentence1 == ["A cat.", "Hi"] and data.sentence2 == ["A dog.", "Hello"]
    assert data.labels == [0.5, 1.0]
    assert data.rows == [2, 3]


def test_csv_bom_crlf_quoted_commas_round_trip(tmp_path):
    pairs = [
        ("Hello, world", 'She said "yes", then left.', "0.25"),
        ("Café, naïve — ünïcode", "  leading and trailing spaces  ", "1"),
        ("A line\nbreak inside", "NA", "0.5"),
        ("null", "plain", "0"),
    ]
    path = tmp_path / "pairs.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["sentence1", "sentence2", "score"])
        writer.writerows(pairs)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfsentence1") and b"\r\n" in path.read_bytes()
    data = read_pairs(path)
    assert data.sentence1 == [p[0] for p in pairs]
    assert data.sentence2 == [p[1] for p in pairs]
    assert data.labels == [0.25, 1.0, 0.5, 0.0]
    assert data.kind == "score"
    assert data.rows == [2, 3, 4, 6]  # the quoted line break makes row 4 span two lines


def test_headerless_csv_three_columns_is_stsb_like(tmp_path):
    path = write(tmp_path, "stsb.csv", "A plane.,An air plane.,5.0\r\nA man.,A woman.,1.2\r\n")
    data = read_pairs(path, score_range="0,5")
    assert data.rows == [1, 2]
    assert data.label_column == "2"
    assert data.labels == pytest.approx([1.0, 0.24])


def test_headerless_two_columns_has_no_labels(tmp_path):
    data = read_pairs(write(tmp_path, "p.csv", "a b,c d\ne f,g h\n"))
    assert (data.kind, data.labels, data.label_column, len(data)) == ("none", None, None, 2)
    assert data.to_dataset().column_names == ["sentence1", "sentence2"]


def test_header_flag_forces_choice(tmp_path):
    path = write(tmp_path, "p.csv", "text1,text2\nthird,fourth\n")
    assert read_pairs(path).sentence1 == ["third"]
    assert read_pairs(path, header=True).sentence1 == ["third"]
    assert read_pairs(path, header=False).sentence1 == ["text1", "third"]
    assert read_pairs(path, header=False, columns="1,0").sentence1 == ["text2", "fourth"]
    unknown = write(tmp_path, "u.csv", "first one,second one\nthird,fourth\n")
    assert read_pairs(unknown).sentence1 == ["first one", "third"]  # no known names: no header
    fails(unknown, "no first sentence column", "found: first one, second one", header=True)


def test_known_names_are_case_insensitive_and_extra_columns_ignored(tmp_path):
    path = write(tmp_path, "p.csv", "id,Sentence1,SENTENCE2,Label\n7,a,b,1\n8,c,d,0\n")
    data = read_pairs(path)
    assert (data.sentence1, data.sentence2, data.labels) == (["a", "c"], ["b", "d"], [1.0, 0.0])
    assert (data.kind, data.label_column) == ("binary", "Label")


def test_tsv_msrp_like_with_bom_crlf_and_unbalanced_quotes(tmp_path):
    text = (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
        '1\t1\t2\tHe called "the witness, of\tReferring to "him\r\n'
        "0\t3\t4\tOne\tTwo\r\n"
    )
    path = write(tmp_path, "msrp.tsv", text)
    for columns in ("#1 String,#2 String,Quality", ["#1 String", "#2 String", "Quality"], None):
        data = read_pairs(path, columns=columns)
        assert data.sentence1 == ['He called "the witness, of', "One"]
        assert data.sentence2 == ['Referring to "him', "Two"]
        assert (data.labels, data.kind, data.rows, data.label_column) == (
            [1.0, 0.0],
            "binary",
            [2, 3],
            "Quality",
        )


def test_txt_is_tsv_and_positions_select_columns(tmp_path):
    path = write(tmp_path, "p.txt", "1\tx\ty\tfirst\tsecond\n0\tx\ty\tthird\tfourth\n")
    data = read_pairs(path, columns="3,4,0")
    assert data.sentence1 == ["first", "third"] and data.labels == [1.0, 0.0]
    assert data.rows == [1, 2]


def test_jsonl_and_json_lines(tmp_path):
    lines = [
        {"sentence1": "a", "sentence2": "b", "score": 4},
        {"sentence1": "c", "sentence2": "d", "score": 0},
    ]
    for name in ("p.jsonl", "p.json"):
        path = write(tmp_path, name, "\n".join(json.dumps(x) for x in lines) + "\n\n")
        data = read_pairs(path, score_range=(0, 5))
        assert (data.sentence1, data.labels, data.rows) == (["a", "c"], [0.8, 0.0], [1, 2])


def test_json_array_and_bool_labels(tmp_path):
    items = [
        {"question1": "a", "question2": "b", "is_duplicate": True},
        {"question1": "c", "question2": "d", "is_duplicate": False},
    ]
    data = read_pairs(write(tmp_path, "p.json", json.dumps(items, indent=2)))
    assert (data.sentence1, data.labels, data.kind, data.rows) == (["a", "c"], [1.0, 0.0], "binary", [1, 2])


def test_parquet(tmp_path):
    path = tmp_path / "p.parquet"
    frame = pd.DataFrame({"anchor": ["a", "c", "e"], "positive": ["b", "d", "f"], "similarity": [0.1, 0.9, 0.5]})
    frame.to_parquet(path)
    data = read_pairs(path)
    assert (data.sentence1, data.sentence2, data.labels) == (
        ["a", "c", "e"],
        ["b", "d", "f"],
        [0.1, 0.9, 0.5],
    )
    assert (data.kind, data.label_column, data.rows) == ("score", "similarity", [1, 2, 3])
    assert read_pairs(path, columns="anchor,positive").kind == "none"
    assert len(read_pairs(path, max_rows=2)) == 2


def test_to_dataset_columns_and_dtypes(tmp_path):
    scored = read_pairs(write(tmp_path, "s.csv", "s1,s2,score\na,b,3\n"), score_range=(0, 5)).to_dataset()
    assert scored.column_names == ["sentence1", "sentence2", "score"]
    assert [scored.features[c].dtype for c in scored.column_names] == ["string", "string", "float64"]
    assert scored[0] == {"sentence1": "a", "sentence2": "b", "score": 0.6}
    binary = read_pairs(write(tmp_path, "b.csv", "s1,s2,label\na,b,1\nc,d,0\n")).to_dataset()
    assert binary.column_names == ["sentence1", "sentence2", "label"]
    assert binary.features["label"].dtype == "float64" and binary["label"] == [1.0, 0.0]


def test_binary_needs_only_zero_and_one_and_no_declared_range(tmp_path):
    path = write(tmp_path, "b.csv", "a,b,1\nc,d,0.0\ne,f,1.0\n")
    assert read_pairs(path).kind == "binary"
    declared = read_pairs(path, score_range=(0, 1))
    assert (declared.kind, declared.labels) == ("score", [1.0, 0.0, 1.0])
    assert read_pairs(write(tmp_path, "s.csv", "a,b,1\nc,d,0.5\n")).kind == "score"


def test_max_rows_and_select(tmp_path):
    path = write(tmp_path, "p.csv", "sentence1,sentence2,score\n" + "".join(f"a{i},b{i},{i % 2}\n" for i in range(10)))
    data = read_pairs(path, max_rows=3)
    assert (len(data), data.rows) == (3, [2, 3, 4])
    subset = read_pairs(path).select([4, 0])
    assert (subset.sentence1, subset.labels, subset.rows) == (["a4", "a0"], [0.0, 0.0], [6, 2])
    assert (subset.kind, subset.source, subset.label_column) == ("binary", str(path), "score")
    jsonl = write(tmp_path, "p.jsonl", "".join(json.dumps({"s1": "a", "s2": "b"}) + "\n" for _ in range(5)))
    assert len(read_pairs(jsonl, max_rows=4)) == 4


def test_max_rows_skips_bad_rows_after_the_limit(tmp_path):
    path = write(tmp_path, "p.csv", "a,b,0.5\nc,d,0.5\ne,f,oops,extra\n")
    assert len(read_pairs(path, max_rows=2)) == 2


# ---------------------------------------------------------------- parse helpers


def test_parse_columns():
    assert parse_columns(None) is None
    assert parse_columns(" a , b ") == ["a", "b"]
    assert parse_columns(["#1 String", "#2 String", "Quality"]) == ["#1 String", "#2 String", "Quality"]
    for bad in ("a", "a,b,c,d", "a,,b", "a,a", []):
        with pytest.raises(DataError):
            parse_columns(bad)


def test_parse_score_range():
    assert parse_score_range(None) is None
    assert parse_score_range("0,5") == (0.0, 5.0)
    assert parse_score_range(" 1 : 2.5 ") == (1.0, 2.5)
    assert parse_score_range((0, 5)) == (0.0, 5.0)
    for bad in ("5,0", "1,1", "a,b", "1", "0,5,6", (0, math.inf), ("x", 1)):
        with pytest.raises(DataError) as info:
            parse_score_range(bad)
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


# ---------------------------------------------------------------- bad input


def test_missing_file_directory_and_unknown_extension(tmp_path):
    fails(tmp_path / "nope.csv", "not found")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    fails(folder, "directory")
    fails(write(tmp_path, "p.xlsx", "a,b\n"), "unknown file type '.xlsx'", ".csv")


@pytest.mark.parametrize("name", ["e.csv", "e.tsv", "e.jsonl", "e.parquet"])
@pytest.mark.parametrize("content", [b"", b"  \r\n\n\t \n"], ids=["zero-bytes", "whitespace"])
def test_empty_files(tmp_path, name, content):
    fails(write(tmp_path, name, content), "empty")


def test_header_only(tmp_path):
    fails(write(tmp_path, "h.csv", "\ufeffsentence1,sentence2,score\r\n"), "header but no rows")
    fails(write(tmp_path, "h.tsv", "sentence1\tsentence2\n\n"), "header but no rows")
    path = tmp_path / "h.parquet"
    pd.DataFrame({"sentence1": pd.Series([], dtype=str), "sentence2": pd.Series([], dtype=str)}).to_parquet(path)
    fails(path, "no rows")


def test_wrong_columns_say_expected_and_found(tmp_path):
    path = write(tmp_path, "pairs.csv", "sentence1,sentence2,c\nx,y,1\n")
    message = fails(path, columns="sentence1,sentence2,score")
    assert message == f"{path}: no column 'score'; expected sentence1,sentence2,score, found: sentence1, sentence2, c"
    fails(
        write(tmp_path, "q.csv", "question,answer,grade\nx,y,z\n"),
        "no first sentence column",
        "found: question",
    )
    fails(
        write(tmp_path, "h.csv", "x,y\n"),
        "no column 'sentence1'",
        "no header",
        columns="sentence1,sentence2",
        header=False,
    )
    fails(write(tmp_path, "j.jsonl", '{"a": "x", "b": "y"}\n'), "no first sentence column", "found: a, b")
    fails(write(tmp_path, "r.csv", "a,b,c\n"), "no column '7'", columns="0,1,7", header=False)


def test_headerless_file_with_other_column_counts_needs_columns(tmp_path):
    fails(write(tmp_path, "four.csv", "a,b,1,x\n"), "4 columns", "pass columns")


@pytest.mark.parametrize("value", ["high", "nan", "inf", "-Infinity", ""])
def test_bad_score_names_row_and_column(tmp_path, value):
    path = write(tmp_path, "p.csv", f"sentence1,sentence2,score\na,b,0.5\nc,d,{value}\n")
    fails(path, "row 3", "column 'score'", "not a finite number")


def test_bad_score_in_jsonl_and_parquet(tmp_path):
    fails(write(tmp_path, "p.jsonl", '{"s1": "a", "s2": "b", "score": null}\n'), "row 1", "not a finite number")
    path = tmp_path / "p.parquet"
    pd.DataFrame({"s1": ["a", "b"], "s2": ["c", "d"], "score": [0.5, float("nan")]}).to_parquet(path)
    fails(path, "row 2", "column 'score'")


def test_score_outside_default_range_says_how_to_declare_one(tmp_path):
    path = write(tmp_path, "p.csv", "a,b,0.5\nc,d,3.8\ne,f,5\n")
    fails(path, "row 2", "column 2", "3.8", "range 0..1", "score_range=(0, 5)", "--score-range 0,5")


def test_score_outside_declared_range(tmp_path):
    path = write(tmp_path, "p.csv", "sentence1,sentence2,score\na,b,5\nc,d,-1\n")
    fails(path, "row 3", "-1", "outside the declared range 0..5", "score_range=(-1, 5)", score_range=(0, 5))


@pytest.mark.parametrize("cell", ['""', '"   "', "\t"])
def test_empty_sentence_names_row_and_column(tmp_path, cell):
    path = write(tmp_path, "p.csv", f"sentence1,sentence2,score\na,b,1\nc,{cell},0\n")
    fails(path, "row 3", "column 'sentence2'", "empty")


def test_empty_or_non_text_sentence_in_jsonl(tmp_path):
    fails(
        write(tmp_path, "p.jsonl", '{"s1": "a", "s2": "b"}\n{"s1": null, "s2": "b"}\n'),
        "row 2",
        "column 's1'",
    )
    fails(write(tmp_path, "q.jsonl", '{"s1": "a", "s2": 3}\n'), "row 1", "column 's2'", "expected text")
    fails(write(tmp_path, "r.jsonl", '{"s1": "a", "s2": "b"}\n{"s1": "a"}\n'), "row 2", "no key 's2'")


def test_not_utf8_names_line(tmp_path):
    path = write(tmp_path, "p.csv", b"sentence1,sentence2\na,b\nc,\xff\xfed\n")
    fails(path, "line 3", "not valid UTF-8")
    fails(write(tmp_path, "latin.tsv", "s1\ts2\nCaf\u00e9\tx\n".encode("latin-1")), "line 2", "UTF-8")
    fails(write(tmp_path, "p.jsonl", b'{"s1": "a", "s2": "\xe9"}\n'), "line 1", "UTF-8")


def test_wrong_number_of_fields_names_row(tmp_path):
    fails(write(tmp_path, "p.csv", "sentence1,sentence2,score\na,b,1\nc,d\n"), "row 3", "2 fields, expected 3")
    fails(write(tmp_path, "p.tsv", "a\tb\t1\nc\td\t0\te\n"), "row 2", "4 fields, expected 3")


def test_bad_csv_quoting_names_row(tmp_path):
    fails(write(tmp_path, "p.csv", 'a,b,1\n"c"x,d,0\n'), "row 2", "bad CSV")


def test_sentence_longer_than_max_chars_names_row(tmp_path):
    path = write(tmp_path, "p.csv", "a,b\nshort,ok\n" + "x" * 50 + ",y\n")
    fails(path, "row 3", "column 0", "50 characters", "max_chars=20", max_chars=20)
    assert len(read_pairs(path, max_chars=50)) == 3
    huge = write(tmp_path, "huge.csv", "a," + "y" * 200_000 + "\n")
    fails(huge, "row 1", "column 1", "200000 characters", "max_chars=100000")


def test_bad_json_and_bad_parquet(tmp_path):
    fails(write(tmp_path, "p.jsonl", '{"s1": "a", "s2": "b"}\n{"s1": \n'), "line 2", "not valid JSON")
    fails(write(tmp_path, "q.jsonl", '{"s1": "a", "s2": "b"}\n["x", "y"]\n'), "row 2", "JSON object")
    fails(write(tmp_path, "p.parquet", b"PAR1 this is not parquet"), "Parquet")


def test_bad_max_rows(tmp_path):
    fails(write(tmp_path, "p.csv", "a,b\n"), "max_rows", max_rows=0)


# ---------------------------------------------------------------- real data


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"reference data {path} is absent (see ../shared/data/README.md)")
    return path


def test_real_stsb_splits():
    train = read_pairs(shared("stsb", "train.csv"), score_range=(0, 5))
    assert (len(train), train.kind, train.rows[0], train.rows[-1]) == (5749, "score", 1, 5749)
    assert min(train.labels) == 0.0 and max(train.labels) == 1.0
    assert train.sentence1[0] == "A plane is taking off." and train.labels[0] == 1.0
    assert len(read_pairs(shared("stsb", "dev.csv"), score_range="0,5")) == 1500
    assert len(read_pairs(shared("stsb", "test.csv"), score_range="0:5")) == 1379


def test_real_stsb_without_range_fails_naming_a_row():
    fails(shared("stsb", "dev.csv"), "row 1", "outside the declared range 0..1", "score_range=(0, 5)")


@pytest.mark.parametrize("columns", ["#1 String,#2 String,Quality", None])
def test_real_msrp_train(columns):
    data = read_pairs(shared("msrp", "train.tsv"), columns=columns)
    assert (len(data), data.kind, data.label_column, data.rows[0]) == (3576, "binary", "Quality", 2)
    assert set(data.labels) == {0.0, 1.0}
    text = data.sentence1 + data.sentence2
    assert not any("\r" in s or "\ufeff" in s or "\t" in s for s in text)
    assert data.sentence1[0].startswith('Amrozi accused his brother, whom he called "the witness"')


def test_real_msrp_other_splits():
    assert len(read_pairs(shared("msrp", "dev.tsv"))) == 500
    assert len(read_pairs(shared("msrp", "test.tsv"))) == 1725
