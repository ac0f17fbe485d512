"""Fast CPU inference backends for a transformer encoder: ONNX Runtime and OpenVINO, in fp32 or with int8.

``torch`` is the sentence-transformers model itself. ``onnx`` runs the same transformer exported to ONNX, and
``onnx-int8`` the export with its weight matrix products quantized to int8 (dynamic quantization: int8 weights,
activations quantized on the fly), which uses the VNNI instructions of current CPUs. ``openvino`` runs the ONNX
export with OpenVINO, and ``openvino-int8`` that model after NNCF's static int8 quantization (weights and
activations, with scales calibrated once on the sentences of the FAQ that ships with sentsim, or on texts you
give :func:`export_backend`). The OpenVINO runner batches sentences of exactly the same token length together, so
no work is spent on padding, and runs two batches at once on a CPU with two or more cores. The pooling and
normalising of the sentence-transformers modules after the transformer are done here in NumPy, as those modules do.

``auto``, the default, is ``openvino-int8`` for a transformer on the CPU when OpenVINO and NNCF are installed, the
CPU has an int8 dot product (VNNI) and the int8 model keeps the embedding of each of its check texts within
:data:`AUTO_MIN_COSINE` cosine of fp32; ``openvino`` (fp32, the same embeddings as torch) for a transformer on the
CPU otherwise; for the LSTM encoder, ``torch-bf16`` on a CPU that computes bf16 natively (AVX-512 BF16 or AMX;
:func:`cpu_has_native_bf16`), else ``torch``; and ``torch`` on a GPU or without OpenVINO (:func:`resolve_backend`).
``$SENTSIM_BACKEND`` overrides that choice.

``torch-bf16`` is the torch model itself run under ``torch.autocast`` in bfloat16: the weights stay fp32 (training
and saving are unchanged, and a weight changed in place is used at once, with no export to keep fresh), the matrix
products run in bf16, and the pooling and normalising after them in fp32. It runs any encoder; it is fast only
where the CPU has bf16 instructions.

``openvino-bf16`` is the fp32 OpenVINO model (the same file as ``openvino``) run with OpenVINO's floating-point
operations in bf16: on a CPU with native bf16 (AVX-512 BF16, AMX) it is much faster than ``openvino`` and far
closer to fp32 than int8 (BENCHMARKS.md). Where bf16 would only be emulated it runs in f32, as ``openvino``, and
says so in the log.

The export happens once per model and is cached: in the model's own folder under ``onnx/`` (where
sentence-transformers' own ONNX backend reads ``model.onnx``), or, for a folder sentsim must not write to (the
bundled model, a hub model), under ``$SENTSIM_CACHE`` (default ``~/.cache/sentsim``). Each file is written to a
temporary name and renamed into place, with a record of the weights it came from, so a model trained again is
exported again.

Example:
    >>> import sentsim
    >>> fast = sentsim.load(backend="openvino-int8")  # doctest: +SKIP
    >>> fast.encode(["A man plays a guitar."]).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sentsim.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "Backend",
    "OnnxEncoder",
    "OpenVinoEncoder",
    "onnx_available",
    "openvino_available",
    "export_backend",
    "export_onnx",
    "check_backend",
    "resolve_backend",
    "calibration_texts",
    "cpu_has_int8_dot_product",
    "cpu_has_native_bf16",
    "SHORT_TEXTS",
]

Backend = Literal["auto", "torch", "torch-bf16", "onnx", "onnx-int8", "openvino", "openvino-bf16", "openvino-int8"]
BACKENDS: tuple[str, ...] = (
    "auto",
    "torch",
    "torch-bf16",
    "onnx",
    "onnx-int8",
    "openvino",
    "openvino-bf16",
    "openvino-int8",
)
# ``auto`` (the default) picks openvino-int8 where it keeps the model's embeddings within this cosine of fp32 on
# every check text, and torch elsewhere (see :func:`resolve_backend`); the bar for a fast default.
AUTO_MIN_COSINE = 0.99
_FILES = {
    "onnx": "model.onnx",
    "onnx-int8": "model_qint8.onnx",
    "openvino": "openvino_model.xml",
    "openvino-bf16": "openvino_model.xml",  # the fp32 model, run with bf16 products: one file, one record entry
    "openvino-int8": "openvino_model_qint8.xml",
}
_RECORD = "sentsim_onnx.json"
_CHECK = "openvino_model_qint8.xml check"  # the record's entry for the int8 model's distance to fp32
_OPSET = 17
_MISSING = "the {backend} backend needs ONNX Runtime: pip install 'sentsim[fast]' (onnxruntime and onnx)"
_MISSING_OV = "the {backend} backend needs OpenVINO: pip install openvino nncf onnx onnxscript (sentsim needs them)"


def device_type(encoder: Any) -> str:
    """``cpu``, ``cuda``, ``mps``...: the type of the device ``encoder`` runs on (``cpu`` when it does not say)."""
    return getattr(getattr(encoder, "device", None), "type", "cpu")


def check_backend(backend: str) -> str:
    """``backend`` itself (``auto`` included), or a one-line :class:`ConfigError` naming the choices."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend


