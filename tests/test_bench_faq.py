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
