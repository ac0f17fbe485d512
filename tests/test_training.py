"""Training: loss choice, the saved record, thresholds from dev, resume, seeds, bad input; and (slow) real
fine-tunes on STS-B."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import sentsim
from sentsim.data import PairData, read_pairs
from sentsim.errors import ConfigError, DataError, OutputExistsError
from sentsim.losses import check_loss_data, choose_loss
from sentsim.training import TrainConfig, train
from tests.conftest import data_path

WORDS = "cat dog bird fish horse cow lion tiger bear wolf fox deer".split()


def write_pairs(path: Path, n: int, kind: str = "score", seed: int = 0) -> Path:
    """Synthetic pairs: the same animal in both sentences scores high, different animals low."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = ["sentence1", "sentence2"] + ([] if kind == "none" else ["score" if kind == "score" else "label"])
        writer.writerow(header)
        for i in range(n):
            a = WORDS[rng.integers(len(WORDS))]
            same = i % 2 == 0
            b = a if same else WORDS[(WORDS.index(a) + 1 + rng.integers(len(WORDS) - 1)) % len(WORDS)]
            row = [f"the {a} runs in the field", f"a {b} is running outside"]
            if kind == "score":
                row.append(f"{(0.9 if same else 0.1) + rng.uniform(-0.05, 0.05):.3f}")
            elif kind == "binary":
                row.append("1" if same else "0")
            writer.writerow(row)
    return path


def _fast(tmp_path: Path, tiny: Path, **kw) -> TrainConfig:
    kind = kw.pop("kind", "score")
    settings = dict(
        train=kw.pop("train", None) or write_pairs(tmp_path / "train.csv", 48, kind),
        output_dir=tmp_path / "out",
        base_model=str(tiny),
        epochs=1,
        batch_size=8,
        learning_rate=1e-3,
        show_progress=False,
    )
    settings.update(kw)
    return TrainConfig(**settings)


def test_choose_loss_auto_from_labels():
    base = dict(sentence1=["a"] * 2, sentence2=["b"] * 2, source="f.csv", rows=[2, 3], label_column="y")
    assert choose_loss("auto", PairData(labels=[0.2, 0.9], kind="score", **base))[0] == "cosine"
    name, reason = choose_loss("auto", PairData(labels=[0.2, 0.9], kind="score", **base), encoder="lstm")
    assert name == "cosent" and "LSTM" in reason
    assert choose_loss("auto", PairData(labels=[0.0, 1.0], kind="binary", **base))[0] == "online_contrastive"
    name, reason = choose_loss("auto", PairData(labels=None, kind="none", **{**base, "label_column": None}))
    assert name == "mnrl" and "no label" in reason


def test_contrastive_loss_rejects_graded_labels_naming_the_row():
    data = PairData(["a", "b"], ["c", "d"], [1.0, 0.4], "score", "pairs.csv", [2, 3], "score")
    with pytest.raises(DataError, match=r"pairs\.csv: row 3: label 0\.4 .* not 0 or 1"):
        check_loss_data("online_contrastive", data)
    with pytest.raises(DataError, match="needs a score column"):
        check_loss_data("cosine", PairData(["a"], ["b"], None, "none", "p.csv", [1], None))
    with pytest.raises(ConfigError, match="unknown loss"):
        choose_loss("hinge", data)


def _mnrl_pair():
    import torch
    from sentence_transformers.sentence_transformer import losses

    from sentsim.losses import grouped_mnrl

    torch.manual_seed(0)
    emb = [torch.nn.functional.normalize(torch.randn(5, 8), dim=1) for _ in range(3)]  # anchor, positive, negative
    return torch, emb, grouped_mnrl(torch.nn.Identity()), losses.MultipleNegativesRankingLoss(torch.nn.Identity())


def test_grouped_mnrl_with_distinct_groups_is_plain_mnrl():
    torch, emb, grouped, plain = _mnrl_pair()
    distinct = torch.tensor([[0, 5], [1, 6], [2, 7], [3, 8], [4, 9]])
    for columns in (emb[:2], emb):
        want = plain.compute_loss_from_embeddings(columns, None)
        got = grouped.compute_loss_from_embeddings(columns, distinct[:, : len(columns) - 1])
        assert torch.allclose(got, want)


def test_grouped_mnrl_leaves_out_the_anchors_own_group():
    torch, (a, p, n), grouped, _ = _mnrl_pair()
    # pairs 0 and 3 share group 0, and pair 1's hard negative is of that group
    labels = torch.tensor([[0, 1], [1, 0], [2, 3], [0, 1], [4, 2]])
    got = grouped.compute_loss_from_embeddings([a, p, n], labels)
    scores = 20 * torch.cat([p, n]) @ a.T  # (candidates, anchors): unit vectors, so cosine = dot
    scores = scores.T.clone()
    scores[0, 3] = scores[3, 0] = -float("inf")  # the other's positive
    scores[0, 5 + 1] = scores[3, 5 + 1] = -float("inf")  # pair 1's negative, of group 0
    scores[2, 5 + 4] = -float("inf")  # pair 4's negative is of pair 2's group
    scores[1, 5 + 0] = scores[1, 5 + 3] = -float("inf")  # pairs 0 and 3 have negatives of pair 1's group
    want = torch.nn.functional.cross_entropy(scores, torch.arange(5))
    assert torch.allclose(got, want)