def resolve_backend(encoder: Any, model_folder: str | os.PathLike | None = None) -> str:
    """What ``auto`` runs a model on: ``$SENTSIM_BACKEND`` when set; else ``openvino-int8`` for a transformer on
    the CPU with OpenVINO and NNCF installed and an int8 dot product (:func:`cpu_has_int8_dot_product`), provided
    that the int8 model's embedding of every check text (its calibration texts) is within :data:`AUTO_MIN_COSINE`
    cosine of fp32's; else, for a transformer on the CPU with OpenVINO, ``openvino`` in fp32 (no NNCF, a CPU
    without VNNI, an int8 model that could not be made, or int8 too far from fp32 for this model; each logged);
    for an LSTM on the CPU, ``torch-bf16`` where the CPU has native bf16 (:func:`cpu_has_native_bf16`), else
    ``torch``; else ``torch`` (a GPU, OpenVINO missing, or an fp32 export that could not be written either). The
    export is made once per model weights and cached (see :func:`export_backend`), so only the first load pays
    for it (about a minute for int8)."""
    return _auto_choice(encoder, model_folder)[0]


def _auto_choice(encoder: Any, model_folder: str | os.PathLike | None) -> tuple[str, Path | None]:
    """:func:`resolve_backend`'s choice, with the OpenVINO model's file when it made or found one (else None)."""
    chosen = os.environ.get("SENTSIM_BACKEND", "").strip()
    if chosen and chosen != "auto":
        try:
            return check_backend(chosen), None
        except ConfigError as exc:
            raise ConfigError(f"SENTSIM_BACKEND: {exc}") from None
    if device_type(encoder) != "cpu":
        return "torch", None
    from sentsim.encoders import _is_lstm

    if _is_lstm(encoder):  # no export for it: torch, in bf16 where native
        return ("torch-bf16" if cpu_has_native_bf16() and lstm_runs_in_bf16() else "torch"), None
    if not openvino_available(int8=False):
        return "torch", None
    try:
        _check_supported(encoder)
    except ConfigError:
        return "torch", None
    if not openvino_available(int8=True):
        return _auto_fp32(encoder, model_folder, "NNCF is not installed", logging.INFO)
    if cpu_has_int8_dot_product() is False:
        return _auto_fp32(encoder, model_folder, "this CPU has no int8 dot product (VNNI)", logging.INFO)
    try:
        cached = _cached_export(encoder, "openvino-int8", model_folder)
        if not _is_current("openvino-int8", cached):
            logger.warning(
                "backend auto: making this model's int8 CPU version once (under a minute on 2 cores), then cached; "
                "SENTSIM_BACKEND=torch skips it"
            )
        path = _export_to(encoder, "openvino-int8", cached)
        check = json.loads((path.parent / _RECORD).read_text()).get(_CHECK, {})
    except (ConfigError, ModelError, OSError, ValueError) as exc:  # e.g. the quantizer failed, or no folder
        return _auto_fp32(encoder, model_folder, f"the int8 model could not be made ({exc})")
    worst = check.get("worst_cosine")
    if worst is None or worst < AUTO_MIN_COSINE:
        return _auto_fp32(
            encoder,
            model_folder,
            f"int8 moves this model's embeddings too far from fp32 (worst cosine {worst} on {check.get('texts')} "
            f"check texts, needs {AUTO_MIN_COSINE})",
        )
    return "openvino-int8", path


def _auto_fp32(
    encoder: Any, model_folder: str | os.PathLike | None, why: str, level: int = logging.WARNING
) -> tuple[str, Path | None]:
    """``auto``'s choice where int8 is not: OpenVINO in fp32 (the same embeddings as torch, and faster on a CPU:
    1.58x its sentences per second on an AVX2-only CPU, 1.95x with VNNI; BENCHMARKS.md), or torch if that model
    cannot be made."""
    logger.log(level, "backend auto: %s; running on openvino (fp32) instead of int8", why)
    try:
        return "openvino", _export_to(encoder, "openvino", _cached_export(encoder, "openvino", model_folder))
    except (ConfigError, ModelError, OSError, ValueError) as exc:
        logger.warning("backend auto: the OpenVINO model could not be made (%s); running on torch", exc)
        return "torch", None


_INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # "bf16": Arm's Features line
_CPUINFO = "/proc/cpuinfo"


