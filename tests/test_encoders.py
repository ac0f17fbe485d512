"""Tests for sentsim.encoders: the bidirectional-LSTM encoder and the starting models for training."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import sentsim
from sentsim import ConfigError, ModelConfig, SiameseModel
from sentsim.config import CONFIG_NAME
from sentsim.encoders import BUNDLED_NAME, build_lstm, new_model

SENTS = [
    "A man is playing a guitar.",
    "The cat sleeps on the sofa.",
    "Stock prices fell sharply on Monday.",
]


@pytest.fixture(scope="module")
def lstm() -> SiameseModel:
    """A fresh LSTM over the bundled model, built once per module."""
    return build_lstm(device="cpu")


@pytest.fixture(scope="module")
def lstm_saved(lstm, tmp_path_factory) -> Path:
    return lstm.save(tmp_path_factory.mktemp("lstm") / "model")


def test_build_lstm_config_and_shape(lstm):
    assert lstm.config.encoder == "lstm"
    assert lstm.config.base_model == BUNDLED_NAME
    assert lstm.config.thresholds == {}
    assert lstm.dimension == 384  # 2 directions x hidden_dim 192
    assert lstm.max_seq_length == 128
    assert lstm.info()["encoder"] == "lstm"
    assert [type(m).__name__ for m in lstm.encoder] == ["WordEmbeddings", "LSTM", "Pooling", "Normalize"]


def test_build_lstm_encodes_normalised_float32_rows(lstm):
    emb = lstm.encode(SENTS)
    assert emb.dtype == np.float32
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1], atol=1e-3)
    assert lstm.encode(SENTS[0]).shape == (384,)


def test_lstm_embeddings_copy_bundled_input_embeddings(lstm, bundled):
    import torch

    words = lstm.encoder[0].emb_layer.weight
    base = bundled.encoder[0].auto_model.get_input_embeddings().weight
    assert words.shape == base.shape == (30522, 384)
    assert torch.equal(words.detach(), base.detach())
    # a copy: training the LSTM's embeddings must not change the transformer's
    assert words.data_ptr() != base.data_ptr()
    assert words.requires_grad  # update_embeddings=True by default


def test_lstm_tokenizer_matches_bundled(lstm, bundled):
    sentence = "The quick brown fox doesn't jump over 3 lazy dogs!"
    expected = bundled.encoder.tokenizer(sentence)["input_ids"]
    assert lstm.encoder[0].tokenizer.tokenize(sentence) == expected
    features = lstm.encoder[0].preprocess([sentence])
    assert features["input_ids"][0].tolist() == expected


def test_lstm_truncation_warning(lstm, caplog):
    with caplog.at_level(logging.WARNING, logger="sentsim.model"):
        lstm.encode(["guitar " * 200, SENTS[0]])
    records = [r for r in caplog.records if r.name == "sentsim.model"]
    assert len(records) == 1
    assert "1 of 2" in records[0].getMessage()
    assert "128" in records[0].getMessage()


def test_lstm_save_load_round_trip(lstm, lstm_saved):
    assert (lstm_saved / CONFIG_NAME).is_file()
    loaded = sentsim.load(lstm_saved, device="cpu")
    assert loaded.config.encoder == "lstm"
    assert loaded.dimension == 384
    np.testing.assert_allclose(loaded.encode(SENTS), lstm.encode(SENTS), atol=1e-6)


def test_plain_sentence_transformer_loads_saved_lstm(lstm, lstm_saved):
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(lstm_saved), device="cpu")
    np.testing.assert_allclose(plain.encode(SENTS, normalize_embeddings=True), lstm.encode(SENTS), atol=1e-6)


def test_saved_lstm_without_sentsim_config_is_detected(lstm, lstm_saved, tmp_path):
    folder = Path(shutil.copytree(lstm_saved, tmp_path / "plain"))
    (folder / CONFIG_NAME).unlink()
    loaded = sentsim.load(folder, device="cpu")
    assert loaded.config.encoder == "lstm"
    np.testing.assert_allclose(loaded.encode(SENTS), lstm.encode(SENTS), atol=1e-6)


def test_build_lstm_on_another_base(tiny_model_dir):
    import torch

    model = build_lstm(tiny_model_dir, hidden_dim=8, max_seq_length=16, update_embeddings=False, device="cpu")
    assert model.dimension == 16
    assert model.max_seq_length == 16
    assert model.config.base_model == str(tiny_model_dir)
    tiny = sentsim.load(tiny_model_dir, device="cpu")
    words = model.encoder[0].emb_layer.weight
    assert torch.equal(words.detach(), tiny.encoder[0].auto_model.get_input_embeddings().weight.detach())
    assert not words.requires_grad
    emb = model.encode(SENTS)
    assert emb.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("settings", [{"hidden_dim": 0}, {"hidden_dim": -4}, {"num_layers": 0}, {"max_seq_length": 1}])
def test_build_lstm_bad_settings(settings):
    with pytest.raises(ConfigError) as info:
        build_lstm(**settings)
    assert isinstance(info.value, ValueError)
    assert next(iter(settings)) in str(info.value)


def test_new_model_transformer_has_no_thresholds(tiny_model_dir, tmp_path):
    # a trained model with thresholds: starting a new training run from it must drop them
    trained = SiameseModel(
        sentsim.load(tiny_model_dir, device="cpu").encoder,
        ModelConfig(thresholds={"cosine": 0.7}, threshold_source="dev"),
    )
    base = trained.save(tmp_path / "trained")
    assert sentsim.load(base, device="cpu").threshold == 0.7
    model = new_model("transformer", base=base, device="cpu")
    assert model.config.encoder == "transformer"
    assert model.config.thresholds == {}
    assert model.config.threshold_source is None
    assert model.threshold is None
    with pytest.raises(ConfigError, match="threshold"):
        model.compare(SENTS[0], SENTS[1])


def test_new_model_transformer_default_is_bundled_without_thresholds():
    model = new_model("transformer", device="cpu")
    assert model.dimension == 384
    assert model.config.base_model == BUNDLED_NAME
    assert model.config.thresholds == {}
    assert model.threshold is None


def test_new_model_lstm(tiny_model_dir):
    model = new_model("lstm", base=tiny_model_dir, device="cpu")
    assert model.config.encoder == "lstm"
    assert model.dimension == 384


@pytest.mark.parametrize("kind", ["nope", "Transformer", ""])
def test_new_model_unknown_encoder(kind):
    with pytest.raises(ConfigError, match="encoder"):
        new_model(kind)
