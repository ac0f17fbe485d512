"""The Siamese model: one shared encoder embeds both sentences of a pair, a similarity head compares them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from sentsim import similarity as sim
from sentsim.config import CONFIG_NAME, ModelConfig
from sentsim.errors import ConfigError
from sentsim.loading import atomic_folder, check_output_folder

logger = logging.getLogger(__name__)

__all__ = ["SiameseModel", "Verdict", "is_model_folder"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of :meth:`SiameseModel.compare` for one pair."""

    score: float
    same: bool
    threshold: float
    metric: str

    def __str__(self) -> str:
        word = "same meaning" if self.same else "different"
        return f"{self.score:.4f} ({self.metric}, threshold {self.threshold:.4f}): {word}"


def is_model_folder(path: Path) -> bool:
    """True when ``path`` already holds a (sentence-transformers or sentsim) model."""
    return (path / "modules.json").is_file() or (path / CONFIG_NAME).is_file()


def _accept_preprocess_kwargs(encoder: Any) -> None:
    """sentence-transformers 6.2's WordEmbeddings passes keywords such as ``task`` to its tokenizer wrapper, whose
    ``tokenize`` takes none, so training an LSTM model fails in the trainer's set-up. Drop the keywords."""
    for module in encoder if hasattr(encoder, "__iter__") else ():
        wrapper = getattr(module, "tokenizer", None)
        if type(module).__name__ == "WordEmbeddings" and hasattr(wrapper, "tokenizer"):
            inner = wrapper.tokenizer
            wrapper.tokenize = lambda text, _t=inner, **_kw: _t(text)["input_ids"]


_SPECIAL_MARGIN = 8  # more than any tokenizer adds in special tokens (BERT: 2)