def cpu_has_int8_dot_product() -> bool | None:
    """Whether this CPU has int8 dot-product instructions (x86 AVX-512 VNNI, AVX-VNNI or AMX; Arm's dot product),
    from ``/proc/cpuinfo``; None where that cannot be read (not Linux). Without them, int8 kernels multiply through
    16-bit sums that saturate, and int8 models drift further from fp32: on a 2-core AMD EPYC with AVX2 only, the
    bundled model's worst STS-B test sentence under openvino-int8 is 0.989 cosine to fp32, against 0.992 with VNNI
    (BENCHMARKS.md), and int8 is slower there than fp32 OpenVINO, so ``auto`` runs ``openvino`` in fp32 there.
    The file is read once per process (it is long on a many-core machine, and the CPU does not change)."""
    return _int8_dot_product_in(_CPUINFO)


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bfloat16 products natively (x86 AVX-512 BF16 or AMX; Arm's BF16), from
    ``/proc/cpuinfo``; None where that cannot be read. ``auto`` runs the LSTM encoder in bf16 (``torch-bf16``) only
    there: elsewhere bf16 is emulated and slower than fp32."""
    flags = _cpu_flags(_CPUINFO)
    return any(flag in flags for flag in _BF16_FLAGS) if flags else None


@functools.cache  # the answer is a property of this CPU and this torch build: one tiny run per process
def lstm_runs_in_bf16() -> bool:
    """Whether torch can run an LSTM under bfloat16 autocast on this CPU: one step of a 4-wide LSTM is tried.
    oneDNN has no bf16 LSTM kernel for CPUs without native bf16 (an AVX2-only AMD EPYC, for one), and refuses
    ("could not create a primitive descriptor"), so ``torch-bf16`` cannot run an LSTM encoder there."""
    import torch

    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4, batch_first=True)(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True


def _int8_dot_product_in(cpuinfo: str) -> bool | None:
    flags = _cpu_flags(cpuinfo)
    return any(flag in flags for flag in _INT8_DOT_FLAGS) if flags else None


@functools.cache  # one entry in practice: the path is /proc/cpuinfo
def _cpu_flags(cpuinfo: str) -> frozenset[str] | None:
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            return frozenset(
                word
                for line in f
                if line.split(":", 1)[0].strip() in ("flags", "Features")
                for word in line.split(":", 1)[1].split()
            )
    except OSError:
        return None


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ONNX exporter's needs are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def openvino_available(int8: bool = True) -> bool:
    """Whether OpenVINO and the ONNX exporter (and, for ``int8``, NNCF's quantizer) are installed."""
    import importlib.util

    names = ("openvino", "onnx", "nncf") if int8 else ("openvino", "onnx")
    return all(importlib.util.find_spec(name) is not None for name in names)


def _weights_digest(encoder: Any) -> str:
    """A digest of the transformer's weights, so a cached export is used only for the weights it came from."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(encoder[0].auto_model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def _cache_folder(model_folder: Path | None, digest: str) -> Path:
    """Where the export of a model goes: its own ``onnx/`` folder when sentsim may write there, else the cache."""
    if model_folder is not None and os.access(model_folder, os.W_OK) and not _is_inside_site_packages(model_folder):
        return model_folder / "onnx"
    root = Path(os.environ.get("SENTSIM_CACHE") or Path.home() / ".cache" / "sentsim")
    return root / "onnx" / digest


def _is_inside_site_packages(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.resolve().parts)


def _check_supported(encoder: Any) -> None:
    modules = list(encoder)
    names = [type(m).__name__ for m in modules]
    if not modules or names[0] != "Transformer" or not hasattr(modules[0], "auto_model"):
        raise ConfigError(f"the ONNX backends run transformer encoders only; this model is {' -> '.join(names)}")
    extra = [n for n in names[1:] if n not in ("Pooling", "Normalize")]
    if extra:
        raise ConfigError(f"the ONNX backends do not run the module(s) {', '.join(extra)} of this model; use torch")


def _export(encoder: Any, target: Path) -> None:
    """The transformer alone (token embeddings out), fp32, dynamic batch and length, written atomically."""
    import torch

    transformer = encoder[0]
    auto = transformer.auto_model.eval()
    wanted = transformer.tokenizer.model_input_names
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in wanted]
    sample = transformer.tokenizer(
        ["a short sentence", "and a longer one than that"], padding=True, return_tensors="pt"
    )

    class _Tokens(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs))).last_hidden_state  # (batch, seq, dim)

    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python control flow, which export handles
            torch.onnx.export(
                _Tokens(auto),
                tuple(sample[n] for n in names),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
                opset_version=_OPSET,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the products with a weight matrix (per output channel); the attention
    products of two activations stay fp32. Written atomically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    nodes = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(i in weights for i in n.input)]
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=nodes)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# Short, plain sentences of a few words, written for sentsim (no benchmark's text). Their embeddings are the most
# fragile under int8, since their few tokens each weigh much in the mean, and the FAQ has few of them: with them in
# the calibration set, STS-B dev's worst sentence went from 0.9885 to 0.9901 cosine to fp32, STS-B test's from
# 0.963 to 0.973 and its sentences below 0.99 from 25 to 11 of 2,552 (eval/int8_calibration.py, BENCHMARKS.md).
SHORT_TEXTS = (
    "Thanks a lot.", "Is that true?", "I think so.", "Not really.", "Where is it?", "What do you mean?",
    "Can you help me?", "That sounds fine.", "I am not sure.", "Why not?", "It works now.", "Please try again.",
    "Who said that?", "Maybe later.", "We did it.", "It was late.", "See you soon.", "That is wrong.",
    "Of course it is.", "Let me check.", "I have no idea.", "It depends.", "Sure, go ahead.", "Nothing happened.",
    "What is this?", "When will it end?", "They left early.", "She agreed.", "He was right.", "Is it free?",
    "How much is it?", "Good question.", "It is broken.", "I don't know.", "Well done!", "Never mind.",
    "That makes sense.", "Are you there?", "Hello?", "OK.", "Yes.", "No.", "Why?", "How so?", "Really?",
    "All of them.", "None at all.", "Not yet.", "It is done.", "Did it work?",
)  # fmt: skip
# The products openvino-int8 leaves in fp32 by default (regular expressions over the ONNX export's node names): each
# layer's attention output projection and its two products of activations (query by key, weights by value), and
# the first layer's FFN output product. Chosen on a pool of 19,788 sentences that no figure is reported on as a test
# (BANKING77 train, MSRP train, STS-B dev; eval/int8_calibration.py, BENCHMARKS.md): the attention products took
# the pool's sentences below 0.995 cosine to fp32 from 181 to 43, and the first FFN output from 43 to 5 (worst
# 0.9911 -> 0.9925). They cost int8 some speed, which bf16 wins back where the CPU has it (_float_precision). Node
# names of other architectures may not match; their products are then all int8.
KEEP_FP32 = (".*attention/output/dense.*", ".*self/MatMul.*", r".*layer\.0/output/dense.*")
# What the default int8 model was calibrated with; stored with the export, so a change here quantizes again
_INT8_RECIPE = "smoothquant 0.7; fp32: " + " ".join(KEEP_FP32) + "; shipped FAQ + short texts"


def calibration_texts() -> list[str]:
    """The texts ``openvino-int8`` calibrates its activation scales on by default, from the FAQ that ships with
    sentsim (no benchmark's data): its questions, its answers' sentences, its labelled queries, and, so that
    long inputs are calibrated too, its whole answers joined into a few texts of several hundred words; and,
    because a chatbot's questions are often a few words, :data:`SHORT_TEXTS`."""
    import csv
    import re

    from sentsim.faq import default_faq_path, default_queries_path, read_faq

    entries = read_faq(default_faq_path())
    answers = list(dict.fromkeys(e.answer for e in entries))
    texts = [e.question for e in entries]
    for answer in answers:
        texts.extend(re.split(r"(?<=[.!?])\s+", answer))
    with default_queries_path().open(encoding="utf-8", newline="") as f:
        texts.extend(row["query"] for row in csv.DictReader(f))
    texts.extend(" ".join(answers[i : i + 6]) for i in range(0, len(answers), 6))
    texts.extend(SHORT_TEXTS)
    return sorted({t.strip() for t in texts if t.strip()})


def _to_openvino(
    encoder: Any,
    source: Path,
    target: Path,
    int8: bool,
    calibration: list[str] | None,
    keep_fp32: tuple[str, ...] = KEEP_FP32,
) -> None:
    """The ONNX export as an OpenVINO model (``.xml`` and ``.bin``), fp32 or statically quantized to int8 with
    NNCF, written atomically (the weights file first, then the graph that names it).

    The conversion runs in a child process (``python -m sentsim.backends``): NNCF and OpenVINO's converter start
    thread pools of their own beside torch's and ONNX Runtime's, and a process that held them all was seen to
    abort once; in a child, a failure is a clear error here and the process that asked keeps running."""
    import subprocess
    import sys

    tmp = target.with_name(f".{target.stem}.tmp-{uuid.uuid4().hex[:8]}.xml")
    samples = tmp.with_suffix(".npz")
    command = [sys.executable, "-m", "sentsim.backends", str(source), str(tmp)]
    try:
        if int8:
            texts = calibration if calibration is not None else calibration_texts()
            if not texts:
                raise ConfigError("openvino-int8 needs at least one calibration text")
            tokenizer, limit = encoder[0].tokenizer, int(encoder.max_seq_length)
            ids = tokenizer(list(texts), truncation=True, max_length=limit)["input_ids"]
            np.savez(samples, **{f"s{i}": np.asarray(row, dtype=np.int64) for i, row in enumerate(ids)})
            command += ["--samples", str(samples), *(f"--keep-fp32={pattern}" for pattern in keep_fp32)]
        # the child imports this same sentsim, wherever it was imported from here
        path = os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])
        # NNCF_CI=1: NNCF's usage telemetry (sent to Google Analytics unless this is set) stays off
        env = {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep), "NNCF_CI": "1"}
        done = subprocess.run(command, stdout=None, stderr=subprocess.PIPE, text=True, env=env)
        if done.returncode != 0:
            last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no message")
            raise ModelError(f"{target}: the OpenVINO export failed (exit code {done.returncode}): {last.strip()}")
        os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(tmp, target)
    finally:
        for path in (tmp, tmp.with_suffix(".bin"), samples):
            path.unlink(missing_ok=True)


