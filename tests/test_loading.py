"""Tests for sentsim.loading: finding a model and refusing incomplete or unsafe folders before loading them."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import sentsim
from sentsim import ModelError
from sentsim.encoders import BUNDLED_NAME
from sentsim.loading import bundled_model_path, check_model_folder, resolve_model

SENTS = ["A man is playing a guitar.", "The cat sleeps on the sofa."]
TRANSFORMER_TYPE = "sentence_transformers.base.modules.transformer.Transformer"


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path) -> Path:
    """A fresh copy of the tiny model, free to mutate."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _assert_one_line(err: BaseException) -> str:
    assert isinstance(err, ModelError)
    assert isinstance(err, ValueError)
    message = str(err)
    assert message.strip()
    assert "\n" not in message and "\r" not in message, message
    return message


def _load_error(path, match: str | None = None) -> str:
    """The one-line message of the ModelError that sentsim.load(path) raises."""
    with pytest.raises(ModelError) as info:
        sentsim.load(path, device="cpu")
    message = _assert_one_line(info.value)
    if match is not None:
        assert match in message, message
    return message


def _write_modules(folder: Path, entries) -> None:
    (folder / "modules.json").write_text(json.dumps(entries), encoding="utf-8")


class _Trap:
    """Unpickling this creates the folder ``marker``: proof that something unpickled the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _trap_bytes(marker: Path) -> bytes:
    return pickle.dumps({"embeddings.word_embeddings.weight": _Trap(str(marker))})


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything calls torch.load or pickle.load(s)."""
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle a weights file")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


# ---------------------------------------------------------------------------------------------- complete folders
def test_complete_copy_passes_checks_and_loads(model_dir, tiny_model_dir):
    check_model_folder(model_dir)  # no error
    assert resolve_model(model_dir) == (str(model_dir), True)
    model = sentsim.load(model_dir, device="cpu")
    reference = sentsim.load(tiny_model_dir, device="cpu")
    np.testing.assert_allclose(model.encode(SENTS), reference.encode(SENTS), atol=1e-6)
    assert model.config.base_model == str(model_dir)
    assert model.config.thresholds == {}


# ---------------------------------------------------------------------------------------------- missing things
def test_relative_path_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = _load_error("./nope", "./nope")
    assert "not found" in message


def test_absolute_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "missing" / "model"
    message = _load_error(missing, str(missing))
    assert "not found" in message
    with pytest.raises(ModelError, match="not found"):
        check_model_folder(missing)
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(missing))


def test_missing_modules_json(model_dir):
    (model_dir / "modules.json").unlink()
    message = _load_error(model_dir, str(model_dir))
    assert "modules.json" in message


def test_plain_hf_folder_with_only_pickle_weights(tmp_path, no_unpickling):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(_trap_bytes(marker))
    message = _load_error(folder, str(folder))
    assert "pickle" in message and "safetensors" in message and "pytorch_model.bin" in message
    assert not marker.exists()


def test_missing_transformer_config(model_dir):
    (model_dir / "config.json").unlink()
    message = _load_error(model_dir, str(model_dir))
    assert "config.json" in message
    assert "Transformer" in message


def test_missing_weights(model_dir):
    (model_dir / "model.safetensors").unlink()
    message = _load_error(model_dir, str(model_dir))
    assert "model.safetensors" in message


def test_pooling_folder_missing_config(model_dir):
    (model_dir / "1_Pooling" / "config.json").unlink()
    message = _load_error(model_dir, str(model_dir / "1_Pooling"))
    assert "config.json" in message
    assert "Pooling" in message


def test_pooling_folder_missing_entirely(model_dir):
    shutil.rmtree(model_dir / "1_Pooling")
    message = _load_error(model_dir, str(model_dir / "1_Pooling"))
    assert "missing" in message


