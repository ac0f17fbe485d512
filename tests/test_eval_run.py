"""The benchmark script eval/run.py, end to end in its short version, on the real data beside the project."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from tests.conftest import data_path, load_script


def _run_module():
    return load_script("eval/run.py", "eval_run")


def test_run_rejects_unknown_task_and_missing_data(tmp_path, capsys):
    run = _run_module()
    with pytest.raises(SystemExit) as exc:
        run.main(["--tasks", "sts,nli", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "unknown task(s) nli" in capsys.readouterr().err
    assert run.main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path)]) == 2
    assert "no such data folder" in capsys.readouterr().err


def test_banking_pairs_hold_out_dev_and_mix_labels(tmp_path):
    run = _run_module()
    train, dev = run.banking_pairs(data_path("banking77", "train.csv"), tmp_path, seed=1, max_rows=400)
    rows = list(csv.DictReader(train.open(encoding="utf-8")))
    dev_rows = list(csv.DictReader(dev.open(encoding="utf-8")))
    assert len(rows) == 360 and len(dev_rows) == 40
    labels = [int(r["label"]) for r in rows]
    assert 0.3 < sum(labels) / len(labels) < 0.7
    assert not {r["sentence1"] for r in rows} & {r["sentence1"] for r in dev_rows}


@pytest.mark.slow
def test_run_quick_end_to_end(tmp_path):
    run = _run_module()
    data = data_path()
    out = tmp_path / "run"
    assert run.main(["--quick", "--data", str(data), "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    got = {(s["model"], s["trained_on"], s["task"], s["figure"]): s["mean"] for s in result["summary"]}
    # Every model on every task it should be scored on, including sentsim's STS-B model on the other tasks.
    for task, figure in (("sts", "spearman_cosine"), ("pairs", "accuracy"), ("faq", "top1_accuracy")):
        assert ("zero-shot", "-", task, figure) in got
        assert ("peer", task, task, figure) in got
        assert ("sentsim", task, task, figure) in got
        assert ("sentsim", "sts", task, figure) in got
    # Sane ranges: a broken metric, swapped columns or shuffled labels land far outside them.
    assert 75 < got[("zero-shot", "-", "sts", "spearman_cosine")] < 95
    assert 75 < got[("sentsim", "sts", "sts", "spearman_cosine")] < 95
    assert 60 < got[("zero-shot", "-", "pairs", "accuracy")] < 90
    assert 75 < got[("zero-shot", "-", "faq", "top1_accuracy")] <= 100
    assert 75 < got[("sentsim", "faq", "faq", "top1_accuracy")] <= 100
    # One report folder per evaluation, each with its figures.
    reports = sorted(p.name for p in (out / "reports").iterdir())
    assert len(reports) == 3 + 2 * 3 + 2
    assert json.loads((out / "reports" / "zero-shot-sts" / "metrics.json").read_text())["metrics"]["spearman_cosine"]
    assert "| sts | spearman_cosine | zero-shot |" in (out / "results.md").read_text()


def test_resume_runs_only_what_rows_jsonl_lacks(tmp_path, capsys):
    data_path("stsb", "test.csv")
    run = _run_module()
    argv = ["--quick", "--models", "zero-shot", "--tasks", "sts", "--out", str(tmp_path)]
    assert run.main([*argv, "--resume"]) == 0  # --resume where nothing ran yet starts the run
    log = tmp_path / "rows.jsonl"
    first = log.read_text().splitlines()
    assert len(first) == 1 and json.loads(first[0])["setting"] == "quick"
    capsys.readouterr()
    assert run.main([*argv, "--resume"]) == 0  # nothing left to measure: no new row, the same table
    assert log.read_text().splitlines() == first
    assert "zero-shot" in (tmp_path / "results.md").read_text()
    assert '"model": "zero-shot"' not in capsys.readouterr().out  # nothing was evaluated again
    assert run.main([*argv[:-4], "--tasks", "sts,pairs", "--out", str(tmp_path), "--resume"]) == 0
    tasks = [json.loads(line)["task"] for line in log.read_text().splitlines()]
    assert tasks[0] == "sts" and set(tasks[1:]) == {"pairs"}  # only the missing task ran


def test_answer_k_is_part_of_a_faq_row_setting(tmp_path, capsys):
    data_path("banking77", "train.csv")
    run = _run_module()
    argv = ["--quick", "--models", "zero-shot", "--tasks", "sts,faq", "--out", str(tmp_path), "--resume"]
    assert run.main([*argv, "--answer-k", "3"]) == 0
    log = tmp_path / "rows.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["task"]: r["setting"] for r in rows} == {"sts": "quick", "faq": "quick,answer_k=3"}
    assert json.loads((tmp_path / "results.json").read_text())["answer_k"] == 3
    capsys.readouterr()
    assert run.main(argv) == 0  # answer_k 1: the faq row is measured again, the sts row is kept
    again = [json.loads(line) for line in log.read_text().splitlines()][len(rows) :]
    assert [(r["task"], r["setting"]) for r in again] == [("faq", "quick")]
    with pytest.raises(SystemExit) as exc:
        run.main([*argv, "--answer-k", "0"])
    assert exc.value.code == 2 and "--answer-k must be >= 1, not 0" in capsys.readouterr().err


def test_faq_dev_split_holds_out_a_tenth_of_each_intent_and_never_reads_test(tmp_path):
    dev_script = load_script("eval/faq_dev.py", "eval_faq_dev")
    train_csv = data_path("banking77", "train.csv")
    faq, dev = dev_script.dev_split(train_csv, tmp_path, seed=0)
    faq_rows = list(csv.DictReader(faq.open(encoding="utf-8")))
    dev_rows = list(csv.DictReader(dev.open(encoding="utf-8")))
    train_rows = list(csv.DictReader(train_csv.open(encoding="utf-8")))
    assert len(faq_rows) + len(dev_rows) == len(train_rows)
    assert not {r["text"] for r in faq_rows} & {r["text"] for r in dev_rows}
    per_intent = Counter(r["category"] for r in train_rows)
    assert Counter(r["category"] for r in dev_rows) == {c: max(1, n // 10) for c, n in per_intent.items()}
    (tmp_path / "again").mkdir()
    again, _ = dev_script.dev_split(train_csv, tmp_path / "again", seed=0)
    assert again.read_text(encoding="utf-8") == faq.read_text(encoding="utf-8")  # the same seed, the same split


def test_proxy_margin_reaches_the_faq_trainer_and_bad_ones_are_usage_errors(tmp_path, capsys, monkeypatch):
    import sentsim.faq_train

    run = _run_module()
    for argv, message in (
        (["--proxy-margin", "0.2"], "--proxy-margin is a setting of --loss faq=proxy"),
        (["--loss", "faq=mnrl", "--proxy-margin", "0.2"], "--proxy-margin is a setting of --loss faq=proxy"),
        (["--loss", "faq=proxy", "--proxy-margin", "1"], "--proxy-margin: proxy_margin must be in [0, 1), not 1.0"),
    ):
        with pytest.raises(SystemExit) as exc:
            run.main([*argv, "--out", str(tmp_path)])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    seen = {}

    class Done:
        wall_time_s = 1.0

    def fake_train_faq(*args, **kwargs):
        seen.update(kwargs)
        return Done()

    monkeypatch.setattr(sentsim.faq_train, "train_faq", fake_train_faq)
    spec = {"faq": tmp_path / "faq.csv", "sentsim_loss": "proxy", "sentsim_lr": 5e-5, "proxy_margin": 0.2}
    assert run.train_sentsim("faq", spec, tmp_path / "m", 42, 2.0, 32) == (tmp_path / "m", 1.0)
    assert seen["loss"] == "proxy" and seen["proxy_margin"] == 0.2 and seen["epochs"] == 2.0


def test_faq_dev_refuses_a_proxy_margin_without_the_proxy_loss(capsys):
    dev = load_script("eval/faq_dev.py", "eval_faq_dev")
    for argv, message in (
        (["--proxy-margin", "0.2"], "--proxy-margin is a setting of --loss proxy"),
        (["--loss", "proxy", "--proxy-margin", "-0.5"], "--proxy-margin: proxy_margin must be in [0, 1), not -0.5"),
    ):
        with pytest.raises(SystemExit) as exc:
            dev.main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err


def test_faq_dev_sign_test_and_baseline_comparison_query_by_query(tmp_path, capsys):
    dev = load_script("eval/faq_dev.py", "eval_faq_dev")
    assert dev.sign_test(2, 0) == 0.5 and dev.sign_test(7, 1) == 0.0703125 and dev.sign_test(0, 0) == 1.0
    assert dev.sign_test(3, 5) == dev.sign_test(5, 3) and dev.sign_test(40, 10) < 1e-4
    data = tmp_path / "data" / "banking77"
    data.mkdir(parents=True)
    topics = {"card_lost": "I lost my card {}", "pin_change": "how do I change my pin number {}", "top_up": "top up {}"}
    with (data / "train.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for intent, text in topics.items():
            writer.writerows([text.format(i), intent] for i in range(10))
    first = tmp_path / "first"
    assert dev.main(["--epochs", "", "--answer-k", "1", "--data", str(tmp_path / "data"), "--out", str(first)]) == 0
    record = json.loads((first / "dev.json").read_text())
    (row,) = record["rows"]
    assert len(row["right"]) == row["dev_queries"] == 3 and record["split_seed"] == 0
    wins = row["right"].count("1")
    row["right"] = row["right"].translate(str.maketrans("01", "10"))  # right exactly where this run is wrong
    (tmp_path / "base.json").write_text(json.dumps(record))
    capsys.readouterr()
    argv = ["--epochs", "", "--answer-k", "1", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "second")]
    assert dev.main([*argv, "--baseline", str(tmp_path / "base.json")]) == 0
    (again,) = json.loads((tmp_path / "second" / "dev.json").read_text())["rows"]
    assert again["vs_baseline"] == {"gained": wins, "lost": 3 - wins, "p": round(dev.sign_test(wins, 3 - wins), 4)}
    assert "sign test p" in capsys.readouterr().out
    (tmp_path / "old.json").write_text(json.dumps({"rows": [{"model": "m", "answer_k": 1, "dev_top1": 90.0}]}))
    assert dev.main([*argv, "--baseline", str(tmp_path / "old.json")]) == 2
    assert "old.json: not a dev.json of eval/faq_dev.py with per-query results" in capsys.readouterr().err
    assert dev.main([*argv, "--split-seed", "1", "--baseline", str(tmp_path / "base.json")]) == 2
    assert "made on --split-seed 0, not 1" in capsys.readouterr().err
    row["right"] += "1"  # one query more than this split has
    (tmp_path / "base.json").write_text(json.dumps(record))
    assert dev.main([*argv, "--baseline", str(tmp_path / "base.json")]) == 2
    assert "base.json: not made on these 3 dev queries" in capsys.readouterr().err