def test_grouped_pairs_need_mnrl(tmp_path, tiny_model_dir):
    data = PairData(["a b", "c d"], ["a c", "c b"], None, "none", "g.csv", [2, 3], None, groups=["x", "y"])
    with pytest.raises(ValueError, match="groups need unlabelled pairs"):
        PairData(["a"], ["b"], [1.0], "binary", "g.csv", [2], "label", groups=["x"])
    from sentsim.losses import build_loss

    with pytest.raises(ConfigError, match="pairs with groups train with loss 'mnrl'"):
        build_loss("cosine", object(), grouped=True)
    r = train(train=data, loss="mnrl", base_model=str(tiny_model_dir), output_dir=tmp_path / "m", epochs=1,
              batch_size=2, show_progress=False)  # fmt: skip
    assert "own group are left out" in r.loss_reason


def test_train_saves_model_record_and_dev_threshold(tmp_path, tiny_model_dir):
    dev = write_pairs(tmp_path / "dev.csv", 24, seed=1)
    pairs = write_pairs(tmp_path / "train.csv", 96)
    # CoSENT: the tiny random model learns this synthetic ranking task quickly with it (auto's choice, the cosine
    # loss, is checked on real data by the slow STS-B test, where it beats CoSENT).
    result = train(_fast(tmp_path, tiny_model_dir, dev=dev, epochs=4, train=pairs, loss="cosent"))
    assert result.loss == "cosent" and result.loss_reason == "cosent was asked for"
    model = sentsim.load(tmp_path / "out")
    record = json.loads((tmp_path / "out" / "sentsim_config.json").read_text())
    assert record["training"]["loss"] == "cosent"
    assert record["training"]["train_pairs"] == 96
    assert set(record["thresholds"]) == {"cosine", "euclidean", "manhattan", "dot"}
    assert "dev.csv" in record["threshold_source"]
    assert set(model.config.dev_metrics) == {"spearman", "pearson"}
    assert model.compare("the cat runs", "a cat runs").threshold == record["thresholds"]["cosine"]
    assert not (tmp_path / "out.checkpoints").exists()  # removed after a successful run
    # The tiny random model learns the synthetic task: dev Spearman rises.
    assert result.dev_metrics["spearman"] > result.dev_before["spearman"] + 10


def test_average_best_checkpoints_is_recorded_and_kept_only_when_better_on_dev(tmp_path, tiny_model_dir):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    dev = write_pairs(tmp_path / "dev.csv", 24, seed=1)
    pairs = write_pairs(tmp_path / "train.csv", 96)
    cfg = _fast(tmp_path, tiny_model_dir, dev=dev, epochs=2, train=pairs, loss="cosent", eval_steps=4, average_best=3)
    result = train(cfg)
    record = result.model.config.training["checkpoint_averaging"]
    assert len(record["checkpoints"]) == 3 and record["dev_figure"] == "dev_spearman_cosine"
    # The saved model is the better of the two on dev, and its dev figure is the one recorded for it.
    dev_data = read_pairs(dev)
    evaluator = EmbeddingSimilarityEvaluator(dev_data.sentence1, dev_data.sentence2, dev_data.labels, name="dev")
    saved = sentsim.load(tmp_path / "out", device="cpu")
    figure = 100 * evaluator(saved.encoder)["dev_spearman_cosine"]
    expected = record["dev_averaged"] if record["kept"] else record["dev_best_single"]
    assert figure == pytest.approx(expected, abs=0.01)
    assert record["kept"] == (record["dev_averaged"] > record["dev_best_single"])
    assert not (tmp_path / "out.checkpoints").exists()


def test_train_binary_labels_uses_online_contrastive(tmp_path, tiny_model_dir):
    dev = write_pairs(tmp_path / "dev.csv", 16, kind="binary", seed=2)
    result = train(_fast(tmp_path, tiny_model_dir, kind="binary", dev=dev))
    assert result.loss == "online_contrastive"
    assert set(result.dev_metrics) == {"accuracy", "f1", "average_precision"}


def test_train_unlabelled_pairs_uses_mnrl(tmp_path, tiny_model_dir):
    result = train(_fast(tmp_path, tiny_model_dir, kind="none"))
    assert result.loss == "mnrl" and result.dev_metrics is None
    assert sentsim.load(tmp_path / "out").config.thresholds == {}


def test_same_seed_gives_the_same_model(tmp_path, tiny_model_dir):
    train(_fast(tmp_path, tiny_model_dir, seed=7))
    first = sentsim.load(tmp_path / "out").encode(["the cat runs"])
    train(_fast(tmp_path, tiny_model_dir, seed=7, overwrite=True))
    again = sentsim.load(tmp_path / "out").encode(["the cat runs"])
    train(_fast(tmp_path, tiny_model_dir, seed=8, overwrite=True))
    other = sentsim.load(tmp_path / "out").encode(["the cat runs"])
    np.testing.assert_allclose(first, again, atol=1e-6)
    assert not np.allclose(first, other, atol=1e-4)


