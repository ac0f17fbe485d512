"""Weight averaging (model soup): the mean is exact, weights count, mismatched models and bad settings are refused
with one line, the averaged model gets thresholds from dev, and the CLI does the same."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sentsim
from sentsim.averaging import average_models
from sentsim.cli import main
from sentsim.errors import ConfigError, ModelError, OutputExistsError
from tests.test_training import write_pairs


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, tiny_model_dir):
    """The tiny model and a copy whose floating-point weights are all shifted by +0.1."""
    other = tmp_path_factory.mktemp("shifted") / "model"
    model = sentsim.load(tiny_model_dir, device="cpu")
    with torch.no_grad():
        for param in model.encoder.parameters():
            param.add_(0.1)
    model.save(other)
    return tiny_model_dir, other


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.encoder.state_dict().items()}


def test_mean_of_two_models_is_exact(tmp_path, two_models):
    a, b = two_models
    wa, wb = _weights(sentsim.load(a, device="cpu")), _weights(sentsim.load(b, device="cpu"))
    soup = average_models([a, b], tmp_path / "soup")
    reloaded = _weights(sentsim.load(tmp_path / "soup", device="cpu"))
    for key, tensor in _weights(soup).items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (wa[key] + wb[key]) / 2)
            torch.testing.assert_close(reloaded[key], tensor)
    assert soup.config.training["averaged_from"] == [str(a), str(b)]
    assert soup.config.training["weights"] == [0.5, 0.5]


def test_weights_are_normalised_and_applied(two_models):
    a, b = two_models
    wa, wb = _weights(sentsim.load(a, device="cpu")), _weights(sentsim.load(b, device="cpu"))
    soup = average_models([a, b], weights=[3, 1])
    key = next(k for k, v in wa.items() if v.is_floating_point())
    torch.testing.assert_close(_weights(soup)[key], 0.75 * wa[key] + 0.25 * wb[key])
    assert soup.config.training["weights"] == [0.75, 0.25]


def test_averaging_a_model_with_itself_changes_nothing(two_models):
    a, _ = two_models
    model = sentsim.load(a, device="cpu")
    soup = average_models([a, a, a])
    texts = ["a cat sits on the mat", "the stock market fell"]
    np.testing.assert_allclose(soup.encode(texts), model.encode(texts), atol=1e-6)


def test_inputs_are_left_untouched(two_models):
    a, b = two_models
    ma, mb = sentsim.load(a, device="cpu"), sentsim.load(b, device="cpu")
    before = _weights(ma)
    average_models([ma, mb])
    for key, tensor in _weights(ma).items():
        assert torch.equal(tensor, before[key])


def test_dev_chooses_thresholds_and_records_figures(tmp_path, two_models):
    a, b = two_models
    dev = write_pairs(tmp_path / "dev.csv", 40, "score", seed=3)
    soup = average_models([a, b], tmp_path / "soup", dev=dev)
    assert set(soup.config.thresholds) == {"cosine", "euclidean", "manhattan", "dot"}
    assert "spearman" in soup.config.dev_metrics
    assert str(dev) in soup.config.threshold_source
    saved = json.loads((tmp_path / "soup" / "sentsim_config.json").read_text())
    assert saved["thresholds"] == pytest.approx(soup.config.thresholds)


def test_models_with_other_tensors_are_refused(tiny_model_dir):
    from sentsim.loading import bundled_model_path

    with pytest.raises(ModelError, match="cannot average") as info:
        average_models([tiny_model_dir, bundled_model_path()])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "models, weights, message",
    [
        (1, None, "two or more models"),
        (2, [1.0], "weights must be 2"),
        (2, [1.0, -1.0], "non-negative"),
        (2, [0.0, 0.0], "positive sum"),
    ],
)
def test_bad_settings_are_config_errors(two_models, models, weights, message):
    with pytest.raises(ConfigError, match=message):
        average_models(list(two_models[:models]), weights=weights)


def test_existing_output_is_kept_without_overwrite(tmp_path, two_models):
    out = tmp_path / "soup"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="already holds files"):
        average_models(list(two_models), out)
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_average(tmp_path, two_models, capsys):
    a, b = two_models
    out = tmp_path / "soup"
    assert main(["-q", "average", str(a), str(b), "--output-dir", str(out), "--weights", "1,1"]) == 0
    assert "the mean of 2 models" in capsys.readouterr().out
    assert sentsim.load(out, device="cpu").config.training["weights"] == [0.5, 0.5]
    assert main(["-q", "average", str(a), str(b), "--output-dir", str(out)]) == 2
    assert "already holds a model" in capsys.readouterr().err
    assert main(["-q", "average", str(a), str(b), "--output-dir", str(tmp_path / "x"), "--weights", "1,x"]) == 2
    assert "--weights" in capsys.readouterr().err
    assert main(["-q", "average", str(a), "--output-dir", str(tmp_path / "y")]) == 2
    assert "two or more models" in capsys.readouterr().err
