"""Tests for sentsim.model.SiameseModel: encoding, the similarity head, decisions, truncation and atomic saving."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import sentsim
from sentsim import ConfigError, ModelConfig, OutputExistsError, SiameseModel, Verdict
from sentsim.config import CONFIG_NAME
from sentsim.similarity import METRICS, pairwise

SENTS = [
    "A man is playing a guitar.",
    "The cat sleeps on the sofa.",
    "Stock prices fell sharply on Monday.",
    "Two children are running in the park.",
]
OTHER = [
    "Someone plays the guitar.",
    "A dog barks at the mailman.",
    "The market dropped at the start of the week.",
    "Kids run through a field.",
]
MODEL_LOGGER = "sentsim.model"


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> SiameseModel:
    """The tiny model, loaded once per module. Tests that change its config wrap its encoder in a new model."""
    return sentsim.load(tiny_model_dir, device="cpu")


def _with_config(model: SiameseModel, **config) -> SiameseModel:
    return SiameseModel(model.encoder, ModelConfig(**config))


def _perturbed(folder: Path, seed: int = 1) -> SiameseModel:
    """A model loaded from ``folder`` whose weights were shifted, so its embeddings differ from the saved ones."""
    import torch

    model = sentsim.load(folder, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.encoder.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.2)
    return model


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _leftovers(target: Path) -> list[str]:
    """Temporary or set-aside folders a save left beside ``target``."""
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def _model_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == MODEL_LOGGER and r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------- encode
def test_encode_returns_normalised_float32_rows(tiny):
    emb = tiny.encode(SENTS)
    assert emb.dtype == np.float32
    assert emb.shape == (len(SENTS), 32) == (len(SENTS), tiny.dimension)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # distinct sentences get distinct embeddings (not a constant vector)
    assert not np.allclose(emb[0], emb[1], atol=1e-3)


def test_encode_normalises_without_a_normalize_module(tiny):
    from sentence_transformers import SentenceTransformer

    bare = SentenceTransformer(modules=[tiny.encoder[0], tiny.encoder[1]], device="cpu")  # no Normalize
    raw_norms = np.linalg.norm(bare.encode(SENTS), axis=1)
    assert not np.allclose(raw_norms, 1.0, atol=1e-3)
    emb = SiameseModel(bare).encode(SENTS)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb, tiny.encode(SENTS), atol=1e-6)


def test_encode_single_string_returns_vector(tiny):
    one = tiny.encode(SENTS[0])
    assert one.shape == (tiny.dimension,)
    assert one.dtype == np.float32
    np.testing.assert_allclose(one, tiny.encode([SENTS[0]])[0], atol=1e-6)


def test_encode_accepts_tuple(tiny):
    np.testing.assert_allclose(tiny.encode(tuple(SENTS[:2])), tiny.encode(SENTS[:2]), atol=1e-6)


def test_encode_empty_list(tiny):
    emb = tiny.encode([])
    assert emb.shape == (0, tiny.dimension)
    assert emb.dtype == np.float32


@pytest.mark.parametrize("bad", [3, None, b"bytes", ["nested"]])
def test_encode_non_string_item_is_config_error(tiny, bad):
    with pytest.raises(ConfigError, match=r"sentences\[1\]") as info:
        tiny.encode(["fine", bad])
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------------------------- similarity
def test_similarity_of_two_strings_is_python_float(tiny):
    score = tiny.similarity(SENTS[0], OTHER[0])
    assert type(score) is float
    assert -1.0 <= score <= 1.0
    assert tiny.similarity(SENTS[0], SENTS[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("metric", METRICS)
def test_similarity_lists_equals_pairwise_on_embeddings(tiny, metric):
    scores = tiny.similarity(SENTS, OTHER, metric=metric)
    assert isinstance(scores, np.ndarray)
    assert scores.shape == (len(SENTS),)
    expected = pairwise(tiny.encode(SENTS), tiny.encode(OTHER), metric)
    np.testing.assert_allclose(scores, expected, atol=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_similarity_uses_config_metric_by_default(tiny, metric):
    model = _with_config(tiny, metric=metric)
    expected = pairwise(tiny.encode(SENTS), tiny.encode(OTHER), metric)
    np.testing.assert_allclose(model.similarity(SENTS, OTHER), expected, atol=1e-5)
    # and those differ from cosine, so the check above really tells the metrics apart
    assert not np.allclose(expected, pairwise(tiny.encode(SENTS), tiny.encode(OTHER), "cosine"), atol=1e-3)


def test_similarity_unequal_lengths_is_config_error(tiny):
    with pytest.raises(ConfigError, match="same length"):
        tiny.similarity(SENTS, OTHER[:3])
    with pytest.raises(ConfigError):
        tiny.similarity(SENTS[0], OTHER[:2])


def test_unknown_metric_is_config_error(tiny):
    with pytest.raises(ConfigError, match="jaccard"):
        tiny.similarity(SENTS[0], OTHER[0], metric="jaccard")
    with pytest.raises(ConfigError):
        tiny.similarity_matrix(SENTS, OTHER, metric="jaccard")
    with pytest.raises(ConfigError):
        tiny.compare(SENTS[0], OTHER[0], metric="jaccard", threshold=0.5)
    model = _with_config(tiny)
    with pytest.raises(ConfigError):
        model.metric = "jaccard"
    assert model.metric == "cosine"


@pytest.mark.parametrize("metric", METRICS)
def test_similarity_matrix_shape_and_diagonal(tiny, metric):
    a, b = SENTS[:3], OTHER
    mat = tiny.similarity_matrix(a, b, metric=metric)
    assert mat.shape == (3, 4)
    diag = np.array([mat[i, i] for i in range(3)])
    np.testing.assert_allclose(diag, tiny.similarity(a, b[:3], metric=metric), atol=1e-5)
    # an off-diagonal cell is the pair it names
    assert mat[0, 3] == pytest.approx(tiny.similarity(a[0], b[3], metric=metric), abs=1e-5)


# ---------------------------------------------------------------------------------------------- compare
def test_compare_uses_config_threshold_and_flips_at_score(tiny):
    score = tiny.similarity(SENTS[0], OTHER[0])
    below = _with_config(tiny, thresholds={"cosine": score - 0.01})
    verdict = below.compare(SENTS[0], OTHER[0])
    assert isinstance(verdict, Verdict)
    assert verdict.same is True
    assert verdict.score == pytest.approx(score, abs=1e-6)
    assert verdict.threshold == pytest.approx(score - 0.01)
    assert verdict.metric == "cosine"

    above = _with_config(tiny, thresholds={"cosine": score + 0.01})
    assert above.compare(SENTS[0], OTHER[0]).same is False
    # "at least the threshold" counts as same meaning
    assert _with_config(tiny, thresholds={"cosine": score}).compare(SENTS[0], OTHER[0]).same is True


def test_compare_without_threshold_is_config_error(tiny):
    with pytest.raises(ConfigError, match="threshold"):
        _with_config(tiny).compare(SENTS[0], OTHER[0])
    # a threshold for another metric does not count
    model = _with_config(tiny, thresholds={"cosine": 0.5})
    with pytest.raises(ConfigError, match="euclidean"):
        model.compare(SENTS[0], OTHER[0], metric="euclidean")


def test_compare_explicit_threshold_wins(tiny):
    model = _with_config(tiny, thresholds={"cosine": -1.0})
    assert model.compare(SENTS[0], OTHER[0]).same is True
    verdict = model.compare(SENTS[0], OTHER[0], threshold=1.5)
    assert verdict.same is False
    assert verdict.threshold == 1.5


def test_compare_other_metric_uses_its_threshold(tiny):
    score = tiny.similarity(SENTS[0], OTHER[0], metric="manhattan")
    model = _with_config(tiny, thresholds={"cosine": -1.0, "manhattan": score + 0.01})
    verdict = model.compare(SENTS[0], OTHER[0], metric="manhattan")
    assert verdict.metric == "manhattan"
    assert verdict.score == pytest.approx(score, abs=1e-6)
    assert verdict.same is False


# ---------------------------------------------------------------------------------------------- truncation
LONG = [f"{word} " * 100 for word in ("hello", "guitar", "market")]


def test_truncation_logs_one_warning_with_counts(tiny, caplog):
    assert tiny.max_seq_length == 64
    with caplog.at_level(logging.WARNING, logger=MODEL_LOGGER):
        emb = tiny.encode([LONG[0], SENTS[0], LONG[1], SENTS[1], LONG[2]])
    assert emb.shape == (5, tiny.dimension)
    records = _model_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert "3 of 5" in message
    assert "64" in message


def test_truncation_single_string(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger=MODEL_LOGGER):
        tiny.encode(LONG[0])
    records = _model_records(caplog)
    assert len(records) == 1
    assert "1 of 1" in records[0].getMessage()


def test_short_sentences_log_nothing(tiny, caplog):
    with caplog.at_level(logging.DEBUG, logger=MODEL_LOGGER):
        tiny.encode(SENTS)
        tiny.similarity(SENTS, OTHER)
    assert _model_records(caplog) == []


def test_truncation_boundary_counts_special_tokens(tiny, caplog):
    """64 ids with [CLS] and [SEP] fit the limit of 64; 65 do not."""
    tokenizer = tiny.encoder.tokenizer
    fits, cut = "hello " * 62, "hello " * 63
    assert len(tokenizer(fits)["input_ids"]) == 64
    assert len(tokenizer(cut)["input_ids"]) == 65
    with caplog.at_level(logging.WARNING, logger=MODEL_LOGGER):
        tiny.encode([fits])
    assert _model_records(caplog) == []
    with caplog.at_level(logging.WARNING, logger=MODEL_LOGGER):
        tiny.encode([fits, cut])
    records = _model_records(caplog)
    assert len(records) == 1
    assert "1 of 2" in records[0].getMessage()


def test_truncation_counted_for_text_with_more_tokens_than_characters(tiny, caplog):
    text = "각 " * 30  # 60 characters, 92 token ids with the bundled (BERT) tokenizer
    assert len(text) <= tiny.max_seq_length - 2
    assert len(tiny.encoder.tokenizer(text)["input_ids"]) > tiny.max_seq_length
    with caplog.at_level(logging.WARNING, logger=MODEL_LOGGER):
        tiny.encode([text])
    records = _model_records(caplog)
    assert len(records) == 1
    assert "1 of 1" in records[0].getMessage()


# ---------------------------------------------------------------------------------------------- info
def test_info_describes_the_model(tiny):
    model = _with_config(tiny, metric="dot", thresholds={"dot": 0.25}, training={"epochs": 1})
    info = model.info()
    assert info["encoder"] == "transformer"
    assert info["dimension"] == 32
    assert info["max_seq_length"] == 64
    assert info["metric"] == "dot"
    assert info["thresholds"] == {"dot": 0.25}
    assert info["training"] == {"epochs": 1}
    assert (info["backend"], info["runs_on"]) == (model.config.backend, model.backend)
    assert model.threshold == 0.25
    json.dumps(info)  # serialisable as is


# ---------------------------------------------------------------------------------------------- save / load
def test_save_load_round_trip(tiny, tmp_path):
    from sentence_transformers import SentenceTransformer

    training = {"loss": "CoSENT", "epochs": 2, "lr": 2e-5, "data": ["stsb"]}
    model = _with_config(tiny, metric="manhattan", thresholds={"manhattan": 0.3, "cosine": 0.8}, training=training)
    out = tmp_path / "saved"
    returned = model.save(out)
    assert returned == out.resolve()
    assert (out / CONFIG_NAME).is_file()
    assert (out / "modules.json").is_file()

    loaded = sentsim.load(out, device="cpu")
    np.testing.assert_allclose(loaded.encode(SENTS), tiny.encode(SENTS), atol=1e-6)
    assert loaded.config.metric == "manhattan"
    assert loaded.config.thresholds == {"manhattan": 0.3, "cosine": 0.8}
    assert loaded.config.training == training
    assert loaded.config.encoder == "transformer"

    plain = SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(plain.encode(SENTS, normalize_embeddings=True), tiny.encode(SENTS), atol=1e-6)


def test_save_refuses_folder_holding_a_model(tiny, tiny_model_dir, tmp_path):
    target = _copy_model(tiny_model_dir, tmp_path / "existing")
    before = (target / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError) as info:
        _with_config(tiny, metric="dot").save(target)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(target.resolve()) in message
    assert "overwrite" in message
    assert "model" in message
    assert (target / "model.safetensors").read_bytes() == before
    assert not (target / CONFIG_NAME).exists()
    assert _leftovers(target) == []


def test_save_refuses_non_empty_folder_of_other_files(tiny, tmp_path):
    target = tmp_path / "notes"
    target.mkdir()
    (target / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="overwrite") as info:
        tiny.save(target)
    assert str(target.resolve()) in str(info.value)
    assert (target / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert not (target / "modules.json").exists()


def test_save_refuses_a_file(tiny, tmp_path):
    target = tmp_path / "model"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="not a folder"):
        tiny.save(target, overwrite=True)
    assert target.read_text(encoding="utf-8") == "x"


def test_save_into_empty_existing_folder(tiny, tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    tiny.save(target)
    np.testing.assert_allclose(sentsim.load(target, device="cpu").encode(SENTS), tiny.encode(SENTS), atol=1e-6)
    assert _leftovers(target) == []


def test_save_overwrite_replaces_model_without_leftovers(tiny, tiny_model_dir, tmp_path):
    target = _copy_model(tiny_model_dir, tmp_path / "model")
    new = _perturbed(tiny_model_dir)
    new.config.thresholds = {"cosine": 0.42}
    new_emb = new.encode(SENTS)
    assert not np.allclose(new_emb, tiny.encode(SENTS), atol=1e-3)

    new.save(target, overwrite=True)
    loaded = sentsim.load(target, device="cpu")
    np.testing.assert_allclose(loaded.encode(SENTS), new_emb, atol=1e-6)
    assert loaded.config.thresholds == {"cosine": 0.42}
    assert _leftovers(target) == []


def test_save_overwrite_replaces_folder_of_other_files(tiny, tmp_path):
    target = tmp_path / "notes"
    target.mkdir()
    (target / "notes.txt").write_text("old", encoding="utf-8")
    tiny.save(target, overwrite=True)
    np.testing.assert_allclose(sentsim.load(target, device="cpu").encode(SENTS), tiny.encode(SENTS), atol=1e-6)
    assert _leftovers(target) == []


# ---------------------------------------------------------------------------------------------- atomicity
def test_failed_encoder_save_keeps_old_model(tiny, tiny_model_dir, tmp_path, monkeypatch):
    target = _copy_model(tiny_model_dir, tmp_path / "model")
    old_emb = tiny.encode(SENTS)
    new = _perturbed(tiny_model_dir)

    def broken_save(path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        Path(path, "modules.json").write_text("[", encoding="utf-8")
        Path(path, "model.safetensors").write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(new.encoder, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        new.save(target, overwrite=True)

    assert _leftovers(target) == []
    np.testing.assert_allclose(sentsim.load(target, device="cpu").encode(SENTS), old_emb, atol=1e-6)


def test_failed_final_rename_puts_old_model_back(tiny, tiny_model_dir, tmp_path, monkeypatch):
    target = _copy_model(tiny_model_dir, tmp_path / "model")
    old_emb = tiny.encode(SENTS)
    new = _perturbed(tiny_model_dir)
    real_rename = os.rename

    def rename(src, dst):
        if ".tmp-" in os.fspath(src):
            raise OSError("rename failed")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        new.save(target, overwrite=True)
    monkeypatch.undo()

    assert _leftovers(target) == []
    np.testing.assert_allclose(sentsim.load(target, device="cpu").encode(SENTS), old_emb, atol=1e-6)


# Overwrites the model at argv[2] and sleeps in the middle of save() until killed.
# "config": loads the tiny model from argv[1], shifts its weights and sleeps in ModelConfig.save, i.e. after the
#   encoder was written to the temp folder and before anything was renamed.
# "rename": sleeps in the second rename, after the old model was moved aside and before the new one is in place.
#   Its encoder "saves" by copying the finished model folder argv[1], so the process needs no torch import.
_KILL_SCRIPT = textwrap.dedent(
    """
    import os, shutil, sys, time
    import sentsim
    import sentsim.config

    source, target, stage = sys.argv[1], sys.argv[2], sys.argv[3]
    if stage == "config":
        import torch

        model = sentsim.load(source, device="cpu")
        with torch.no_grad():
            for param in model.encoder.parameters():
                param.add_(0.5)
        sentsim.config.ModelConfig.save = lambda self, folder: time.sleep(120)
    else:
        class CopyingEncoder:
            def save(self, path):
                shutil.copytree(source, path, dirs_exist_ok=True)

        model = sentsim.SiameseModel(CopyingEncoder())
        real_rename = os.rename

        def slow_rename(src, dst):
            if ".tmp-" in os.fspath(src):
                time.sleep(120)
            return real_rename(src, dst)

        os.rename = slow_rename
    model.save(target, overwrite=True)
    print("saved", flush=True)
    """
)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"save subprocess exited early ({proc.returncode}):\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the save subprocess")


def test_killed_save_leaves_old_model_whole(tiny, tiny_model_dir, tmp_path):
    """SIGKILL a real process in the middle of save(overwrite=True): the old model at the path survives.

    Two processes run side by side, each overwriting its own copy of the model (see _KILL_SCRIPT). After the
    "rename" kill no folder is at the path; sentsim.load puts the set-aside old model back.
    """
    old_emb = tiny.encode(SENTS)
    new_model = _perturbed(tiny_model_dir).save(tmp_path / "new")
    sources = {"config": _copy_model(tiny_model_dir, tmp_path / "source"), "rename": new_model}
    targets = {stage: _copy_model(tiny_model_dir, tmp_path / stage / "model") for stage in sources}
    procs = {
        stage: subprocess.Popen(
            [sys.executable, "-c", _KILL_SCRIPT, str(sources[stage]), str(targets[stage]), stage],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stage in sources
    }
    conditions = {
        "config": lambda t: any((p / "modules.json").is_file() for p in t.parent.glob(".model.tmp-*")),
        "rename": lambda t: any(t.parent.glob(".model.old-*")) and not t.exists(),
    }
    try:
        for stage in ("rename", "config"):
            proc = procs[stage]
            _wait_for(lambda: conditions[stage](targets[stage]), proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    assert targets["config"].is_dir()
    assert not targets["rename"].exists()
    for stage, target in targets.items():
        loaded = sentsim.load(target, device="cpu")
        np.testing.assert_allclose(loaded.encode(SENTS), old_emb, atol=1e-6, err_msg=stage)
        assert not (target / CONFIG_NAME).exists(), stage  # the old model, not the new one
        assert not any(target.parent.glob(".model.old-*")), stage


def test_load_restores_model_set_aside_by_interrupted_save(tiny, tiny_model_dir, tmp_path, caplog):
    target = tmp_path / "model"
    aside = _copy_model(tiny_model_dir, tmp_path / f".{target.name}.old-abc123")
    # a half-written temp folder from the same interrupted save must not be mistaken for the model
    (tmp_path / f".{target.name}.tmp-abc123").mkdir()
    assert not target.exists()
    with caplog.at_level(logging.WARNING, logger="sentsim.loading"):
        loaded = sentsim.load(target, device="cpu")
    assert target.is_dir()
    assert not aside.exists()
    np.testing.assert_allclose(loaded.encode(SENTS), tiny.encode(SENTS), atol=1e-6)
    assert any("interrupted save" in r.getMessage() for r in caplog.records)


def test_set_aside_folder_of_another_model_is_not_restored(tiny_model_dir, tmp_path):
    _copy_model(tiny_model_dir, tmp_path / ".other.old-abc123")
    with pytest.raises(sentsim.ModelError, match="not found"):
        sentsim.load(tmp_path / "model", device="cpu")
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------------------------------------- bundled model
PARAPHRASES = [
    ("A man is playing a guitar.", "Someone plays the guitar."),
    ("A woman is slicing an onion.", "A woman cuts an onion into pieces."),
    ("The children are playing in the park.", "Kids are playing at the park."),
    ("The cat is sleeping on the couch.", "A cat naps on the sofa."),
    ("He bought a new car yesterday.", "Yesterday he purchased a new car."),
]
UNRELATED = [
    ("A man is playing a guitar.", "The stock market fell today."),
    ("A woman is slicing an onion.", "The train to Paris was delayed."),
    ("The children are playing in the park.", "Interest rates will rise next year."),
    ("The cat is sleeping on the couch.", "The senator gave a long speech."),
    ("He bought a new car yesterday.", "Volcanoes erupt when magma rises."),
]


def test_bundled_paraphrases_score_higher_than_unrelated(bundled):
    para = bundled.similarity([a for a, _ in PARAPHRASES], [b for _, b in PARAPHRASES])
    unrelated = bundled.similarity([a for a, _ in UNRELATED], [b for _, b in UNRELATED])
    assert para.min() > unrelated.max(), (para, unrelated)
    assert para.min() > 0.5
    assert bundled.dimension == 384


def test_bundled_save_load_round_trip(bundled, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = bundled.save(tmp_path / "bundled-copy")
    expected = bundled.encode(SENTS)
    loaded = sentsim.load(out, device="cpu")
    np.testing.assert_allclose(loaded.encode(SENTS), expected, atol=1e-6)
    assert loaded.config.base_model == bundled.config.base_model
    assert loaded.config.thresholds == bundled.config.thresholds
    plain = SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(plain.encode(SENTS, normalize_embeddings=True), expected, atol=1e-6)
    assert _leftovers(out) == []