def _convert(source: str, target: str, samples: str | None, keep_fp32: tuple[str, ...] = ()) -> None:
    """The child's work for :func:`_to_openvino`: read the ONNX file, quantize it when given samples (leaving the
    products whose names match ``keep_fp32`` in fp32), save it."""
    import openvino as ov

    model = ov.Core().read_model(source)
    if samples is not None:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

        names = [i.get_any_name() for i in model.inputs]
        with np.load(samples, allow_pickle=False) as data:
            # One sentence per sample at its own length: padded batches give the quantizer activations it never sees.
            rows = [data[f"s{i}"].tolist() for i in range(len(data.files))]
            feeds = [_padded([row], names, len(row))[0] for row in rows]
        # SmoothQuant with alpha 0.7 on the matrix products moves activation outliers into the weights. Chosen on
        # the STS-B dev sentences (cosine to fp32 per sentence; NNCF's default 0.95: mean 0.9961, worst 0.978;
        # 0.7: mean 0.9973, worst 0.987), at no cost in speed.
        model = nncf.quantize(
            model,
            nncf.Dataset(feeds),
            subset_size=len(feeds),
            model_type=nncf.ModelType.TRANSFORMER,
            ignored_scope=nncf.IgnoredScope(patterns=list(keep_fp32), validate=False) if keep_fp32 else None,
            advanced_parameters=AdvancedQuantizationParameters(
                smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=0.7)
            ),
        )
    ov.save_model(model, target, compress_to_fp16=False)