def test_output_dir_with_a_model_is_refused_without_overwrite(tmp_path, tiny_model_dir):
    train(_fast(tmp_path, tiny_model_dir))
    before = (tmp_path / "out" / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match="already holds a model; pass --overwrite"):
        _fast(tmp_path, tiny_model_dir)
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 0}, "epochs must be > 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"loss": "mnrl", "batch_size": 1}, "batch_size"),
        ({"learning_rate": -1.0}, "learning_rate must be > 0"),
        ({"encoder": "gru"}, "encoder must be"),
        ({"early_stopping_patience": 2}, "needs dev data"),
        ({"average_best": 3}, "average_best must be >= 2 and needs dev data"),
        ({"columns": "a"}, "column"),
        ({"score_range": "5,0"}, "range"),
    ],
)
def test_bad_settings_give_one_line_errors(tmp_path, tiny_model_dir, settings, message):
    with pytest.raises(ValueError, match=message) as info:
        _fast(tmp_path, tiny_model_dir, **settings)
    assert "\n" not in str(info.value)


def test_resume_skips_a_checkpoint_killed_while_saving(tmp_path, caplog):
    """A kill during a checkpoint save leaves a newest folder without trainer_state.json: resume uses the one
    before it and removes the broken one."""
    from sentsim.training import _last_checkpoint

    folder = tmp_path / "out.checkpoints"
    for step, complete in ((5, True), (10, True), (15, False)):
        path = folder / f"checkpoint-{step}"
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"x")
        if complete:
            (path / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-notes").mkdir()
    with caplog.at_level(logging.WARNING, logger="sentsim.training"):
        assert _last_checkpoint(folder) == str(folder / "checkpoint-10")
    assert not (folder / "checkpoint-15").exists()
    assert "incomplete checkpoint" in caplog.text
    assert _last_checkpoint(tmp_path / "absent") is None


def test_resume_after_a_kill(tmp_path, tiny_model_dir):
    """Kill a training run after its first checkpoint, then --resume finishes it from that checkpoint."""
    pairs = write_pairs(tmp_path / "train.csv", 160)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "sentsim.cli", "train", "--train", str(pairs), "--output-dir", str(out),
        "--base-model", str(tiny_model_dir), "--epochs", "2", "--batch-size", "4", "--lr", "1e-3",
        "--eval-steps", "5", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = tmp_path / "out.checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "training ended before the first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    done = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert done and done[-1] < 80
    result = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from" in result.stderr
    record = json.loads((out / "sentsim_config.json").read_text())
    assert record["training"]["global_steps"] == 80


@pytest.mark.slow
def test_fine_tune_on_stsb_raises_dev_spearman(tmp_path):
    """A real fine-tune of the bundled model on STS-B train (one epoch, default loss) beats its zero-shot dev
    Spearman by a clear margin (measured: 86.72 -> 89.32; CoSENT instead lowered it to 85.19)."""
    result = train(
        train=data_path("stsb", "train.csv"),
        dev=data_path("stsb", "dev.csv"),
        score_range=(0, 5),
        output_dir=tmp_path / "stsb",
        epochs=1,
        show_progress=False,
    )
    assert result.loss == "cosine"
    assert result.dev_metrics["spearman"] > result.dev_before["spearman"] + 1.0, (result.dev_before, result.dev_metrics)
    reloaded = sentsim.load(tmp_path / "stsb")
    assert reloaded.config.training["train_pairs"] == 5749
    assert reloaded.config.dev_metrics == result.dev_metrics


def _bag_of_embeddings_spearman(pairs: PairData) -> float:
    """The baseline: mean of the bundled model's input token embeddings, no training."""
    from sentsim.evaluation import spearman
    from sentsim.similarity import pairwise

    base = sentsim.load().encoder[0]
    table = base.auto_model.get_input_embeddings().weight.detach().numpy()

    def embed(texts):
        ids = base.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return np.stack([table[i].mean(axis=0) for i in ids])

    return spearman(pairwise(embed(pairs.sentence1), embed(pairs.sentence2)), pairs.labels)


@pytest.mark.slow
def test_lstm_trains_and_beats_bag_of_embeddings(tmp_path):
    dev = read_pairs(data_path("stsb", "dev.csv"), score_range=(0, 5))
    baseline = _bag_of_embeddings_spearman(dev) * 100
    result = train(
        train=data_path("stsb", "train.csv"),
        dev=data_path("stsb", "dev.csv"),
        score_range=(0, 5),
        encoder="lstm",
        output_dir=tmp_path / "lstm",
        epochs=1,
        batch_size=32,
        show_progress=False,
    )
    assert result.loss == "cosent"
    assert result.dev_metrics["spearman"] > baseline + 2, (result.dev_metrics, baseline)
    assert sentsim.load(tmp_path / "lstm").config.encoder == "lstm"


def test_losses_doctests_pass() -> None:
    import doctest

    from sentsim import losses

    result = doctest.testmod(losses)
    assert result.attempted >= 5 and result.failed == 0
