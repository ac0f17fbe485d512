"""eval/distill_sts.py's silver pairs: neighbours by the bundled model, gold pairs left out, the teacher's cosine
(clipped to 0..1) as the label; and the script's refusal of bad arguments."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sentsim.data import PairData
from tests.conftest import ROOT, data_path, load_script


class Table:
    """An encoder that looks sentences up in a fixed table of unit vectors."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = {k: np.asarray(v, np.float32) / np.linalg.norm(v) for k, v in vectors.items()}

    def encode(self, sentences, batch_size=32):
        return np.stack([self.vectors[s] for s in sentences])


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(ROOT / "eval"))  # the script imports averaging_sts from its own folder
    try:
        yield load_script("eval/distill_sts.py")
    finally:
        sys.path.remove(str(ROOT / "eval"))


def gold() -> PairData:
    return PairData(["a", "c"], ["b", "d"], [0.8, 0.2], "score", "gold.csv", [2, 3], "score")


def test_silver_pairs_are_nearest_neighbours_labelled_by_the_teacher(script):
    # bundled model: a~b~e close together, c~d close together; teacher: a.e orthogonal, a.b opposite
    bundled = Table({"a": [1, 0, 0], "b": [0.9, 0.1, 0], "e": [0.95, 0.05, 0], "c": [0, 1, 0], "d": [0, 0.9, 0.1]})
    teacher = Table({"a": [1, 0, 0], "b": [-1, 0, 0], "e": [0, 1, 0], "c": [0, 0, 1], "d": [0, 0.6, 0.8]})
    g = gold()
    g = PairData(g.sentence1 + ["e"], g.sentence2 + ["a"], g.labels + [0.9], "score", "gold.csv", [2, 3, 4], "s")
    data = script.silver_pairs(g, bundled, teacher, n=100, knn=1, randoms=0, seed=0)
    assert data.sentence1[:3] == g.sentence1 and data.labels[:3] == g.labels  # gold first, labels untouched
    silver = {frozenset(p): label for p, label in zip(zip(data.sentence1[3:], data.sentence2[3:]), data.labels[3:])}
    # nearest neighbours: a->e, b->e, e->a, c->d, d->c; a-e and c-d are gold pairs and are dropped
    assert set(silver) == {frozenset("be")}
    assert silver[frozenset("be")] == pytest.approx(0.0, abs=1e-6)  # teacher cosine -1 . 0 = 0
    assert all(0.0 <= x <= 1.0 for x in data.labels)


def test_silver_labels_are_the_teacher_cosine_clipped(script):
    bundled = Table({s: v for s, v in zip("abcd", ([1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]))})
    teacher = Table({s: v for s, v in zip("abcd", ([1, 0], [-1, 0.1], [0.6, 0.8], [0.8, 0.6]))})
    data = script.silver_pairs(gold(), bundled, teacher, n=100, knn=3, randoms=2, seed=1)
    pairs = list(zip(data.sentence1[2:], data.sentence2[2:]))
    assert pairs and not {frozenset(p) for p in pairs} & {frozenset("ab"), frozenset("cd")}
    assert len({frozenset(p) for p in pairs}) == len(pairs)  # no pair twice
    for (x, y), label in zip(pairs, data.labels[2:]):
        assert label == pytest.approx(float(np.clip(teacher.vectors[x] @ teacher.vectors[y], 0, 1)), abs=1e-6)
    capped = script.silver_pairs(gold(), bundled, teacher, n=1, knn=3, randoms=2, seed=1)
    assert len(capped) == len(gold()) + 1


def test_script_needs_a_teacher_and_the_data(script, tmp_path, capsys):
    assert script.main(["--data", str(tmp_path), "--teacher", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([])  # neither --teacher nor --fetch-teacher
    data = data_path("stsb", "train.csv").parents[1]
    assert script.main(["--data", str(data), "--teacher", str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'}: no such folder" in capsys.readouterr().err