LATENCY_BUCKET = 16
"""A short call (at most one batch of texts: a chatbot's question, a server's few) is padded to multiples of this many
tokens, with masked tokens. OpenVINO's CPU plugin re-plans a model's memory whenever the input shape changes, which
for one short question costs more than running it (BENCHMARKS.md); and a server's 32 questions make a few batches
instead of one per distinct length."""


STATIC_LENGTHS = (16, 32)
"""A single text padded to one of these lengths (most questions: BANKING77's test questions have 13 tokens at the
median and 27 at the 95th percentile) runs on a model compiled for exactly that shape, which OpenVINO plans fully
ahead: faster for one question than the dynamic-shape model (BENCHMARKS.md)."""


def _padded(rows: list[list[int]], names: list[str], length: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Model inputs for token id rows of at most ``length`` tokens, padded to ``length`` with masked tokens; and
    the attention mask."""
    input_ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    arrays = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    return {name: arrays[name] for name in names}, mask


def export_backend(
    encoder: Any,
    backend: str,
    model_folder: str | os.PathLike | None = None,
    calibration: list[str] | None = None,
    keep_fp32: tuple[str, ...] | None = None,
) -> Path:
    """The model file of ``encoder`` for ``backend``, exported (and quantized) now unless a matching one is cached.

    Args:
        encoder: A sentence-transformers model: a Transformer, then Pooling and Normalize modules only.
        backend: ``onnx``, ``onnx-int8``, ``openvino`` (``openvino-bf16`` runs that file) or ``openvino-int8``.
        model_folder: The folder the model was loaded from, whose ``onnx/`` holds the export when writable.
        calibration: For ``openvino-int8``: the texts its activation scales are calibrated on (default:
            :func:`calibration_texts`). Texts like the ones you will encode give the closest embeddings. Passing
            them quantizes again, replacing the cached model.
        keep_fp32: For ``openvino-int8``: regular expressions over the ONNX export's node names of the products to
            leave in fp32 (default: :data:`KEEP_FP32`). Passing them quantizes again, replacing the cached model.

    Raises:
        ConfigError: ONNX Runtime or OpenVINO is missing, or the model is not one these backends run (an LSTM,
            extra modules).
    """
    check_backend(backend)
    if backend in ("torch", "torch-bf16", "auto"):
        raise ConfigError(f"the {backend} backend has no exported model file")
    if backend.startswith("openvino"):
        if not openvino_available(int8=backend.endswith("int8")):
            raise ConfigError(_MISSING_OV.format(backend=backend))
    elif not onnx_available():
        raise ConfigError(_MISSING.format(backend=backend))
    _check_supported(encoder)
    return _export_to(encoder, backend, _cached_export(encoder, backend, model_folder), calibration, keep_fp32)


def _export_to(
    encoder: Any,
    backend: str,
    cached: tuple[Path, Path, dict[str, Any], str],
    calibration: list[str] | None = None,
    keep_fp32: tuple[str, ...] | None = None,
) -> Path:
    """:func:`export_backend` once :func:`_cached_export` has said where (which hashes the weights: done once)."""
    folder, target, record, stamp = cached
    if _is_current(backend, cached) and calibration is None and keep_fp32 is None:
        return target
    digest = stamp.split(";")[0]
    record_path = folder / _RECORD
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / _FILES["onnx"]
    if not (fp32.is_file() and record.get(_FILES["onnx"]) == digest):
        logger.info("exporting the transformer to ONNX in %s (once)", folder)
        _export(encoder, fp32)
        record[_FILES["onnx"]] = digest
    if backend == "onnx-int8":
        logger.info("quantizing the ONNX export to int8 (once)")
        _quantize(fp32, target)
    elif backend.startswith("openvino"):
        logger.info(
            "converting the ONNX export to OpenVINO%s (once)",
            " and quantizing it to int8" * (backend == "openvino-int8"),
        )
        scope = KEEP_FP32 if keep_fp32 is None else tuple(keep_fp32)
        _to_openvino(encoder, fp32, target, backend == "openvino-int8", calibration, scope)
        if backend == "openvino-int8":
            record[_CHECK] = _check_int8(encoder, target, calibration)
    record[_FILES[backend]] = stamp
    tmp = record_path.with_name(f".{_RECORD}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, record_path)
    return target


def _cached_export(
    encoder: Any, backend: str, model_folder: str | os.PathLike | None
) -> tuple[Path, Path, dict[str, Any], str]:
    """Where ``backend``'s export of ``encoder`` goes: its folder, its file, the folder's record, and the stamp the
    record must hold for the file to be current (the weights' digest, and the int8 recipe)."""
    digest = _weights_digest(encoder)
    folder = _cache_folder(Path(model_folder) if model_folder is not None else None, digest)
    record_path = folder / _RECORD
    try:
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    except ValueError:  # a damaged record: everything is exported again
        record = {}
    stamp = f"{digest}; {_INT8_RECIPE}" if backend == "openvino-int8" else digest
    return folder, folder / _FILES[backend], record, stamp


def _is_current(backend: str, cached: tuple[Path, Path, dict[str, Any], str]) -> bool:
    """Whether :func:`_cached_export`'s file is there and was made from these weights (and int8 recipe)."""
    _, target, record, stamp = cached
    return target.is_file() and record.get(_FILES[backend]) == stamp


def _check_int8(encoder: Any, path: Path, calibration: list[str] | None) -> dict[str, Any]:
    """How far the int8 model at ``path`` moves embeddings: the cosine to the torch (fp32) embedding of each of its
    calibration texts, as the record of the export keeps it for ``auto``."""
    texts = list(calibration) if calibration is not None else calibration_texts()
    reference = np.asarray(encoder.encode(texts, batch_size=32, show_progress_bar=False), dtype=np.float32)
    got = OpenVinoEncoder(encoder, path).encode(texts, batch_size=32)
    unit = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    cosine = (unit * got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)).sum(axis=1)
    return {
        "texts": len(texts),
        "worst_cosine": round(float(cosine.min()), 4),
        "mean_cosine": round(float(cosine.mean()), 4),
    }


export_onnx = export_backend  # its first name, from when ONNX Runtime was the only exported backend


class _Runner:
    """What every exported-model runner takes from the sentence-transformers model: tokenizer, limit, pooling."""

    def __init__(self, encoder: Any, path: str | os.PathLike) -> None:
        _check_supported(encoder)
        self.tokenizer = encoder[0].tokenizer
        self.max_seq_length = int(encoder.max_seq_length)
        self.path = Path(path)
        pooling = next((m for m in encoder if type(m).__name__ == "Pooling"), None)
        self.pooling = _pooling_mode(pooling)
        self.normalize = any(type(m).__name__ == "Normalize" for m in encoder)

    def _finish(self, emb: np.ndarray) -> np.ndarray:
        if self.normalize:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32, copy=False)


