"""sentsim.backends: the ONNX Runtime and OpenVINO backends (fp32 and int8) against the torch encoder, their cache,
and a saved model that reloads with its backend. No timing here: speed lives in eval/bench_speed.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import sentsim  # noqa: E402
from sentsim import backends  # noqa: E402
from sentsim.errors import ConfigError, ModelError  # noqa: E402

SENTENCES = [
    "A man plays a guitar.",
    "Someone is playing a guitar.",
    "The stock market fell sharply today.",
    "how do i change my pin",
    "A woman is slicing an onion into thin rings on a wooden board in the kitchen.",
    "Two dogs run across a snowy field, chasing a red ball that bounces away from them.",
    "?",
    "naïve café ünïcode — and emoji 🙂",
    "word " * 300,  # over the 256-token limit: truncated the same way on every backend
] + [f"sentence number {i} about topic {i % 7}" for i in range(40)]

# The tolerances CI holds each backend to, per sentence, as cosine against the torch embedding of the same model.
# fp32 ONNX and OpenVINO are the same arithmetic; int8 loses a little, which moves STS-B test Spearman by 0.3 or
# less (BENCHMARKS.md). Dynamic int8 (onnx-int8): STS-B test sentences mean 0.992, worst 0.967. Static int8
# (openvino-int8, the default on CPUs): issue 6's bar, 0.99 for every sentence, which its recipe meets on every
# STS-B test sentence (worst 0.9914 with bf16, 0.9920 in f32; BENCHMARKS.md) and on the odd sentences here.
# Those int8 bars hold on CPUs with an int8 dot product (VNNI). Without one (AVX2 only), int8 kernels sum through
# 16-bit values that saturate and drift further: measured on a 2-core AMD EPYC with AVX2 only, on these sentences
# onnx-int8 worst 0.968 / mean 0.989 and openvino-int8 worst 0.979 / mean 0.996, and openvino-int8's worst STS-B
# test sentence 0.989; auto skips int8 on such a CPU and runs OpenVINO in fp32, so int8 is never its default there.
VNNI = backends.cpu_has_int8_dot_product() is not False
MIN_COSINE = {"onnx": 0.9999, "onnx-int8": 0.95, "openvino": 0.9999, "openvino-int8": 0.99 if VNNI else 0.97}
MEAN_COSINE = {"onnx": 0.99999, "onnx-int8": 0.99 if VNNI else 0.98, "openvino": 0.99999, "openvino-int8": 0.995}
STSB_MIN_COSINE = 0.99 if VNNI else 0.98  # openvino-int8, each STS-B test sentence
FAST = [
    "onnx",
    "onnx-int8",
    pytest.param("openvino", marks=pytest.mark.skipif(not backends.openvino_available(), reason="no OpenVINO")),
    pytest.param("openvino-int8", marks=pytest.mark.skipif(not backends.openvino_available(), reason="no OpenVINO")),
]
needs_openvino = pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO and NNCF not installed")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """Exports of models sentsim must not write beside (the bundled one) go to a cache of the test session's."""
    monkeypatch.setenv("SENTSIM_CACHE", str(tmp_path_factory.getbasetemp() / "sentsim-cache"))


@pytest.mark.parametrize("backend", FAST)
def test_bundled_model_on_each_backend_matches_torch(bundled, backend):
    fast = sentsim.load(backend=backend, device="cpu")
    assert fast.backend == backend and fast.dimension == bundled.dimension
    ref, got = bundled.encode(SENTENCES), fast.encode(SENTENCES, batch_size=8)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = (ref * got).sum(axis=1)
    assert cos.min() >= MIN_COSINE[backend] and cos.mean() >= MEAN_COSINE[backend], (cos.min(), cos.mean())
    single = fast.encode(SENTENCES[3])  # one string: one vector, as with torch
    # dynamic int8 quantizes activations with one scale per batch, so a sentence alone comes out a little different;
    # static int8 has fixed scales, but OpenVINO runs a sentence alone on a model compiled for its padded shape,
    # whose kernels round differently in bf16 (STS-B test: alone against batched, worst 0.994); fp32 is exact
    assert single.shape == (bundled.dimension,) and float(single @ got[3]) > (
        {"onnx-int8": 0.98, "openvino-int8": 0.99 if VNNI else 0.98}.get(backend, 0.9999)
    )
    # the similarity head and the verdict work on top, with the model's thresholds
    assert fast.compare("A man plays a guitar.", "Someone is playing a guitar.").same


