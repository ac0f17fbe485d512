"""eval/bench_faq.py: the held-out-intent split of the out-of-scope benchmark keeps test intents unseen."""

from __future__ import annotations

from tests.conftest import data_path, load_script


def _bench():
    return load_script("eval/bench_faq.py")


def test_oos_split_keeps_test_intents_out_of_the_faq_and_dev():
    bench = _bench()
    folder = data_path("banking77", "train.csv").parents[1]
    train, test = bench.read_banking(folder, "train"), bench.read_banking(folder, "test")
    faq, dev, test_q = bench.oos_split(train, test, seed=1)
    faq_intents = {i for _, i in faq}
    assert len(faq_intents) == 57
    dev_texts = {q for q, _ in dev}
    assert not dev_texts & {q for q, _ in faq}  # dev questions are not FAQ entries
    assert {e for _, e in dev if e is not None} <= faq_intents
    in_test = {e for _, e in test_q if e is not None}
    assert in_test == faq_intents
    test_oos, dev_oos = {t for t, e in test_q if e is None}, {t for t, e in dev if e is None}
    test_oos_intents = {c for t, c in test if t in test_oos}
    dev_oos_intents = {c for t, c in train if t in dev_oos}
    assert len(test_oos_intents) == len(dev_oos_intents) == 10
    assert not test_oos_intents & (dev_oos_intents | faq_intents)  # test's out-of-scope intents are never seen
    assert 0.05 < sum(e is None for _, e in test_q) / len(test_q) < 0.25
    again = bench.oos_split(train, test, seed=1)
    assert again == (faq, dev, test_q)  # seeded
    assert bench.oos_split(train, test, seed=2)[0] != faq


def test_best_recall_at_accuracy_is_the_best_threshold_that_keeps_the_floor():
    import numpy as np

    bench = _bench()
    # in scope: four queries, three right (0.9, 0.8, 0.7) and one wrong (0.95); out of scope: 0.85, 0.75, 0.5
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.85, 0.75, 0.5])
    right = np.array([True, True, True, False, False, False, False])
    in_scope = np.array([True, True, True, True, False, False, False])
    # accuracy >= 0.75 needs all three right ones answered (t <= 0.7): out-of-scope recall 1/3 (only 0.5 refused)
    assert bench.best_recall_at_accuracy(scores, right, in_scope, floor=0.75) == 1 / 3
    # accuracy >= 0.5 lets t = 0.8: the 0.75 and 0.5 queries refused, 0.85 answered
    assert bench.best_recall_at_accuracy(scores, right, in_scope, floor=0.5) == 2 / 3
    # no threshold reaches an accuracy above the top-1 (3 of 4)
    assert bench.best_recall_at_accuracy(scores, right, in_scope, floor=0.9) is None
    # a shuffled score order changes the answer: the right ones below every out-of-scope one
    assert bench.best_recall_at_accuracy(np.array([0.1, 0.2, 0.3, 0.95, 0.85, 0.75, 0.5]), right, in_scope, 0.75) == 0


def test_a_bad_answer_k_is_a_usage_error_not_a_traceback(capsys):
    import pytest

    bench = _bench()
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exited:
            bench.main(["--part", "oos", "--answer-k", bad])
        assert exited.value.code == 2
        assert f"argument --answer-k: must be an integer >= 1, not '{bad}'" in capsys.readouterr().err
    assert bench.positive_int("4") == 4


def test_bad_gap_weights_are_a_usage_error_not_a_traceback(capsys):
    import pytest

    bench = _bench()
    with pytest.raises(SystemExit) as exited:
        bench.main(["--part", "oos", "--gap-weights", "0,half"])
    assert exited.value.code == 2
    assert "argument --gap-weights: gap_weight must be a number, not 'half' (in '0,half')" in capsys.readouterr().err
    for bad, one in (("0,-1", "-1"), ("101", "101"), ("nan", "nan")):
        with pytest.raises(SystemExit) as exited:
            bench.main(["--part", "oos", "--gap-weights", bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --gap-weights: gap_weight must be in [0, 100], not '{one}' (in '{bad}')" in err
    assert bench.gap_weight_list("0,0.5,100") == [0.0, 0.5, 100.0]


def test_a_bad_train_proxy_margin_is_a_usage_error(capsys):
    import pytest

    bench = _bench()
    for argv, message in (
        (["--train-proxy-margin", "0.2"], "--train-proxy-margin is a setting of --train-loss proxy"),
        (["--train-loss", "proxy", "--train-proxy-margin", "nan"], "proxy_margin must be in [0, 1), not nan"),
    ):
        with pytest.raises(SystemExit) as exited:
            bench.main(["--part", "oos", *argv])
        assert exited.value.code == 2 and message in capsys.readouterr().err