class OnnxEncoder(_Runner):
    """Runs an exported transformer with ONNX Runtime, then the model's pooling and normalising, in NumPy.

    Args:
        encoder: The sentence-transformers model it was exported from (its tokenizer, pooling and limit are used).
        path: The ONNX file (from :func:`export_onnx`).
        threads: ONNX Runtime's intra-op threads; as many as torch uses when None.
    """

    def __init__(self, encoder: Any, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        super().__init__(encoder, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: spinning wins microseconds per call but holds the cores between
        # calls, slowing everything else in the process (a web server's other work, torch) several times over.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a truncated or foreign file
            raise ModelError(f"{path}: ONNX Runtime cannot load this file ({exc.__class__.__name__})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        """Embeddings ``(n, dim)`` float32, longest texts batched together first, as sentence-transformers does."""
        from tqdm.auto import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="Batches", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {name: batch[name].astype(np.int64) for name in self.inputs}
            tokens = self.session.run(None, feed)[0]  # (batch, seq, dim)
            emb = self._finish(_pool(tokens, batch["attention_mask"], self.pooling))  # (batch, dim)
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[rows] = emb
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class OpenVinoEncoder(_Runner):
    """Runs an OpenVINO model of the transformer (fp32 or int8), then the model's pooling and normalising.

    A long call (more texts than ``batch_size``) is batched by exact token length, longest first, so no batch
    carries padding, and the batches run on the requests of a model compiled for throughput, two or more at once,
    started and waited on from the calling thread. A short call (a chatbot's question, a server's few) is grouped
    by multiples of :data:`LATENCY_BUCKET` tokens with masked padding and runs on a model compiled for latency (all
    threads on one request); one text of a length in :data:`STATIC_LENGTHS` runs on a model of exactly its shape.

    Args:
        encoder: The sentence-transformers model it was exported from (its tokenizer, pooling and limit are used).
        path: The ``.xml`` file (from :func:`export_backend`).
        threads: OpenVINO's threads; as many as torch uses when None.
        precision: ``f32`` or ``bf16`` for the operations that are not int8; None chooses (see
            :func:`_float_precision`: bf16 only for an int8 model on a CPU with native bf16). ``bf16`` on a CPU
            without native bf16 runs in ``f32`` (emulated bf16 is slower), with a warning.
    """

    def __init__(
        self, encoder: Any, path: str | os.PathLike, threads: int | None = None, precision: str | None = None
    ) -> None:
        import openvino as ov
        import torch

        super().__init__(encoder, path)
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(str(path))
        except Exception as exc:  # a truncated or foreign file
            raise ModelError(f"{path}: OpenVINO cannot load this file ({exc.__class__.__name__})") from None
        self.inputs = [i.get_any_name() for i in self._model.inputs]
        if precision not in (None, "f32", "bf16"):
            raise ConfigError(f"precision must be 'f32' or 'bf16', not {precision!r}")
        self.precision = precision or _float_precision(self._core, self._model)
        if self.precision == "bf16" and not _native_bf16(self._core):
            logger.warning("this CPU has no native bf16: %s runs in f32", Path(path).name)
            self.precision = "f32"
        self._settings = {
            "INFERENCE_PRECISION_HINT": self.precision,
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
        }
        self._latency = self._core.compile_model(self._model, "CPU", {**self._settings, "PERFORMANCE_HINT": "LATENCY"})
        self._request = self._latency.create_infer_request()
        self._lock = threading.Lock()  # the requests are shared: calls from several threads take turns on them
        self._throughput: Any = None  # requests on a model compiled for throughput, made on the first long call
        self._static: dict[int, Any] = {}  # one-row requests on models of a fixed length (STATIC_LENGTHS)

    def _batches(
        self, texts: list[str], batch_size: int, bucket: int = 1
    ) -> list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]]:
        """(rows of ``texts``, model inputs, attention mask) per batch: texts of one length (``bucket`` 1, no
        padding), or of one multiple of ``bucket`` tokens, padded with masked tokens; longest first."""
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)["input_ids"]
        lengths = np.array([len(row) for row in ids], dtype=np.int64)
        if bucket > 1 and "attention_mask" in self.inputs:  # without a mask input, padding would be attended to
            keys = np.maximum(lengths, np.minimum(-(-lengths // bucket) * bucket, self.max_seq_length))
        else:
            keys = lengths
        order = np.argsort(-keys, kind="stable")
        batches, start = [], 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < batch_size and keys[order[end]] == keys[order[start]]:
                end += 1
            rows = order[start:end]
            batches.append((rows, *_padded([ids[i] for i in rows], self.inputs, int(keys[order[start]]))))
            start = end
        return batches

    def _one_request(self, rows: int, length: int) -> Any:
        """The request a short batch runs on: for one text of a length in :data:`STATIC_LENGTHS`, one on a model
        compiled for exactly that shape (compiled on first use, about half a second); else the latency request."""
        if rows != 1 or length not in STATIC_LENGTHS:
            return self._request
        if length not in self._static:
            model = self._core.read_model(str(self.path))
            model.reshape({name: [1, length] for name in self.inputs})
            compiled = self._core.compile_model(model, "CPU", {**self._settings, "PERFORMANCE_HINT": "LATENCY"})
            self._static[length] = compiled.create_infer_request()
        return self._static[length]

    def encode(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        """Embeddings ``(n, dim)`` float32, in the order of ``texts``."""
        batch_size = max(1, int(batch_size))
        few = len(texts) <= batch_size  # a short call: padded to a few shapes, run on the latency request
        batches = self._batches(texts, batch_size, LATENCY_BUCKET if few else 1)
        if not batches:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            if few:
                out = [
                    _pool(np.asarray(self._one_request(len(rows), mask.shape[1]).infer(feed)[0]), mask, self.pooling)
                    for rows, feed, mask in batches
                ]
            else:
                out = self._run_many(batches, len(texts), show_progress_bar)
        emb = self._finish(np.concatenate(out))
        result = np.empty_like(emb)
        result[np.concatenate([rows for rows, _, _ in batches])] = emb
        return result

    def _run_many(self, batches: list[Any], total: int, show_progress_bar: bool) -> list[np.ndarray]:
        """A long call's batches on the requests of the throughput model (compiled on the first long call), two or
        more at once; their pooled embeddings, in the order of ``batches``. Called with the lock held."""
        from tqdm.auto import tqdm

        if self._throughput is None:
            compiled = self._core.compile_model(
                self._model, "CPU", {**self._settings, "PERFORMANCE_HINT": "THROUGHPUT"}
            )
            n = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            self._throughput = [compiled.create_infer_request() for _ in range(n)]
        requests = self._throughput
        out: list[Any] = [None] * len(batches)
        running: dict[int, int] = {}  # request -> batch it runs
        bar = tqdm(total=total, desc="Sentences", disable=not show_progress_bar)

        def collect(r: int) -> None:
            # Waited on and read here, on the calling thread: no Python runs on OpenVINO's threads, where a
            # garbage collection could otherwise run another model's destructor on the pool it would join.
            requests[r].wait()
            i = running.pop(r)
            tokens = requests[r].get_output_tensor(0).data
            out[i] = _pool(tokens, batches[i][2], self.pooling)  # a copy: the request is reused
            bar.update(len(batches[i][0]))

        for i, (_, feed, _) in enumerate(batches):
            r = i % len(requests)
            if r in running:
                collect(r)
            requests[r].start_async(feed)
            running[r] = i
        for r in sorted(running, key=running.__getitem__):
            collect(r)
        bar.close()
        return out


def openvino_precision(path: str | os.PathLike) -> str:
    """The precision (``f32`` or ``bf16``) :class:`OpenVinoEncoder` chooses on this CPU for the float operations of
    the OpenVINO model at ``path``, read from the file without compiling it."""
    import openvino as ov

    core = ov.Core()
    return _float_precision(core, core.read_model(str(path)))


def _float_precision(core: Any, model: Any) -> str:
    """The precision OpenVINO runs a model's floating-point operations in: ``f32`` for an fp32 model (the same
    arithmetic as torch, whatever the CPU); for an int8 model, ``bf16`` where the CPU computes bf16 natively
    (AVX-512 BF16 or AMX) and ``f32`` elsewhere. bf16 there runs what int8 leaves (the products kept in fp32,
    softmax, normalisation) faster and moves the embeddings far less than int8 itself: on STS-B test, worst cosine
    to fp32 0.9920 -> 0.9914, 1,286 instead of 1,111 sentences/s (BENCHMARKS.md). Where bf16 would only be emulated
    it is slower than f32, so it is never chosen there."""
    quantized = any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
    return "bf16" if quantized and _native_bf16(core) else "f32"


def _native_bf16(core: Any) -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 natively on this CPU."""
    try:
        return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # an OpenVINO without the property
        return False


def _pooling_mode(pooling: Any) -> str:
    if pooling is None:
        raise ConfigError("the ONNX backends need a Pooling module after the transformer")
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    mode = config.get("pooling_mode") or next(
        (k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in config.items() if v is True), None
    )
    aliases = {"mean": "mean", "cls": "cls", "max": "max", "cls_token": "cls", "mean_tokens": "mean"}
    if mode not in aliases or config.get("include_prompt") is False:
        raise ConfigError(f"the ONNX backends support mean, cls and max pooling, not {mode!r}; use torch")
    return aliases[mode]


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence embeddings from token embeddings ``(batch, seq, dim)`` and the attention mask ``(batch, seq)``."""
    m = mask[..., None].astype(np.float32)  # (batch, seq, 1)
    if mode == "cls":
        return tokens[:, 0].astype(np.float32)
    if mode == "max":
        return np.where(m > 0, tokens, -1e9).max(axis=1).astype(np.float32)
    return ((tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)).astype(np.float32)  # (batch, dim)


if __name__ == "__main__":  # the child process of _to_openvino
    import argparse

    _parser = argparse.ArgumentParser(prog="python -m sentsim.backends", description="convert an ONNX export")
    _parser.add_argument("source")
    _parser.add_argument("target")
    _parser.add_argument("--samples", default=None, help="calibration token ids (.npz): quantize to int8")
    _parser.add_argument("--keep-fp32", action="append", default=[], help="a node-name pattern to leave in fp32")
    _args = _parser.parse_args()
    _convert(_args.source, _args.target, _args.samples, tuple(_args.keep_fp32))