def test_a_saved_model_reloads_with_its_backend_and_its_export(tiny_model_dir, tmp_path):
    model = sentsim.load(tiny_model_dir, backend="onnx", device="cpu")
    folder = model.save(tmp_path / "saved")
    assert json.loads((folder / "sentsim_config.json").read_text())["backend"] == "onnx"
    assert (folder / "onnx" / "model.onnx").is_file()  # the export travels with the model
    stamp = (folder / "onnx" / "model.onnx").stat().st_mtime_ns
    again = sentsim.load(folder, device="cpu")
    assert again.backend == "onnx"
    assert (folder / "onnx" / "model.onnx").stat().st_mtime_ns == stamp  # no second export
    np.testing.assert_allclose(again.encode(SENTENCES[:5]), model.encode(SENTENCES[:5]), atol=1e-5)
    torch_one = sentsim.load(folder, backend="torch", device="cpu")  # the caller's choice wins over the saved one
    assert torch_one.backend == "torch"
    assert (torch_one.encode(SENTENCES[:5]) * again.encode(SENTENCES[:5])).sum(1).min() > 0.9999


def test_torch_bf16_keeps_each_sentence_within_0_99_of_fp32_and_needs_no_export(bundled, tmp_path):
    fast = sentsim.load(backend="torch-bf16", device="cpu")
    assert fast.backend == "torch-bf16"
    ref, got = bundled.encode(SENTENCES), fast.encode(SENTENCES, batch_size=8)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = (ref * got).sum(axis=1)
    assert cos.min() >= 0.99 and cos.max() < 1 - 1e-7, (cos.min(), cos.max())  # bf16 ran, and stayed close
    assert str(next(fast.encoder.parameters()).dtype) == "torch.float32"  # weights stay fp32: autocast, no cast
    with pytest.raises(ConfigError, match="torch-bf16"):
        backends.export_backend(fast.encoder, "torch-bf16", tmp_path)
    assert not any(tmp_path.iterdir())


@needs_openvino
def test_openvino_bf16_runs_the_fp32_file_in_bf16_close_to_fp32_and_reloads(bundled, tiny_model_dir, tmp_path):
    import shutil

    fast = sentsim.load(backend="openvino-bf16", device="cpu")
    assert fast.backend == "openvino-bf16"
    assert fast._fast.path.name == "openvino_model.xml"  # the fp32 model: no file of its own, no int8
    native = backends._native_bf16(fast._fast._core)
    assert fast._fast.precision == ("bf16" if native else "f32")
    ref, got = bundled.encode(SENTENCES), fast.encode(SENTENCES, batch_size=8)
    cos = (ref * got).sum(axis=1)
    assert cos.min() >= 0.999, cos.min()  # bf16 products only: far closer to fp32 than int8's 0.99 bar
    if native:
        assert cos.min() < 1 - 1e-7  # bf16 did run
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    sentsim.load(folder, backend="openvino-bf16", device="cpu").save(folder, overwrite=True)
    again = sentsim.load(folder, device="cpu")
    assert again.backend == "openvino-bf16"
    assert sorted(p.name for p in (folder / "onnx").glob("*.xml")) == ["openvino_model.xml"]


@needs_openvino
def test_openvino_bf16_runs_in_f32_with_a_warning_where_bf16_is_not_native(
    tiny_model_dir, tmp_path, monkeypatch, caplog
):
    import shutil

    folder = tmp_path / "model"  # a copy: the export goes beside the model, not into the shared fixture
    shutil.copytree(tiny_model_dir, folder)
    monkeypatch.setattr(backends, "_native_bf16", lambda core: False)
    with caplog.at_level("WARNING", logger="sentsim"):
        model = sentsim.load(folder, backend="openvino-bf16", device="cpu")
    assert model._fast.precision == "f32"
    assert "no native bf16" in caplog.text
    exact = sentsim.load(tiny_model_dir, backend="torch", device="cpu").encode(SENTENCES)
    assert ((exact * model.encode(SENTENCES)).sum(axis=1)).min() > 0.9999


