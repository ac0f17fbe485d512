"""Fast CPU inference backends for a transformer encoder: ONNX Runtime in fp32, or with dynamic int8 weights.

``torch`` is the sentence-transformers model itself. ``onnx`` runs the same transformer exported to ONNX, and
``onnx-int8`` the export with its weight matrix products quantized to int8 (dynamic quantization: int8 weights,
activations quantized on the fly), which uses the VNNI instructions of current CPUs. The pooling and normalising
of the sentence-transformers modules after the transformer are done here in NumPy, as those modules do.

The export happens once per model and is cached: in the model's own folder under ``onnx/`` (the layout
sentence-transformers' own ONNX backend reads), or, for a folder sentsim must not write to (the bundled model, a
hub model), under ``$SENTSIM_CACHE`` (default ``~/.cache/sentsim``). Each file is written to a temporary name and
renamed into place, with a record of the weights it came from, so a model trained again is exported again.

Example:
    >>> import sentsim
    >>> fast = sentsim.load(backend="onnx-int8")  # doctest: +SKIP
    >>> fast.encode(["A man plays a guitar."]).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sentsim.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Backend", "OnnxEncoder", "onnx_available", "export_onnx", "check_backend"]

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
_FILES = {"onnx": "model.onnx", "onnx-int8": "model_qint8.onnx"}
_RECORD = "sentsim_onnx.json"
_OPSET = 17
_MISSING = "the {backend} backend needs ONNX Runtime: pip install 'sentsim[fast]' (onnxruntime and onnx)"


def check_backend(backend: str) -> str:
    """``backend`` itself, or a one-line :class:`ConfigError` naming the choices."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ONNX exporter's needs are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


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


def export_onnx(encoder: Any, backend: str, model_folder: str | os.PathLike | None = None) -> Path:
    """The ONNX file of ``encoder`` for ``backend``, exported (and quantized) now unless a matching one is cached.

    Args:
        encoder: A sentence-transformers model: a Transformer, then Pooling and Normalize modules only.
        backend: ``onnx`` or ``onnx-int8``.
        model_folder: The folder the model was loaded from, whose ``onnx/`` holds the export when writable.

    Raises:
        ConfigError: ONNX Runtime is missing, or the model is not one the ONNX backends run (an LSTM, extra
            modules).
    """
    check_backend(backend)
    if backend == "torch":
        raise ConfigError("the torch backend has no ONNX file")
    if not onnx_available():
        raise ConfigError(_MISSING.format(backend=backend))
    _check_supported(encoder)
    digest = _weights_digest(encoder)
    folder = _cache_folder(Path(model_folder) if model_folder is not None else None, digest)
    target = folder / _FILES[backend]
    record_path = folder / _RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if target.is_file() and record.get(_FILES[backend]) == digest:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / _FILES["onnx"]
    if not (fp32.is_file() and record.get(_FILES["onnx"]) == digest):
        logger.info("exporting the transformer to ONNX in %s (once)", folder)
        _export(encoder, fp32)
        record[_FILES["onnx"]] = digest
    if backend == "onnx-int8":
        logger.info("quantizing the ONNX export to int8 (once)")
        _quantize(fp32, target)
        record[_FILES["onnx-int8"]] = digest
    tmp = record_path.with_name(f".{_RECORD}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, record_path)
    return target


class OnnxEncoder:
    """Runs an exported transformer with ONNX Runtime, then the model's pooling and normalising, in NumPy.

    Args:
        encoder: The sentence-transformers model it was exported from (its tokenizer, pooling and limit are used).
        path: The ONNX file (from :func:`export_onnx`).
        threads: ONNX Runtime's intra-op threads; as many as torch uses when None.
    """

    def __init__(self, encoder: Any, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        _check_supported(encoder)
        transformer = encoder[0]
        self.tokenizer = transformer.tokenizer
        self.max_seq_length = int(encoder.max_seq_length)
        self.path = Path(path)
        pooling = next((m for m in encoder if type(m).__name__ == "Pooling"), None)
        self.pooling = _pooling_mode(pooling)
        self.normalize = any(type(m).__name__ == "Normalize" for m in encoder)
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
            emb = _pool(tokens, batch["attention_mask"], self.pooling)  # (batch, dim)
            if self.normalize:
                emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[rows] = emb
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


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
