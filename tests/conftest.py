"""Shared fixtures: a tiny transformer built in-process (fast, offline), the bundled model, real data paths."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite runs the models it loads on torch (fp32), so its figures do not depend on the CPU's int8 and each of its
# scratch models is not quantized again; tests/test_backends.py checks the default ("auto") with this unset.
os.environ.setdefault("SENTSIM_BACKEND", "torch")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def load_script(relative: str, name: str | None = None) -> ModuleType:
    """Import a script that is not in a package (``eval/run.py``, ``demo/app.py``) by its path from the project
    root; it is not run as ``__main__``, so only its definitions run."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_path(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with a reason when the data is not beside the project."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data beside the project)")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with the bundled tokenizer, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sentsim.loading import bundled_model_path

    torch.manual_seed(0)
    raw = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(raw, safe_serialization=True)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    out = tmp_path_factory.mktemp("tiny-st") / "model"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def bundled():
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    import sentsim

    return sentsim.load(device="cpu")