def test_changed_weights_are_exported_again(tiny_model_dir, tmp_path):
    import shutil

    import torch

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    first = sentsim.load(folder, backend="onnx", device="cpu")
    before = first.encode(SENTENCES[:3])
    with torch.no_grad():  # "train" it: other weights, same folder
        for p in first.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    first.save(folder, overwrite=True)
    second = sentsim.load(folder, device="cpu")
    assert second.backend == "onnx"
    ref = second.set_backend("torch").encode(SENTENCES[:3])
    fresh = second.set_backend("onnx").encode(SENTENCES[:3])
    assert (ref * fresh).sum(1).min() > 0.9999  # the export follows the new weights...
    assert (before * fresh).sum(1).min() < 0.999  # ...which differ from the old ones


def test_int8_export_is_cached_and_reused(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    model = sentsim.load(folder, device="cpu")
    path = backends.export_onnx(model.encoder, "onnx-int8", folder)
    assert path == folder / "onnx" / "model_qint8.onnx" and path.stat().st_size > 0
    record = json.loads((folder / "onnx" / "sentsim_onnx.json").read_text())
    assert set(record) == {"model.onnx", "model_qint8.onnx"}
    stamp = path.stat().st_mtime_ns
    assert backends.export_onnx(model.encoder, "onnx-int8", folder) == path and path.stat().st_mtime_ns == stamp
    assert not [p for p in (folder / "onnx").iterdir() if ".tmp-" in p.name]  # nothing half-written left over


def test_bad_choices_are_one_clear_error(tiny_model_dir, monkeypatch):
    choices = "auto, torch, torch-bf16, onnx, onnx-int8, openvino, openvino-bf16, openvino-int8"
    with pytest.raises(ConfigError, match=f"one of {choices}, not 'trt'"):
        sentsim.load(tiny_model_dir, backend="trt")
    lstm = sentsim.build_lstm(tiny_model_dir, hidden_dim=8, device="cpu")
    with pytest.raises(ConfigError, match="transformer encoders only"):
        lstm.set_backend("onnx")
    assert lstm.backend == "torch"
    monkeypatch.setattr(backends, "onnx_available", lambda: False)
    with pytest.raises(ConfigError, match="needs ONNX Runtime"):
        sentsim.load(tiny_model_dir, backend="onnx-int8")
    monkeypatch.setattr(backends, "openvino_available", lambda int8=True: False)
    with pytest.raises(ConfigError, match="needs OpenVINO: pip install openvino nncf onnx"):
        sentsim.load(tiny_model_dir, backend="openvino-int8")


def test_cli_takes_the_backend(capsys):
    from sentsim.cli import main

    assert main(["score", "A man plays a guitar.", "Someone is playing a guitar.", "--backend", "onnx"]) == 0
    assert "same meaning" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses the choice with its usage line
        main(["score", "a", "b", "--backend", "nope"])
    assert exit_info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_weights_changed_in_process_are_exported_again_before_encoding(tiny_model_dir, tmp_path):
    import shutil

    import torch

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    model = sentsim.load(folder, backend="onnx", device="cpu")
    before = model.encode(SENTENCES[:4])
    with torch.no_grad():  # what an optimizer step or load_state_dict (averaging) does: in-place updates
        for p in model.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    after = model.encode(SENTENCES[:4])  # must not come from the stale export of the old weights
    model.set_backend("torch")
    truth = model.encode(SENTENCES[:4])
    assert (after * truth).sum(1).min() > 0.9999 and (before * truth).sum(1).min() < 0.999


@needs_openvino
def test_openvino_int8_is_cached_beside_the_model_and_reloads_with_it(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    model = sentsim.load(folder, device="cpu")
    path = backends.export_backend(model.encoder, "openvino-int8", folder)
    assert path == folder / "onnx" / "openvino_model_qint8.xml" and path.with_suffix(".bin").stat().st_size > 0
    record = json.loads((folder / "onnx" / "sentsim_onnx.json").read_text())
    # the fp32 ONNX export is its source; the check is the int8 model's cosine to fp32 on its calibration texts
    assert set(record) == {"model.onnx", "openvino_model_qint8.xml", backends._CHECK}
    check = record[backends._CHECK]
    assert check["texts"] == len(backends.calibration_texts())
    assert 0 < check["worst_cosine"] <= check["mean_cosine"] <= 1
    stamp = path.stat().st_mtime_ns
    assert backends.export_backend(model.encoder, "openvino-int8", folder) == path and path.stat().st_mtime_ns == stamp
    assert not [p for p in (folder / "onnx").iterdir() if ".tmp-" in p.name]  # nothing half-written left over
    # an export made with another calibration recipe (an older sentsim recorded the weights' digest alone) is redone
    record_path = folder / "onnx" / "sentsim_onnx.json"
    record["openvino_model_qint8.xml"] = record["model.onnx"]
    record_path.write_text(json.dumps(record))
    assert backends.export_backend(model.encoder, "openvino-int8", folder) == path and path.stat().st_mtime_ns > stamp
    assert json.loads(record_path.read_text())["openvino_model_qint8.xml"].endswith(backends._INT8_RECIPE)
    # the int8 model is really quantized: far smaller weights than fp32, and really used by encode
    fp32 = backends.export_backend(model.encoder, "openvino", folder)
    assert path.with_suffix(".bin").stat().st_size < 0.6 * fp32.with_suffix(".bin").stat().st_size
    fast = sentsim.load(folder, backend="openvino-int8", device="cpu")
    ref, got = model.encode(SENTENCES), fast.encode(SENTENCES, batch_size=4)
    cos = (ref * got).sum(1)
    assert 0.9 < cos.mean() < 0.99999, cos.mean()  # close to fp32, but not fp32 itself
    saved = fast.save(tmp_path / "saved")
    assert (saved / "onnx" / "openvino_model_qint8.bin").is_file()  # the export travels with the model
    again = sentsim.load(saved, device="cpu")
    assert again.backend == "openvino-int8"
    np.testing.assert_allclose(again.encode(SENTENCES[:6]), got[:6], atol=1e-5)


@needs_openvino
def test_openvino_int8_calibrates_on_the_texts_given(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    model = sentsim.load(folder, device="cpu")
    default = backends.export_backend(model.encoder, "openvino-int8", folder)
    first = sentsim.load(folder, backend="openvino-int8", device="cpu").encode(SENTENCES)
    weights = default.with_suffix(".bin").read_bytes()
    texts = ["zzz qqq xxx"] * 3  # one odd text: other activation ranges, other scales, other embeddings
    assert backends.export_backend(model.encoder, "openvino-int8", folder, calibration=texts) == default
    second = sentsim.load(folder, backend="openvino-int8", device="cpu").encode(SENTENCES)
    assert default.with_suffix(".bin").read_bytes() != weights  # quantized again, with other scales
    assert np.abs(first - second).max() > 1e-4  # (the same recipe twice gives the same embeddings exactly)
    with pytest.raises(ConfigError, match="at least one calibration text"):
        backends.export_backend(model.encoder, "openvino-int8", folder, calibration=[])
    texts = backends.calibration_texts()
    assert len(texts) > 300  # the shipped FAQ's questions, answers and queries
    assert set(backends.SHORT_TEXTS) <= set(texts) and min(len(t.split()) for t in texts) == 1  # and short texts


@needs_openvino
def test_openvino_int8_leaves_the_named_products_in_fp32(tiny_model_dir, tmp_path):
    import re
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    model = sentsim.load(folder, device="cpu")
    path = backends.export_backend(model.encoder, "openvino-int8", folder)  # the default: KEEP_FP32 stays fp32
    default_graph = path.read_text()
    default = sentsim.load(folder, backend="openvino-int8", device="cpu").encode(SENTENCES)
    assert backends.export_backend(model.encoder, "openvino-int8", folder, keep_fp32=()) == path  # all int8
    all_int8 = sentsim.load(folder, backend="openvino-int8", device="cpu").encode(SENTENCES)

    def quantized(graph: str) -> int:  # quantize-dequantize steps that NNCF put in the graph
        return len(re.findall(r'type="FakeQuantize"', graph))

    assert 0 < quantized(default_graph) < quantized(path.read_text())
    assert np.abs(default - all_int8).max() > 1e-4  # other products in int8, other embeddings


@needs_openvino
def test_openvino_keeps_the_order_of_mixed_lengths_and_the_empty_call(tiny_model_dir):
    fp32 = sentsim.load(tiny_model_dir, backend="openvino", device="cpu")
    ref = sentsim.load(tiny_model_dir, device="cpu").encode(SENTENCES)
    for batch_size in (1, 3, 64):  # one request per sentence, several per length, one per length
        got = fp32.encode(SENTENCES, batch_size=batch_size)
        assert (ref * got).sum(1).min() > 0.9999
    assert fp32.encode([]).shape[0] == 0


@needs_openvino
def test_a_short_call_is_batched_by_multiples_of_16_tokens_with_masked_padding(tiny_model_dir):
    model = sentsim.load(tiny_model_dir, backend="openvino", device="cpu")
    runner = model._fast
    texts = SENTENCES[:8]
    lengths = [len(row) for row in runner.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    batches = runner._batches(texts, 32, bucket=16)
    assert sorted(np.concatenate([rows for rows, _, _ in batches]).tolist()) == list(range(8))
    assert len(batches) < len(set(lengths))  # fewer shapes than lengths: what the buckets are for
    for rows, feed, mask in batches:
        width = feed["input_ids"].shape[1]
        assert width % 16 == 0 and (feed["attention_mask"] == mask).all()
        assert mask.sum(axis=1).tolist() == [lengths[i] for i in rows]  # each row's own tokens, the rest masked
        assert not (feed["input_ids"] * (1 - mask)).any()
    assert runner._one_request(1, 16) is runner._one_request(1, 16) is not runner._request  # compiled once
    assert runner._one_request(2, 16) is runner._request and runner._one_request(1, 48) is runner._request
    exact = runner._batches(texts, 32)  # a long call: one length per batch, no padding
    assert all(mask.all() for _, _, mask in exact) and len(exact) == len(set(lengths))
    runner.inputs = [name for name in runner.inputs if name != "attention_mask"]  # padding would be attended to
    assert all(mask.all() for _, _, mask in runner._batches(texts, 32, bucket=16))


@needs_openvino
def test_openvino_one_sentence_at_a_time_matches_torch_despite_its_padding(bundled):
    # the bundled model, not the tiny random one: that one barely changes when padding is attended to
    ref = bundled.encode(SENTENCES)
    fp32 = sentsim.load(backend="openvino", device="cpu")
    alone = np.stack([fp32.encode([text])[0] for text in SENTENCES])  # each padded to a multiple of 16 tokens
    assert (ref * alone).sum(axis=1).min() > 0.9999
    few = fp32.encode(SENTENCES[:12], batch_size=32)  # one short call: sentences of several lengths padded together
    assert (ref[:12] * few).sum(axis=1).min() > 0.9999


@needs_openvino
def test_a_failed_openvino_conversion_is_one_clear_error_and_leaves_nothing(tiny_model_dir, tmp_path):
    model = sentsim.load(tiny_model_dir, device="cpu")
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx file")
    target = tmp_path / "openvino_model.xml"
    with pytest.raises(ModelError, match=r"openvino_model.xml: the OpenVINO export failed \(exit code 1\): "):
        backends._to_openvino(model.encoder, broken, target, False, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no half-written model, no samples file


@needs_openvino
def test_auto_runs_on_openvino_fp32_when_the_int8_model_cannot_be_made(tiny_model_dir, monkeypatch, caplog):
    monkeypatch.delenv("SENTSIM_BACKEND", raising=False)
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    real = backends._export_to

    def quantizer_fails(encoder, backend, *args, **kwargs):
        if backend == "openvino-int8":
            raise ModelError("openvino_model_qint8.xml: the OpenVINO export failed (exit code 1): nncf broke")
        return real(encoder, backend, *args, **kwargs)

    monkeypatch.setattr(backends, "_export_to", quantizer_fails)
    with caplog.at_level("WARNING", logger="sentsim.backends"):
        model = sentsim.load(tiny_model_dir, device="cpu")
    assert model.backend == "openvino" and model.config.backend == "auto"
    assert "the int8 model could not be made" in caplog.text and "nncf broke" in caplog.text


@needs_openvino
def test_auto_runs_the_bundled_model_on_int8_with_vnni_and_on_openvino_fp32_without(
    monkeypatch, bundled, tmp_path, caplog
):
    """The default on a CPU: int8 where the CPU has an int8 dot product and the int8 model passes its check against
    fp32 (with VNNI it does); OpenVINO in fp32, the same embeddings as torch, on a CPU without; saved models keep
    "auto"; weights that change in training fall back to torch instead of exporting again on every call."""
    monkeypatch.delenv("SENTSIM_BACKEND", raising=False)
    ref = bundled.encode(SENTENCES)
    with caplog.at_level("INFO", logger="sentsim.backends"):
        default = sentsim.load(device="cpu")
    assert default.config.backend == "auto"
    if VNNI:
        assert default.backend == "openvino-int8"
    else:
        assert default.backend == "openvino" and "no int8 dot product (VNNI)" in caplog.text
        assert (ref * default.encode(SENTENCES)).sum(axis=1).min() > 0.9999  # fp32: exact
    # the int8 attempt (forced on a CPU where auto skips it): the choice follows the check it records
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    caplog.clear()
    with caplog.at_level("WARNING", logger="sentsim.backends"):
        tried = sentsim.load(device="cpu")
    folder = backends._cache_folder(None, backends._weights_digest(tried.encoder))
    check = json.loads((folder / "sentsim_onnx.json").read_text())[backends._CHECK]
    assert check["texts"] == len(backends.calibration_texts())
    passes = check["worst_cosine"] >= backends.AUTO_MIN_COSINE
    assert passes or not VNNI  # the default on the CPUs it names
    assert tried.backend == ("openvino-int8" if passes else "openvino") and tried.config.backend == "auto"
    if not passes:  # this CPU: the reason is logged, and the rest is checked with int8 let through
        assert "too far from fp32" in caplog.text
        monkeypatch.setattr(backends, "AUTO_MIN_COSINE", check["worst_cosine"])
    fast = sentsim.load(device="cpu")
    assert fast.backend == "openvino-int8" and fast.config.backend == "auto"
    cos = (ref * fast.encode(SENTENCES)).sum(axis=1)
    assert cos.min() >= MIN_COSINE["openvino-int8"] and cos.mean() < 0.99999, (cos.min(), cos.mean())  # not fp32
    # the same thresholds, the same verdicts on clear cases
    assert fast.compare("A man plays a guitar.", "Someone is playing a guitar.").same
    assert not fast.compare("A man plays a guitar.", "The stock market fell sharply today.").same
    # the choice is saved as "auto", not as the backend it picked on this machine
    fast.save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "sentsim_config.json").read_text())["backend"] == "auto"
    # weights changed in place (training): torch from then on, with the new weights
    import torch

    with torch.no_grad():
        next(fast.encoder.parameters()).add_(0.01)
    with caplog.at_level("INFO", logger="sentsim.model"):
        moved = fast.encode(SENTENCES[:3])
    assert fast.backend == "torch" and "torch now" in caplog.text
    np.testing.assert_allclose(moved, fast.encoder.encode(SENTENCES[:3], normalize_embeddings=True), atol=1e-5)


@needs_openvino
def test_auto_runs_on_openvino_fp32_when_int8_moves_the_model_too_far(monkeypatch, caplog):
    monkeypatch.delenv("SENTSIM_BACKEND", raising=False)
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    monkeypatch.setattr(backends, "AUTO_MIN_COSINE", 1.01)  # no int8 model can pass this
    with caplog.at_level("WARNING", logger="sentsim.backends"):
        model = sentsim.load(device="cpu")
    assert model.backend == "openvino" and model.config.backend == "auto"
    assert "int8 moves this model's embeddings too far from fp32" in caplog.text and "openvino (fp32)" in caplog.text


@needs_openvino
def test_auto_skips_int8_on_a_cpu_without_vnni_or_without_nncf(tiny_model_dir, monkeypatch, caplog):
    monkeypatch.delenv("SENTSIM_BACKEND", raising=False)
    made = []
    real = backends._export_to
    monkeypatch.setattr(
        backends,
        "_export_to",
        lambda encoder, backend, *a, **k: made.append(backend) or real(encoder, backend, *a, **k),
    )
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: False)
    with caplog.at_level("INFO", logger="sentsim.backends"):
        assert sentsim.load(tiny_model_dir, device="cpu").backend == "openvino"
    assert made == ["openvino"] and "no int8 dot product" in caplog.text  # no int8 model made and thrown away
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: True)
    monkeypatch.setattr(backends, "openvino_available", lambda int8=True: not int8)
    caplog.clear()
    with caplog.at_level("INFO", logger="sentsim.backends"):
        assert sentsim.load(tiny_model_dir, device="cpu").backend == "openvino"
    assert made == ["openvino", "openvino"] and "NNCF is not installed" in caplog.text


@needs_openvino
def test_auto_runs_on_torch_when_the_int8_model_cannot_be_written(tiny_model_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("SENTSIM_BACKEND", raising=False)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "onnx"))

    monkeypatch.setattr(backends, "_export_to", refuse)
    with caplog.at_level("WARNING", logger="sentsim.backends"):
        model = sentsim.load(tiny_model_dir, device="cpu")
    assert model.backend == "torch" and "could not be made" in caplog.text and "Permission denied" in caplog.text
    other = not VNNI
    monkeypatch.setattr(backends, "cpu_has_int8_dot_product", lambda: other)
    caplog.clear()  # the other kind of CPU: int8 first, or OpenVINO fp32 straight away; torch either way
    with caplog.at_level("WARNING", logger="sentsim.backends"):
        model = sentsim.load(tiny_model_dir, device="cpu")
    assert model.backend == "torch" and "could not be made" in caplog.text and "Permission denied" in caplog.text


