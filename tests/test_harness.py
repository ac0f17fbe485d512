"""The evaluation harness and its reports: figures known by hand, thresholds chosen on dev only, FAQ retrieval,
report folders, the ``eval`` command and its one-line errors; and (slow) the three tasks on real data."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from sentsim.cli import EVAL_TASKS, main
from sentsim.config import ModelConfig
from sentsim.errors import ConfigError, DataError, OutputExistsError
from sentsim.evaluation import best_threshold, binary_metrics
from sentsim.harness import TASKS, evaluate, evaluate_faq, evaluate_pairs, evaluate_sts, rank, read_qa
from sentsim.reports import compare_table, threshold_curves, write_report
from sentsim.similarity import matrix
from tests.conftest import data_path

PNG = b"\x89PNG\r\n\x1a\n"


class VecModel:
    """A stand-in for SiameseModel whose embedding of each sentence is given: figures can be worked out by hand."""

    def __init__(self, vectors: dict[str, np.ndarray], threshold: float | None = None):
        self.vectors = {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}
        self.metric = "cosine"
        self.config = ModelConfig(thresholds={} if threshold is None else {"cosine": threshold}, base_model="vec")

    def encode(self, sentences, batch_size=32, show_progress_bar=None):
        return np.stack([self.vectors[s] for s in sentences])


def unit(cos: float) -> np.ndarray:
    """A 2-D unit vector whose cosine with (1, 0) is ``cos``."""
    return np.array([cos, math.sqrt(1.0 - cos * cos)])


def write_csv(path: Path, rows, header=None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def pairs_case(tmp_path: Path, name: str, cosines, labels, header=("sentence1", "sentence2", "label")):
    """Pairs ("anchor", "<name> i") whose cosine similarity is ``cosines[i]``."""
    vectors = {"anchor": np.array([1.0, 0.0])}
    rows = []
    for i, (c, y) in enumerate(zip(cosines, labels)):
        vectors[f"{name} {i}"] = unit(c)
        rows.append(["anchor", f"{name} {i}", y])
    return write_csv(tmp_path / f"{name}.csv", rows, header), vectors


# ---------------------------------------------------------------------------------------------------- sts
def test_sts_figures_known_by_hand(tmp_path):
    path, vectors = pairs_case(tmp_path, "sts", [0.9, 0.5, 0.1, -0.2], [5, 3, 4, 0], ("s1", "s2", "score"))
    result = evaluate_sts(VecModel(vectors), path, columns="s1,s2,score", score_range="0,5")
    # predicted ranks 4,3,2,1; gold ranks 4,2,3,1: d^2 sums to 2, so rho = 1 - 6*2 / (4*15) = 0.8
    assert result.metrics["spearman_cosine"] == pytest.approx(80.0)
    assert result.metrics["pearson_cosine"] == pytest.approx(100 * pearsonr([0.9, 0.5, 0.1, -0.2], [5, 3, 4, 0])[0])
    assert set(result.metrics) == {
        f"{s}_{m}" for s in ("spearman", "pearson") for m in ("cosine", "euclidean", "manhattan", "dot")
    }
    assert result.metrics["spearman_euclidean"] == pytest.approx(80.0)  # unit vectors: same ranking
    assert result.primary == "spearman_cosine" and result.score == result.metrics["spearman_cosine"]
    assert [e["row"] for e in result.errors[:2]] == [3, 4]  # the two pairs whose ranks are swapped, file rows
    assert result.errors[0]["gold"] == pytest.approx(3.0) and result.errors[0]["rank_gap"] == pytest.approx(0.25)
    assert result.errors[-1]["rank_gap"] == 0.0


def test_sts_shuffled_gold_drops_spearman(tmp_path):
    rng = np.random.default_rng(0)
    cos = rng.uniform(-0.5, 1.0, 300)
    gold = np.clip((cos + 0.5) / 1.5 * 5 + rng.normal(0, 0.4, 300), 0, 5).round(2)
    path, vectors = pairs_case(tmp_path, "g", cos, gold, ("sentence1", "sentence2", "score"))
    model = VecModel(vectors)
    good = evaluate_sts(model, path, score_range=(0, 5))
    shuffled = write_csv(
        tmp_path / "shuffled.csv", [["anchor", f"g {i}", g] for i, g in enumerate(rng.permutation(gold))]
    )
    bad = evaluate_sts(model, shuffled, score_range=(0, 5))
    assert good.score > 90 and abs(bad.score) < 20
    assert good.score == pytest.approx(100 * spearmanr(cos, gold)[0], abs=1e-6)


def test_sts_needs_scores(tmp_path):
    path = write_csv(tmp_path / "p.csv", [["a", "b"]], ["sentence1", "sentence2"])
    with pytest.raises(DataError, match=r"p\.csv: no score column"):
        evaluate_sts(VecModel({}), path)


def test_default_data_comes_from_the_shared_folder(tmp_path, monkeypatch):
    (tmp_path / "stsb").mkdir()
    vectors = {"anchor": np.array([1.0, 0.0]), "x 0": unit(0.9), "x 1": unit(0.1)}
    write_csv(tmp_path / "stsb" / "test.csv", [["anchor", "x 0", "4.5"], ["anchor", "x 1", "0.5"]])
    monkeypatch.setenv("SENTSIM_DATA", str(tmp_path))
    result = evaluate_sts(VecModel(vectors))  # no data: STS-B test, scores 0..5
    assert result.data["test"] == str(tmp_path / "stsb" / "test.csv") and result.score == pytest.approx(100.0)
    assert [i["gold"] for i in result.items] == pytest.approx([4.5, 0.5])
    result = evaluate_sts(VecModel(vectors), "stsb/test.csv", score_range="0,5")  # a path under the folder
    assert result.counts == {"pairs": 2}
    with pytest.raises(DataError, match=r"nope/test\.csv: file not found \(here or in "):
        evaluate_sts(VecModel(vectors), "nope/test.csv")


def test_datasets_id(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load(ident, config=None, split=None):
        calls.append((ident, config, split))
        if ident == "offline/none":
            raise ConnectionError("Couldn't reach the Hugging Face Hub\nsecond line")
        features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
        return datasets.Dataset.from_dict({"text": ["q one", "q two"], "label": [0, 1]}, features=features)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    model = VecModel({"q one": [1, 0], "q two": [0, 1]})
    result = evaluate_faq(model, "org/intents@en:train", "org/intents", ks=(1, 2))
    assert calls == [("org/intents", "en", "train"), ("org/intents", None, "test")]
    assert result.data == {"faq": "org/intents@en:train", "queries": "org/intents"}
    assert result.metrics["top1_accuracy"] == 100.0 and result.items[1]["answer"] == "b"  # label names, not ids
    with pytest.raises(
        DataError, match=r"^offline/none: not a file here or in .*Couldn't reach the Hugging Face Hub\)$"
    ):
        evaluate_sts(model, "offline/none")


# -------------------------------------------------------------------------------------------------- pairs
def test_pairs_threshold_is_chosen_on_dev_and_applied_to_test(tmp_path):
    # dev separates at 0.3; on test, 0.7 would be best. The dev threshold must be the one applied.
    dev, dv = pairs_case(tmp_path, "dev", [0.1, 0.2, 0.4, 0.5, 0.8, 0.9], [0, 0, 1, 1, 1, 1])
    test, tv = pairs_case(tmp_path, "test", [0.1, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95], [0, 0, 0, 0, 1, 1, 1])
    result = evaluate_pairs(VecModel({**dv, **tv}), test, dev)
    assert result.threshold == pytest.approx(0.3, abs=1e-6)
    assert result.threshold == best_threshold(result.arrays["dev_scores"], result.arrays["dev_labels"])
    assert best_threshold(result.arrays["scores"], result.arrays["labels"]) == pytest.approx(0.7, abs=1e-5)  # unused
    assert result.metrics["accuracy"] == pytest.approx(100 * 4 / 7)  # 0.45 .. 0.65 are false positives
    assert result.metrics["precision"] == pytest.approx(50.0) and result.metrics["recall"] == 100.0
    assert result.metrics["roc_auc"] == 100.0 and result.metrics["average_precision"] == 100.0
    assert result.metrics["dev_accuracy"] == 100.0
    assert result.threshold_source == f"best accuracy on {dev} (6 pairs)"
    assert [e["row"] for e in result.errors] == [5, 4, 3]  # false positives, furthest above the threshold first
    assert all(not e["correct"] and e["predicted"] == 1 for e in result.errors)


def test_pairs_threshold_given_or_from_the_model(tmp_path):
    test, tv = pairs_case(tmp_path, "test", [0.2, 0.6, 0.8], [0, 1, 1])
    model = VecModel(tv, threshold=0.7)
    given = evaluate_pairs(model, test, threshold=0.5)
    assert (
        given.threshold == 0.5 and given.metrics["accuracy"] == 100.0 and given.threshold_source == "given by the user"
    )
    own = evaluate_pairs(model, test, threshold="model")
    assert own.threshold == pytest.approx(0.7) and own.metrics == binary_metrics([0.2, 0.6, 0.8], [0, 1, 1], 0.7)
    assert "model's own" in own.threshold_source
    with pytest.raises(ConfigError, match="needs a dev file"):
        evaluate_pairs(model, test)
    with pytest.raises(ConfigError, match="not both"):
        evaluate_pairs(model, test, test, threshold=0.5)
    with pytest.raises(ConfigError, match="the dev file is the test file"):
        evaluate_pairs(model, test, test)
    with pytest.raises(ConfigError, match="no decision threshold"):
        evaluate_pairs(VecModel(tv), test, threshold="model")
    with pytest.raises(ConfigError, match="'high': give a number"):
        evaluate_pairs(model, test, threshold="high")


def test_pairs_graded_labels_are_binarised_and_one_class_dev_is_refused(tmp_path):
    dev, dv = pairs_case(tmp_path, "dev", [0.2, 0.9], [1.0, 4.5])
    test, tv = pairs_case(tmp_path, "test", [0.3, 0.8], [0.5, 4.0])
    result = evaluate_pairs(VecModel({**dv, **tv}), test, dev, score_range="0,5")
    assert result.arrays["labels"].tolist() == [0, 1] and result.metrics["accuracy"] == 100.0
    flat, fv = pairs_case(tmp_path, "flat", [0.2, 0.9], [4, 5])
    with pytest.raises(DataError, match="flat.csv: every dev label is 1"):
        evaluate_pairs(VecModel({**fv, **tv}), test, flat, score_range="0,5")


# ---------------------------------------------------------------------------------------------------- faq
def test_rank_matches_brute_force():
    rng = np.random.default_rng(1)
    q, e = rng.normal(size=(7, 5)), rng.normal(size=(40, 5))
    groups = rng.permutation(np.arange(40) % 9)
    for metric in ("cosine", "euclidean", "manhattan", "dot"):
        sims = matrix(q, e, metric)
        idx, scores = rank(q, e, 6, metric)
        assert (idx == np.argsort(-sims, axis=1)[:, :6]).all()
        np.testing.assert_allclose(scores, np.take_along_axis(sims, idx, 1))
        idx, scores = rank(q, e, 4, metric, groups=groups)
        for i in range(7):
            best = {g: max(np.flatnonzero(groups == g), key=lambda j: sims[i, j]) for g in set(groups)}
            want = sorted(best.values(), key=lambda j: -sims[i, j])[:4]
            assert idx[i].tolist() == want and len(set(groups[idx[i]])) == 4
    with pytest.raises(ConfigError, match=r"k=10 must be between 1 and the number of distinct answers \(9\)"):
        rank(q, e, 10, groups=groups)
    with pytest.raises(ConfigError, match="k=41"):
        rank(q, e, 41)


def test_rank_group_k_scores_groups_by_the_mean_of_their_best_entries():
    rng = np.random.default_rng(2)
    q, e = rng.normal(size=(6, 4)), rng.normal(size=(30, 4))
    groups = np.r_[np.zeros(1, int), np.ones(2, int), rng.integers(2, 8, size=27)]  # sizes 1, 2 and larger
    for group_k in (1, 2, 3, 5):
        idx, scores = rank(q, e, 5, "cosine", groups=groups, group_k=group_k)
        sims = matrix(q, e, "cosine")
        for i in range(6):
            by_group = {}
            for g in set(groups.tolist()):
                members = np.flatnonzero(groups == g)
                best = np.sort(sims[i, members])[::-1][:group_k]
                by_group[g] = (best.mean(), members[np.argmax(sims[i, members])])
            want = sorted(by_group.values(), key=lambda v: -v[0])[:5]
            np.testing.assert_allclose(scores[i], [v[0] for v in want])
            assert idx[i].tolist() == [int(v[1]) for v in want]  # each group's best entry stands for it
    with pytest.raises(ConfigError, match="group_k must be a positive integer, not 0"):
        rank(q, e, 2, groups=groups, group_k=0)
    with pytest.raises(ConfigError, match="give groups too"):
        rank(q, e, 2, group_k=2)


def faq_case(tmp_path: Path):
    """Four FAQ entries with three answers (two questions share "A"), and queries with known rankings."""
    vectors = {
        "faq a1": [1.0, 0.0, 0.0], "faq a2": [0.8, 0.6, 0.0], "faq b": [0.0, 1.0, 0.0], "faq c": [0.0, 0.0, 1.0],
        "q1": [0.9, 0.1, 0.0],  # nearest a1: A first -> rank 1
        "q2": [0.1, 1.0, 0.0],  # nearest b, then a2: expected A at rank 2
        "q3": [0.0, 0.3, 1.0],  # nearest c, then b, then A: expected A at rank 3
        "q4": [0.0, 0.1, 1.0],  # nearest c: expected C at rank 1
        "q5": [0.0, 0.0, 1.0],  # out of scope, and close to c
        "q6": [-1.0, -1.0, 0.1],  # out of scope, far from everything
        "d1": [1.0, 0.05, 0.0], "d2": [0.0, 1.0, 0.05], "d3": [-1.0, -0.2, 0.0], "d4": [0.0, -1.0, -0.3],
    }  # fmt: skip
    faq = write_csv(tmp_path / "faq.csv", [["faq a1", "A"], ["faq a2", "A"], ["faq b", "B"], ["faq c", "C"]],
                    ["question", "answer"])  # fmt: skip
    rows = [["q1", "A"], ["q2", "A"], ["q3", "A"], ["q4", "C"]]
    queries = write_csv(tmp_path / "queries.csv", rows, ["query", "expected"])
    oos = write_csv(tmp_path / "queries_oos.csv", rows + [["q5", ""], ["q6", ""]], ["query", "expected"])
    dev = write_csv(tmp_path / "dev.csv", [["d1", "A"], ["d2", "B"], ["d3", ""], ["d4", ""]], ["query", "expected"])
    return VecModel(vectors), faq, queries, oos, dev


def test_faq_top1_mrr_recall_known_by_hand(tmp_path):
    model, faq, queries, _, _ = faq_case(tmp_path)
    result = evaluate_faq(model, faq, queries, ks=(1, 2, 3))
    # expected answer ranks 1, 2, 3, 1 (answers counted once, at their best question)
    assert result.metrics == pytest.approx(
        {
            "top1_accuracy": 50.0,
            "mrr@3": 100 * (1 + 1 / 2 + 1 / 3 + 1) / 4,
            "recall@1": 50.0,
            "recall@2": 75.0,
            "recall@3": 100.0,
        }  # fmt: skip
    )
    assert [i["expected_rank"] for i in result.items] == [1, 2, 3, 1]
    assert result.items[1]["top_answers"] == ["B", "A", "C"] and result.items[1]["matched_question"] == "faq b"
    assert result.threshold is None and result.counts["faq_answers"] == 3 and result.counts["faq_entries"] == 4
    # misanswered: q2 (returned B) and q3 (returned C), highest top score first
    assert [(e["query"], e["answer"]) for e in result.errors] == [("q2", "B"), ("q3", "C")]
    with pytest.raises(ConfigError, match=r"faq\.csv: k=4 is more than the FAQ's 3 distinct answers"):
        evaluate_faq(model, faq, queries, ks="1,4")


def test_faq_answer_k_scores_an_answer_by_its_best_few_questions(tmp_path, capsys):
    # B has the single nearest question (0.95) but its other one is far (0.2); both of A's are at 0.9
    vectors = {"b1": unit(0.95), "b2": unit(0.2), "a1": unit(0.9), "a2": unit(0.9), "q": unit(1.0)}
    faq = write_csv(tmp_path / "faq.csv", [["b1", "B"], ["b2", "B"], ["a1", "A"], ["a2", "A"]], ["question", "answer"])
    queries = write_csv(tmp_path / "q.csv", [["q", "A"]], ["query", "expected"])
    model = VecModel(vectors)
    best = evaluate_faq(model, faq, queries, ks=(1, 2))
    assert best.metrics["top1_accuracy"] == 0.0 and best.items[0]["top_answers"] == ["B", "A"]
    mean2 = evaluate_faq(model, faq, queries, ks=(1, 2), answer_k=2)
    assert mean2.metrics["top1_accuracy"] == 100.0 and mean2.items[0]["top_answers"] == ["A", "B"]
    assert mean2.items[0]["score"] == pytest.approx(0.9) and mean2.counts["answer_k"] == 2
    assert evaluate_faq(model, faq, queries, ks=(1, 2), answer_k=5).metrics["top1_accuracy"] == 100.0  # all of each
    with pytest.raises(ConfigError, match="answer_k must be a positive integer, not 0"):
        evaluate_faq(model, faq, queries, answer_k=0)
    code, _, err = run(capsys, "eval", "--task", "faq", "--faq", str(faq), "--queries", str(queries), "--ks", "1",
                       "--answer-k", "0", "--report", str(tmp_path / "r"))  # fmt: skip
    assert code == 2 and "answer_k must be a positive integer, not 0" in err and "Traceback" not in err
    code, _, err = run(capsys, "eval", "--task", "sts", "--data", str(queries), "--answer-k", "2")
    assert code == 2 and "--answer-k is for --task faq" in err


def test_faq_out_of_scope_at_the_dev_threshold(tmp_path):
    model, faq, _, oos, dev = faq_case(tmp_path)
    with pytest.raises(ConfigError, match=r"queries_oos\.csv: 2 out-of-scope queries .* need a threshold"):
        evaluate_faq(model, faq, oos, ks=(1, 3))
    result = evaluate_faq(model, faq, oos, dev, ks=(1, 3))
    # dev: right answers score ~1.0, out-of-scope tops are <= 0.2, so the threshold sits between them
    assert 0.2 < result.threshold < 0.99 and "dev.csv (4 queries, 2 out of scope)" in result.threshold_source
    # test tops: q1..q4 ~0.99, q5 1.0 (answered: wrong), q6 < 0 (abstained: right)
    assert result.metrics["out_of_scope_recall"] == 50.0
    assert result.metrics["in_scope_accuracy"] == 50.0  # q1 and q4 right and answered
    assert result.metrics["accuracy"] == pytest.approx(100 * 3 / 6)
    assert result.metrics["top1_accuracy"] == 50.0  # in-scope queries only
    assert [e["query"] for e in result.errors] == ["q5", "q2", "q3"]
    given = evaluate_faq(model, faq, oos, threshold=-0.5, ks=(1,))
    assert given.metrics["out_of_scope_recall"] == 0.0 and given.threshold_source == "given by the user"


def test_faq_bad_inputs(tmp_path):
    model, faq, queries, oos, dev = faq_case(tmp_path)
    only_oos = write_csv(tmp_path / "oos.csv", [["q5", ""]], ["query", "expected"])
    with pytest.raises(DataError, match=r"oos\.csv: no in-scope queries"):
        evaluate_faq(model, faq, only_oos, ks=(1,), threshold=0.5)
    with pytest.raises(DataError, match=r"queries\.csv: no out-of-scope queries"):
        evaluate_faq(model, faq, oos, queries, ks=(1,))
    with pytest.raises(ConfigError, match="needs both an FAQ file"):
        evaluate_faq(model, faq)
    with pytest.raises(ConfigError, match="ks 'x'"):
        evaluate_faq(model, faq, queries, ks="x")
    with pytest.raises(ConfigError, match="the dev file is the queries file"):
        evaluate_faq(model, faq, oos, oos, ks=(1,))


def test_read_qa_formats_and_errors(tmp_path):
    tsv = tmp_path / "q.tsv"
    tsv.write_bytes("\ufeffid\tUtterance\tIntent\r\n1\tWhere is my card?\tcard_arrival\r\n2\tSing\t\r\n".encode())
    d = read_qa(tsv, allow_empty_answer=True)
    assert (d.questions, d.answers, d.rows, d.columns) == (["Where is my card?", "Sing"], ["card_arrival", ""],
                                                          [2, 3], ("Utterance", "Intent"))  # fmt: skip
    plain = write_csv(tmp_path / "plain.csv", [["how?", "like this"], ["why?", "because"]])
    assert read_qa(plain).answers == ["like this", "because"]  # no header: the two columns
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"q": "a?", "gold": null}\n{"q": "b?", "gold": 3}\n', encoding="utf-8")
    assert read_qa(jsonl, "q,gold", allow_empty_answer=True).answers == ["", "3"]
    bank = write_csv(tmp_path / "bank.csv", [["Hi", "greet"]], ["text", "category"])
    assert read_qa(bank, columns="text,category").columns == ("text", "category")
    cases = [
        (write_csv(tmp_path / "x.csv", [["a", "b"]], ["x", "answer"]), None, r"x\.csv: no question column; expected"),
        (write_csv(tmp_path / "y.csv", [["a", "b", "c"]]), None, r"y\.csv: 3 columns and no header"),
        (bank, "text,intent", r"bank\.csv: no column 'intent'"),
        (write_csv(tmp_path / "e.csv", [["a?", "A"], [" ", "B"]], ["question", "answer"]), None,
         r"e\.csv: row 3, column 'question': the question is empty"),
        (write_csv(tmp_path / "f.csv", [["a?", ""]], ["question", "answer"]), None,
         r"f\.csv: row 2, column 'answer': the answer is empty"),
        (write_csv(tmp_path / "h.csv", [], ["question", "answer"]), None, r"h\.csv: the file has a header but no rows"),
        (tmp_path / "missing.csv", None, r"missing\.csv: file not found"),
    ]  # fmt: skip
    for path, columns, message in cases:
        with pytest.raises(DataError, match=message):
            read_qa(path, columns)


# ------------------------------------------------------------------------------------------------ reports
def test_report_folder_contents(tmp_path):
    model, faq, _, oos, dev = faq_case(tmp_path)
    results = {
        "faq": evaluate_faq(model, faq, oos, dev, ks=(1, 3), model_name="vec-model"),
        "pairs": evaluate_pairs(*_pairs_model(tmp_path), model_name="vec-model"),
        "sts": evaluate_sts(*_sts_model(tmp_path), score_range="0,5", model_name="vec-model"),
    }
    plots = {"sts": "scatter.png", "pairs": "threshold.png", "faq": "scores.png"}
    for task, result in results.items():
        folder = write_report(result, tmp_path / "reports" / task)
        record = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        assert record["task"] == task and record["model"] == "vec-model" and record["metrics"] == result.metrics
        assert record["data"] == result.data and record["threshold"] == result.threshold
        assert record["threshold_source"] == result.threshold_source
        png = (folder / plots[task]).read_bytes()
        assert png.startswith(PNG) and len(png) > 1000
        with (folder / "errors.csv").open(encoding="utf-8", newline="") as f:
            errors = list(csv.DictReader(f))
        assert [int(e["row"]) for e in errors] == [e["row"] for e in result.errors] and errors
        report = (folder / "report.md").read_text(encoding="utf-8")
        assert "| model | vec-model |" in report and f"![{plots[task]}]({plots[task]})" in report
        assert sorted(p.name for p in folder.iterdir()) == sorted(record["files"])
    assert "| threshold | 0.3000, best accuracy on" in (tmp_path / "reports" / "pairs" / "report.md").read_text()
    faq_errors = (tmp_path / "reports" / "faq" / "errors.csv").read_text(encoding="utf-8").splitlines()
    assert faq_errors[0].startswith("row,query,expected,answer,score,answered,correct")
    assert faq_errors[1].startswith("6,q5,,C,") and faq_errors[2].endswith(",B | A | C")  # what was returned
    with pytest.raises(OutputExistsError, match="already holds files"):
        write_report(results["sts"], tmp_path / "reports" / "sts")
    folder = write_report(results["sts"], tmp_path / "reports" / "sts", overwrite=True, plots=False)
    assert sorted(p.name for p in folder.iterdir()) == ["errors.csv", "metrics.json", "report.md"]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["faq", "pairs", "sts"]  # no temp folders
    table = compare_table(list(results.values())[1:], keys=["accuracy"])
    assert table.splitlines()[0] == "| model | task | data | accuracy |" and "| vec-model | pairs |" in table


def test_threshold_curves_match_binary_metrics():
    rng = np.random.default_rng(3)
    scores, labels = rng.random(50).round(1), rng.integers(0, 2, 50)
    curves = threshold_curves(scores, labels)
    for i, t in enumerate(curves["threshold"]):
        m = binary_metrics(scores, labels, float(t))
        assert (curves["precision"][i], curves["recall"][i], curves["f1"][i]) == pytest.approx(
            (m["precision"], m["recall"], m["f1"])
        )


def _pairs_model(tmp_path):
    dev, dv = pairs_case(tmp_path, "rdev", [0.1, 0.2, 0.4, 0.5], [0, 0, 1, 1])
    test, tv = pairs_case(tmp_path, "rtest", [0.1, 0.35, 0.25, 0.9], [0, 0, 1, 1])
    return VecModel({**dv, **tv}), test, dev


def _sts_model(tmp_path):
    path, vectors = pairs_case(tmp_path, "rsts", [0.9, 0.5, 0.1, -0.2], [5, 3, 4, 0], ("s1", "s2", "score"))
    return VecModel(vectors), path


# ---------------------------------------------------------------------------------------------------- cli
def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_eval_help_and_tasks():
    result = subprocess.run([sys.executable, "-m", "sentsim.cli", "eval", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: sentsim eval" in result.stdout and "--no-plots" in result.stdout
    assert EVAL_TASKS == TASKS
    with pytest.raises(ConfigError, match="unknown task 'ner'"):
        evaluate("ner")


def test_cli_eval_each_task(tmp_path, capsys, monkeypatch):
    import sentsim.encoders

    model, faq, _, oos, dev = faq_case(tmp_path)
    pairs_model, pairs_test, pairs_dev = _pairs_model(tmp_path)
    sts_model, sts = _sts_model(tmp_path)
    model.vectors.update(pairs_model.vectors | sts_model.vectors)
    monkeypatch.setattr(sentsim.encoders, "load", lambda *a, **k: model)
    runs = {
        "sts": ["--data", str(sts), "--score-range", "0,5", "--columns", "s1,s2,score"],
        "pairs": ["--data", str(pairs_test), "--dev", str(pairs_dev), "--objective", "f1"],
        "faq": ["--faq", str(faq), "--queries", str(oos), "--dev", str(dev), "--ks", "1,3"],
    }
    for task, extra in runs.items():
        report = tmp_path / f"cli-{task}"
        code, out, err = run(capsys, "-q", "eval", "--task", task, *extra, "--report", str(report))
        assert code == 0, err
        assert f"| task | {task} |" in out and f"report: {report}" in out and "(primary)" in out
        assert json.loads((report / "metrics.json").read_text())["task"] == task
    code, out, _ = run(capsys, "-q", "eval", "--task", "pairs", *runs["pairs"], "--report", str(tmp_path / "j"),
                       "--json", "--no-plots")  # fmt: skip
    assert code == 0 and json.loads(out)["primary"] == "f1" and not list((tmp_path / "j").glob("*.png"))


def test_cli_eval_loads_a_model_folder(tmp_path, capsys, tiny_model_dir):
    path = write_csv(tmp_path / "sts.csv", [["A cat sits.", "A cat is sitting.", "4.8"], ["A man runs.", "Rain.", "0"]])
    code, out, err = run(capsys, "-q", "eval", "--task", "sts", "--model", str(tiny_model_dir), "--data", str(path),
                         "--score-range", "0,5", "--report", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, err
    assert f"| model | {tiny_model_dir} |" in out and (tmp_path / "r" / "scatter.png").read_bytes().startswith(PNG)


def test_cli_eval_bad_inputs_are_one_line(tmp_path, capsys):
    _, faq, queries, oos, dev = faq_case(tmp_path)
    good = write_csv(tmp_path / "good.csv", [["a", "b", "1"], ["c", "d", "0"]], ["sentence1", "sentence2", "label"])
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    cases = [
        (["--task", "sts", "--data", str(tmp_path / "nope.csv")], ["nope.csv", "file not found"]),
        (["--task", "sts", "--data", str(empty)], ["empty.csv", "the file is empty"]),
        (["--task", "sts", "--data", str(good), "--columns", "s1,s2,score"], ["good.csv", "no column 's1'"]),
        (["--task", "pairs", "--data", str(good)], ["good.csv", "needs a dev file"]),
        (["--task", "sts", "--data", str(good), "--faq", str(faq)], ["--faq is for --task faq"]),
        (["--task", "faq", "--faq", str(faq), "--queries", str(queries)], ["faq.csv", "k=10", "3 distinct answers"]),
        (["--task", "faq", "--faq", str(faq), "--queries", str(oos), "--ks", "1"], ["queries_oos.csv", "threshold"]),
        (["--task", "faq", "--faq", str(faq), "--queries", str(queries), "--ks", "0"], ["ks '0'"]),
        (["--task", "faq", "--faq", str(queries), "--queries", str(dev), "--ks", "1", "--faq-columns", "query,x"],
         ["queries.csv", "no column 'x'"]),
        (["--task", "sts", "--data", str(good), "--report", str(tmp_path / "taken")], ["taken", "--overwrite"]),
    ]  # fmt: skip
    for argv, needles in cases:
        code, _, err = run(capsys, "eval", *argv)
        lines = [line for line in err.splitlines() if line.startswith("sentsim: error:")]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (argv, err)
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])


# ------------------------------------------------------------------------------------------ slow, real data
@pytest.mark.slow
def test_real_data_slices(tmp_path, bundled):
    """The three tasks on short slices of STS-B, MSRP and BANKING77 with the bundled model: figures in a sane range
    that a broken metric or shuffled labels would miss."""
    sts = data_path("stsb", "test.csv")
    result = evaluate_sts(bundled, sts, score_range="0,5", max_rows=300)
    assert 70 < result.score < 95 and result.counts == {"pairs": 300}
    rows = list(csv.reader(sts.open(encoding="utf-8")))[:300]
    gold = np.random.default_rng(0).permutation([r[2] for r in rows])
    shuffled = write_csv(tmp_path / "shuffled.csv", [[a, b, g] for (a, b, _), g in zip(rows, gold)])
    assert abs(evaluate_sts(bundled, shuffled, score_range="0,5").score) < 20

    pairs = evaluate_pairs(bundled, data_path("msrp", "test.tsv"), data_path("msrp", "dev.tsv"), max_rows=300)
    assert 65 < pairs.metrics["accuracy"] < 90 and 75 < pairs.metrics["f1"] < 92 and pairs.metrics["roc_auc"] > 70
    assert pairs.threshold_source.startswith("best accuracy on") and "dev.tsv (500 pairs)" in pairs.threshold_source

    train = list(csv.reader(data_path("banking77", "train.csv").open(encoding="utf-8")))
    test = list(csv.reader(data_path("banking77", "test.csv").open(encoding="utf-8")))
    faq = write_csv(tmp_path / "faq.csv", train[1::5], train[0])  # 2,001 FAQ entries over the 77 intents
    queries = write_csv(tmp_path / "queries.csv", test[1::15], test[0])  # 206 queries
    result = evaluate_faq(bundled, faq, queries)
    assert 80 < result.metrics["top1_accuracy"] <= 100 and result.metrics["recall@10"] > 95
    assert result.counts["faq_answers"] == 77 and not result.counts["unknown_expected"]
    shuffled = np.random.default_rng(0).permutation([a for _, a in test[1::15]])
    wrong = write_csv(tmp_path / "wrong.csv", [[q, a] for (q, _), a in zip(test[1::15], shuffled)], test[0])
    assert evaluate_faq(bundled, faq, wrong).metrics["top1_accuracy"] < 20
    write_report(result, tmp_path / "report")
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["counts"]["queries"] == len(test[1::15])