def _as_list(texts: str | Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise ConfigError(f"{name}[{i}] must be a string, not {type(text).__name__}")
    return items


class SiameseModel:
    """A sentence encoder shared by both sides of a pair, with a similarity head and a decision threshold.

    Build one with :func:`sentsim.load` (the bundled model, a folder or a hub id) or from a
    ``SentenceTransformer`` you made. ``encoder`` is that plain sentence-transformers model: anything that
    library does (training, ONNX export, ...) works on it.

    Args:
        encoder: the shared sentence encoder.
        config: metric, thresholds and training record; a fresh default config when None.

    Example:
        >>> import sentsim
        >>> model = sentsim.load()
        >>> round(float(model.similarity("A man plays a guitar.", "Someone is playing a guitar.")), 2) > 0.5
        True
    """

    def __init__(
        self, encoder: Any, config: ModelConfig | None = None, source: str | os.PathLike | None = None
    ) -> None:
        _accept_preprocess_kwargs(encoder)
        self.encoder = encoder
        self.config = config if config is not None else ModelConfig()
        self.source = Path(source) if source is not None else None  # the folder it was loaded from, if any
        self._warned_lengths: set[int] = set()
        self._fast: Any = None  # the ONNX runner when the backend is not torch
        self._fast_version = -1  # torch's in-place update count of the weights it was exported from
        self._fast_params: list[Any] = []  # those weights, listed once: walking the modules on every encode was slow
        self._grouped: Any = None  # the length-grouped LSTM runner (sentsim.recurrent), made on first use
        self._backend = "torch"  # what encode runs on now; config.backend is what was asked for ("auto" or one)
        if self.config.backend != "torch":
            self._set_backend(self.config.backend, saved=True)

    @property
    def backend(self) -> str:
        """How :meth:`encode` runs the encoder now: ``torch``, ``torch-bf16``, ``onnx``, ``onnx-int8``, ``openvino``,
        ``openvino-bf16`` or ``openvino-int8`` (see :mod:`sentsim.backends`); for ``auto``, the one it chose."""
        return self._backend

    def set_backend(self, backend: str) -> SiameseModel:
        """Run :meth:`encode` on ``backend``; an ONNX or OpenVINO backend exports the transformer once (cached beside
        the model, see :mod:`sentsim.backends`); ``auto`` picks one (:func:`sentsim.backends.resolve_backend`).
        Training and saving still use the torch weights. Returns the model.

        Raises:
            ConfigError: an unknown backend, ONNX Runtime or OpenVINO missing, a model these backends do not run,
                or ``torch-bf16`` for an LSTM on a CPU where torch cannot run an LSTM in bf16
                (:func:`sentsim.backends.lstm_runs_in_bf16`).
        """
        return self._set_backend(backend)

    def _set_backend(self, backend: str, saved: bool = False) -> SiameseModel:
        """:meth:`set_backend`; ``saved``: the backend comes from the model's saved config, so a ``torch-bf16``
        LSTM saved on a CPU with native bf16 still loads on one without it, running in fp32 (with a warning)."""
        from sentsim.backends import OnnxEncoder, OpenVinoEncoder, _auto_choice, check_backend, export_backend

        check_backend(backend)
        chosen, path = _auto_choice(self.encoder, self.source) if backend == "auto" else (backend, None)
        if chosen == "torch-bf16" and not self._bf16_runs():
            message = (
                "backend 'torch-bf16': torch cannot run this LSTM encoder in bfloat16 on this CPU (oneDNN has no bf16 "
                "LSTM kernel without native bf16, AVX-512 BF16 or AMX)"
            )
            if not saved:
                raise ConfigError(message + "; use backend='torch' (fp32) or 'auto'")
            logger.warning("%s: running it in fp32 (torch) instead", message)
            chosen = "torch"
        if chosen in ("torch", "torch-bf16"):  # the torch model itself, no export
            self._fast = None
        else:
            path = path or export_backend(self.encoder, chosen, self.source)
            if chosen.startswith("openvino"):
                self._fast = OpenVinoEncoder(
                    self.encoder, path, precision="bf16" if chosen == "openvino-bf16" else None
                )
            else:
                self._fast = OnnxEncoder(self.encoder, path)
            self._fast_params = list(self.encoder.parameters())
            self._fast_version = _weights_version(self._fast_params)
        self.config.backend, self._backend = backend, chosen
        return self

    def _bf16_runs(self) -> bool:
        """Whether ``torch-bf16`` can run this encoder here: anything but an LSTM on a CPU that refuses bf16 LSTMs."""
        from sentsim.backends import device_type, lstm_runs_in_bf16
        from sentsim.encoders import _is_lstm

        return device_type(self.encoder) != "cpu" or not _is_lstm(self.encoder) or lstm_runs_in_bf16()

    # ------------------------------------------------------------------ properties
    @property
    def metric(self) -> str:
        return self.config.metric

    @metric.setter
    def metric(self, value: str) -> None:
        self.config.metric = sim.check_metric(value)

    @property
    def threshold(self) -> float | None:
        """The decision threshold of the default metric, or None when none was chosen."""
        return self.config.threshold_for(self.metric)

    @property
    def dimension(self) -> int:
        return int(self.encoder.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self.encoder.max_seq_length)

    # ------------------------------------------------------------------ encoding
    def _count_truncated(self, texts: list[str]) -> int:
        """How many of ``texts`` exceed the encoder's token limit.

        Only texts that could exceed it are tokenized: word-piece, sentence-piece and byte-level BPE tokenizers
        all make at most one token per UTF-8 byte, plus a few special tokens, so a text of at most
        ``limit - _SPECIAL_MARGIN`` bytes cannot be truncated. Typical sentences cost nothing here."""
        limit = self.max_seq_length
        long = [t for t in texts if len(t.encode("utf-8")) > limit - _SPECIAL_MARGIN]
        if not long:
            return 0
        tokenizer = self.encoder.tokenizer
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # WordEmbeddings wraps the HF tokenizer
        lengths = tokenizer(long, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return sum(len(ids) > limit for ids in lengths)

    @overload
    def encode(self, sentences: str, batch_size: int = ..., show_progress_bar: bool | None = ...) -> np.ndarray: ...
    @overload
    def encode(
        self, sentences: Sequence[str], batch_size: int = ..., show_progress_bar: bool | None = ...
    ) -> np.ndarray: ...

    def encode(
        self, sentences: str | Sequence[str], batch_size: int = 32, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Embed sentences with the shared encoder.

        Args:
            sentences: one sentence or a list of them.
            batch_size: sentences per forward pass.
            show_progress_bar: a tqdm bar; by default shown for more than 1,000 sentences.

        Returns:
            float32 array ``(n, dim)`` with L2-normalised rows, or ``(dim,)`` for a single string.
            Sentences longer than the encoder's limit are truncated, with one warning that counts them.
        """
        single = isinstance(sentences, str)
        texts = _as_list(sentences, "sentences")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        truncated = self._count_truncated(texts)
        if truncated:
            logger.warning(
                "%d of %d sentences were longer than the encoder's limit of %d tokens and were truncated",
                truncated,
                len(texts),
                self.max_seq_length,
            )
        if show_progress_bar is None:
            show_progress_bar = len(texts) > 1000
        if self._fast is not None and _weights_version(self._fast_params) != self._fast_version:
            if self.config.backend == "auto":  # weights in training move on: torch until the model is loaded again
                logger.info("the weights changed since the %s export (training, averaging): torch now", self.backend)
                self._fast, self._backend = None, "torch"
            else:
                logger.info(
                    "the weights changed since the %s export (training, averaging): exporting again", self.backend
                )
                self.set_backend(self.backend)
        if self._fast is not None:
            emb = self._fast.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
            return emb[0] if single else emb
        if self._grouped is None:
            from sentsim.recurrent import GroupedLSTM

            self._grouped = GroupedLSTM(self.encoder) if GroupedLSTM.applies(self.encoder) else False
        bf16 = self._backend == "torch-bf16"
        if self._grouped:
            emb = self._grouped.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar, bf16=bf16)
            return emb[0] if single else emb
        if bf16:  # products in bf16, the embedding normalised in fp32
            with _autocast(self.encoder):
                emb = self.encoder.encode(
                    texts, batch_size=batch_size, show_progress_bar=show_progress_bar, convert_to_tensor=True
                )
            emb = _normalized(emb.float().cpu().numpy())
        else:
            emb = self.encoder.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                convert_to_numpy=True,
                normalize_embeddings=True,
            ).astype(np.float32, copy=False)
        return emb[0] if single else emb

    # ------------------------------------------------------------------ similarity head
    def similarity(
        self, a: str | Sequence[str], b: str | Sequence[str], metric: str | None = None
    ) -> float | np.ndarray:
        """Similarity of pair i of ``a`` with pair i of ``b`` (higher means more alike).

        Returns a float for two strings, else an array ``(n,)``. Distances are mapped to similarities with
        ``1 / (1 + distance)``, see :mod:`sentsim.similarity`.
        """
        metric = sim.check_metric(metric or self.metric)
        left, right = _as_list(a, "a"), _as_list(b, "b")
        if len(left) != len(right):
            raise ConfigError(f"a and b must have the same length to be paired, got {len(left)} and {len(right)}")
        emb = self.encode(left + right)
        scores = sim.pairwise(emb[: len(left)], emb[len(left) :], metric)
        return float(scores[0]) if isinstance(a, str) and isinstance(b, str) else scores

    def similarity_matrix(self, a: Sequence[str], b: Sequence[str], metric: str | None = None) -> np.ndarray:
        """Similarity of every sentence of ``a`` with every sentence of ``b``: an array ``(len(a), len(b))``."""
        metric = sim.check_metric(metric or self.metric)
        return sim.matrix(self.encode(_as_list(a, "a")), self.encode(_as_list(b, "b")), metric)

    def compare(self, a: str, b: str, metric: str | None = None, threshold: float | None = None) -> Verdict:
        """Score one pair and decide whether the two sentences mean the same, against the model's threshold.

        Raises:
            ConfigError: the model has no threshold for this metric and none was given.
        """
        metric = sim.check_metric(metric or self.metric)
        if threshold is None:
            threshold = self.config.threshold_for(metric)
        if threshold is None:
            raise ConfigError(
                f"this model has no decision threshold for metric {metric!r}; train it with dev data, "
                "or pass threshold="
            )
        score = float(self.similarity(a, b, metric))
        return Verdict(score=score, same=score >= threshold, threshold=float(threshold), metric=metric)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save as a plain sentence-transformers folder plus ``sentsim_config.json``, atomically.

        The model is written to a temporary folder beside ``path`` and renamed into place, so a kill during the
        save leaves any model already at ``path`` whole.

        Raises:
            OutputExistsError: ``path`` already holds a model (or other files) and ``overwrite`` is False.
        """
        target = check_output_folder(path, overwrite).resolve()
        with atomic_folder(target) as tmp:
            self.encoder.save(str(tmp))
            self.config.save(tmp)
            if self._fast is not None:  # the export is of these very weights: keep it, so loading needs no export
                _copy_export(self._fast.path.parent, tmp / "onnx")
        logger.info("saved model to %s", target)
        return target

    def info(self) -> dict[str, Any]:
        """What the model is: encoder, dimension, limit, metric, thresholds, training record, dev figures, and the
        backend asked for (``backend``, often ``auto``) beside the one it runs on now (``runs_on``)."""
        return {
            "encoder": self.config.encoder,
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            **self.config.to_dict(),
            "runs_on": self.backend,
        }

    def __repr__(self) -> str:
        return (
            f"SiameseModel(encoder={self.config.encoder}, dim={self.dimension}, metric={self.metric}, "
            f"threshold={self.threshold})"
        )


def _copy_export(source: Path, target: Path) -> None:
    import shutil

    target.mkdir(exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, target / item.name)


def _autocast(encoder: Any):
    """``torch.autocast`` in bfloat16 on the encoder's device: what ``torch-bf16`` runs under."""
    import torch

    from sentsim.backends import device_type

    return torch.autocast(device_type(encoder), dtype=torch.bfloat16)


def _normalized(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32, as sentence-transformers' ``normalize_embeddings`` does (a zero row
    stays zero)."""
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def _weights_version(parameters: list[Any]) -> int:
    """The sum of torch's in-place update counters of an encoder's parameters: it grows whenever an optimizer
    step or ``load_state_dict`` changes a weight, so an export of older weights is noticed without hashing them."""
    return sum(p._version for p in parameters)