def test_auto_runs_an_lstm_and_a_model_without_openvino_on_torch(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("SENTSIM_BACKEND", raising=False)
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    assert sentsim.build_lstm(tiny_model_dir, hidden_dim=8, device="cpu").backend == "torch"
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)  # the LSTM in bf16 only where it is native
    monkeypatch.setattr(backends, "lstm_runs_in_bf16", lambda: True)
    assert sentsim.build_lstm(tiny_model_dir, hidden_dim=8, device="cpu").backend == "torch-bf16"
    monkeypatch.setattr(backends, "lstm_runs_in_bf16", lambda: False)  # and only where this torch can run it
    assert sentsim.build_lstm(tiny_model_dir, hidden_dim=8, device="cpu").backend == "torch"
    monkeypatch.setattr(backends, "openvino_available", lambda int8=True: False)
    model = sentsim.load(tiny_model_dir, device="cpu")
    assert model.backend == "torch" and model.config.backend == "auto"


def test_sentsim_backend_chooses_for_auto_and_a_bad_one_is_one_clear_error(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("SENTSIM_BACKEND", "onnx")
    assert sentsim.load(tiny_model_dir, device="cpu").backend == "onnx"
    assert sentsim.load(tiny_model_dir, device="cpu", backend="torch").backend == "torch"  # the caller's choice wins
    monkeypatch.setenv("SENTSIM_BACKEND", "tensorrt")
    with pytest.raises(ConfigError, match="SENTSIM_BACKEND: backend must be one of auto, torch"):
        sentsim.load(tiny_model_dir, device="cpu")


@needs_openvino
def test_the_quantizing_child_runs_with_nncf_telemetry_off(tiny_model_dir, tmp_path, monkeypatch):
    import subprocess

    seen = {}

    def fake_run(command, **kwargs):
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(command, 1, "", "stopped here by the test")

    model = sentsim.load(tiny_model_dir, device="cpu")
    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(ModelError, match="stopped here by the test"):
        backends.export_backend(model.encoder, "openvino-int8", tmp_path)
    assert seen["NNCF_CI"] == "1"  # what NNCF reads to send no usage telemetry


def test_the_cpu_probe_reads_the_int8_dot_product_flags(tmp_path, monkeypatch):
    cases = [
        ("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse avx2 fma\n", False),  # AVX2
        ("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n", True),
        ("processor\t: 0\nFeatures\t: fp asimd crc32 atomics asimddp\n", True),  # Arm
        ("processor\t: 0\n", None),  # no flags line: unknown
    ]
    bf16 = [False, True, False, None]  # AVX-512 BF16 on the second; the Arm one has no "bf16" feature
    for i, (text, expected) in enumerate(cases):
        info = tmp_path / f"cpuinfo{i}"
        info.write_text(text)
        monkeypatch.setattr(backends, "_CPUINFO", str(info))
        assert backends.cpu_has_int8_dot_product() is expected, text
        assert backends.cpu_has_native_bf16() is bf16[i], text
    for text in ("flags\t\t: avx2 amx_bf16 amx_tile\n", "Features\t: fp asimd bf16 i8mm\n"):  # AMX; Arm's BF16
        info = tmp_path / f"bf16-{len(text)}"
        info.write_text(text)
        monkeypatch.setattr(backends, "_CPUINFO", str(info))
        assert backends.cpu_has_native_bf16() is True, text
    monkeypatch.setattr(backends, "_CPUINFO", str(tmp_path / "missing"))  # not Linux
    assert backends.cpu_has_int8_dot_product() is None
    # read once per process: a second call does not open the file again
    info = tmp_path / "cpuinfo0"
    monkeypatch.setattr(backends, "_CPUINFO", str(info))
    info.unlink()
    assert backends.cpu_has_int8_dot_product() is False


@needs_openvino
def test_openvino_int8_keeps_every_stsb_test_sentence_within_0_99_of_fp32(bundled):
    """Issue 6's bar for a fast default, on real data: each of the 2,552 distinct STS-B test sentences (0.98 on a
    CPU without VNNI, where auto does not choose int8)."""
    import csv

    from tests.conftest import data_path

    with data_path("stsb", "test.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    sentences = sorted({text for row in rows for text in row[:2]})
    assert len(sentences) == 2552
    fast = sentsim.load(backend="openvino-int8", device="cpu")
    reference = bundled.encode(sentences, batch_size=64)
    cos = (reference * fast.encode(sentences, batch_size=64)).sum(axis=1)
    assert cos.min() >= STSB_MIN_COSINE, sorted(zip(cos.tolist(), sentences))[:3]
    assert cos.mean() < 0.9999  # int8 indeed, not fp32 by mistake
    # and each sentence alone, as a chatbot's question is encoded: padded, on the fixed-shape models where it fits
    alone = (reference * np.stack([fast.encode([text])[0] for text in sentences])).sum(axis=1)
    assert alone.min() >= STSB_MIN_COSINE, sorted(zip(alone.tolist(), sentences))[:3]
    assert sorted(fast._fast._static) == list(backends.STATIC_LENGTHS)


@needs_openvino
def test_openvino_runs_an_fp32_model_in_f32_and_a_bad_precision_is_one_clear_error(tiny_model_dir):
    model = sentsim.load(tiny_model_dir, backend="openvino", device="cpu")
    path = backends.export_backend(model.encoder, "openvino", tiny_model_dir)
    assert backends.OpenVinoEncoder(model.encoder, path).precision == "f32"  # bf16 is for int8 models only
    with pytest.raises(ConfigError, match="precision must be 'f32' or 'bf16', not 'fp16'"):
        backends.OpenVinoEncoder(model.encoder, path, precision="fp16")