# ---------------------------------------------------------------------------------------------- pickle weights
@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.pkl"])
def test_pickle_only_weights_refused_before_unpickling(model_dir, tmp_path, name, no_unpickling):
    (model_dir / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (model_dir / name).write_bytes(_trap_bytes(marker))
    message = _load_error(model_dir, str(model_dir))
    assert "pickle" in message
    assert "safetensors only" in message
    assert name in message
    with pytest.raises(ModelError, match="pickle"):
        check_model_folder(model_dir)
    assert not marker.exists()


def test_pickle_beside_safetensors_loads_safetensors(model_dir, tiny_model_dir, tmp_path, no_unpickling):
    marker = tmp_path / "unpickled"
    (model_dir / "pytorch_model.bin").write_bytes(_trap_bytes(marker))
    check_model_folder(model_dir)
    model = sentsim.load(model_dir, device="cpu")
    assert not marker.exists()
    shutil.copytree(tiny_model_dir, tmp_path / "reference")
    reference = sentsim.load(tmp_path / "reference", device="cpu")
    np.testing.assert_allclose(model.encode(SENTS), reference.encode(SENTS), atol=1e-6)


# ---------------------------------------------------------------------------------------------- modules.json
@pytest.mark.parametrize("type_name", ["os.system", "mypkg.Evil", "sentence_transformers_evil.Module", ""])
def test_module_type_outside_allow_list(model_dir, tmp_path, monkeypatch, type_name):
    # an importable package that would leave a marker if anything imported it
    package = tmp_path / "pkgs"
    for name in ("mypkg", "sentence_transformers_evil"):
        (package / name).mkdir(parents=True)
        (package / name / "__init__.py").write_text(
            f"import os\nos.makedirs({str(tmp_path / 'imported')!r}, exist_ok=True)\n"
            "class Evil: pass\nclass Module: pass\n",
            encoding="utf-8",
        )
    monkeypatch.syspath_prepend(str(package))
    entries = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    entries[1]["type"] = type_name
    _write_modules(model_dir, entries)

    message = _load_error(model_dir, str(model_dir / "modules.json"))
    assert "allow-list" in message
    assert repr(type_name) in message
    assert not (tmp_path / "imported").exists()


def test_module_without_type_is_refused(model_dir):
    entries = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    del entries[0]["type"]
    _write_modules(model_dir, entries)
    _load_error(model_dir, "allow-list")


@pytest.mark.parametrize(
    "content",
    [b"not json {", b"", b"[]", b"{}", b'{"type": "x"}', b"[1, 2]", b'"modules"', b"\xff\xfe\x00"],
    ids=["garbage", "empty-file", "empty-list", "object", "one-object", "numbers", "string", "binary"],
)
def test_malformed_modules_json(model_dir, content):
    (model_dir / "modules.json").write_bytes(content)
    message = _load_error(model_dir, str(model_dir / "modules.json"))
    assert "JSON" in message or "list of modules" in message


def test_module_folder_named_in_modules_json_is_missing(model_dir):
    entries = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    entries.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    _write_modules(model_dir, entries)
    message = _load_error(model_dir, str(model_dir / "3_Dense"))
    assert "Dense" in message


def test_broken_sentsim_config_is_model_error(model_dir):
    (model_dir / "sentsim_config.json").write_text("{not json", encoding="utf-8")
    _load_error(model_dir, "sentsim_config.json")
    (model_dir / "sentsim_config.json").write_text(json.dumps({"encoder": "gru"}), encoding="utf-8")
    _load_error(model_dir, "encoder")


def test_transformer_config_that_is_not_json_is_model_error(model_dir):
    (model_dir / "config.json").write_text("{not json", encoding="utf-8")
    _load_error(model_dir, str(model_dir))


def test_corrupt_safetensors_is_model_error(model_dir):
    (model_dir / "model.safetensors").write_bytes(b"\x00" * 64)
    _load_error(model_dir, str(model_dir))


# ---------------------------------------------------------------------------------------------- hub ids / bundled
def test_hub_id_offline_is_one_line_model_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("sentsim-test/no-such-model") == ("sentsim-test/no-such-model", False)
    message = _load_error("sentsim-test/no-such-model", "sentsim-test/no-such-model")
    assert "hub id" in message


def test_resolve_none_is_bundled_folder():
    location, is_local = resolve_model(None)
    assert is_local is True
    assert location == bundled_model_path()
    assert (Path(location) / "modules.json").is_file()


def test_model_without_normalize_folder_loads(model_dir, tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    shutil.rmtree(model_dir / "2_Normalize")
    reference = SentenceTransformer(str(model_dir), device="cpu").encode(SENTS)  # plain ST loads it
    np.testing.assert_allclose(sentsim.load(model_dir, device="cpu").encode(SENTS), reference, atol=1e-6)
    check_model_folder(bundled_model_path())  # sentsim.load(<the bundled folder's path>) is refused too


def test_load_none_gives_bundled_model(bundled):
    assert bundled.dimension == 384
    assert bundled.max_seq_length == 256
    assert bundled.config.encoder == "transformer"
    assert bundled.config.base_model == BUNDLED_NAME
    emb = bundled.encode(SENTS)
    assert emb.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
