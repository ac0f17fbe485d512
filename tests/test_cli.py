"""The command line: every command, its --help, and every bad input as one line with exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sentsim.cli import main
from tests.test_training import write_pairs


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("sentsim: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("command", ["score", "encode", "train", "info"])
def test_every_command_has_help(command):
    result = subprocess.run([sys.executable, "-m", "sentsim.cli", command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: sentsim" in result.stdout


def test_score_prints_score_and_verdict(capsys):
    code, out, _ = run(capsys, "score", "A man is playing a guitar.", "Someone is playing a guitar.")
    assert code == 0 and "same meaning" in out and "cosine" in out
    code, out, _ = run(capsys, "score", "A man is playing a guitar.", "Stocks fell today.", "--json")
    result = json.loads(out)
    assert result["same"] is False and result["metric"] == "cosine" and result["score"] < result["threshold"]
    code, out, _ = run(capsys, "score", "a cat", "a cat", "--metric", "euclidean", "--json")
    assert json.loads(out)["score"] == pytest.approx(1.0, abs=1e-4)


def test_encode_writes_npy(tmp_path, capsys):
    src = tmp_path / "s.txt"
    src.write_bytes("\ufeffA man plays a guitar.\r\nSomeone is playing a guitar.\r\nA dog.\r\n".encode())
    out = tmp_path / "emb.npy"
    code, _, _ = run(capsys, "-q", "encode", str(src), "--out", str(out))
    emb = np.load(out, allow_pickle=False)
    assert code == 0 and emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    code, _, err = run(capsys, "encode", str(src), "--out", str(out))
    assert_one_line_error(code, err, "emb.npy", "--overwrite")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["is empty"]),
        (b"one\n\nthree\n", ["line 2", "empty sentence"]),
        (b"ok\n\xff\xfe bad\n", ["line 2", "UTF-8"]),
    ],
)
def test_encode_bad_input(tmp_path, capsys, content, needles):
    src = tmp_path / "s.txt"
    src.write_bytes(content)
    code, _, err = run(capsys, "encode", str(src), "--out", str(tmp_path / "e.npy"))
    assert_one_line_error(code, err, "s.txt", *needles)
    assert not (tmp_path / "e.npy").exists()


def test_encode_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "encode", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "e.npy"))
    assert_one_line_error(code, err, "nope.txt", "not found")


TRAIN_BAD_INPUTS = [
    ("missing.csv", None, [], ["missing.csv", "not found"]),
    ("empty.csv", b"", [], ["empty.csv", "empty"]),
    ("header.csv", b"a,b,c\nx,y,0.5\n", ["--columns", "sentence1,sentence2,score"], ["header.csv", "score", "a, b, c"]),
    ("text.csv", b"sentence1,sentence2,score\nx,y,high\n", [], ["text.csv", "row 2", "high"]),
    ("nan.csv", b"sentence1,sentence2,score\nx,y,0.5\nx,z,nan\n", [], ["nan.csv", "row 3"]),
    ("range.csv", b"sentence1,sentence2,score\nx,y,4\nx,y,6\n", ["--score-range", "0,5"], ["range.csv", "row 3"]),
    ("labels.csv", b"sentence1,sentence2,label\nx,y,1\nx,z,0.5\n", ["--loss", "contrastive"], ["labels.csv", "row 3"]),
    ("blank.csv", b"sentence1,sentence2,score\nx,y,0.5\n ,z,0.5\n", [], ["blank.csv", "row 3", "sentence1"]),
    ("latin1.csv", b"sentence1,sentence2,score\ncaf\xe9,y,0.5\n", [], ["latin1.csv", "UTF-8"]),
]


@pytest.mark.parametrize(
    ("name", "content", "extra", "needles"), TRAIN_BAD_INPUTS, ids=[t[0] for t in TRAIN_BAD_INPUTS]
)
def test_train_bad_data(tmp_path, capsys, name, content, extra, needles):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, "train", "--train", str(path), "--output-dir", str(tmp_path / "out"), *extra)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "out").exists()


def test_train_refuses_output_that_holds_a_model(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "out"
    shutil.copytree(tiny_model_dir, out)
    before = sorted(p.name for p in out.iterdir())
    pairs = write_pairs(tmp_path / "p.csv", 8)
    code, _, err = run(capsys, "train", "--train", str(pairs), "--output-dir", str(out))
    assert_one_line_error(code, err, str(out), "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize("damage", ["missing_weights", "pickle_only", "missing_config"])
def test_train_bad_base_model_folder(tmp_path, capsys, tiny_model_dir, damage):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    if damage == "missing_weights":
        (base / "model.safetensors").unlink()
        needles = ["model.safetensors"]
    elif damage == "pickle_only":
        (base / "model.safetensors").rename(base / "pytorch_model.bin")
        needles = ["pickle", "pytorch_model.bin"]
    else:
        (base / "1_Pooling" / "config.json").unlink()
        needles = ["1_Pooling", "config.json"]
    pairs = write_pairs(tmp_path / "p.csv", 8)
    code, _, err = run(
        capsys, "train", "--train", str(pairs), "--base-model", str(base), "--output-dir", str(tmp_path / "o")
    )
    assert_one_line_error(code, err, str(base), *needles)


def test_score_with_bad_model_folder(tmp_path, capsys):
    code, _, err = run(capsys, "score", "a", "b", "--model", str(tmp_path / "none"))
    assert_one_line_error(code, err, "none", "not found")


def test_train_then_info(tmp_path, capsys, tiny_model_dir):
    pairs = write_pairs(tmp_path / "p.csv", 32)
    dev = write_pairs(tmp_path / "d.csv", 16, seed=3)
    out = tmp_path / "m"
    code, stdout, _ = run(
        capsys, "-q", "train", "--train", str(pairs), "--dev", str(dev), "--output-dir", str(out),
        "--base-model", str(tiny_model_dir), "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
    )  # fmt: skip
    assert code == 0 and "loss: cosine" in stdout and "dev after" in stdout
    code, stdout, _ = run(capsys, "info", str(out))
    assert code == 0
    assert "loss:         cosine: auto" in stdout and "graded scores" in stdout
    assert '"cosine":' in stdout and "d.csv" in stdout
    code, stdout, _ = run(capsys, "info", str(out), "--json")
    assert json.loads(stdout)["training"]["train_pairs"] == 32


def test_torchrun_two_cpu_processes(tmp_path, tiny_model_dir):
    """Data-parallel training under torchrun with the gloo backend: both processes finish, the model loads,
    and each optimisation step saw a batch per process (half the steps of one process)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    pairs = write_pairs(tmp_path / "p.csv", 64)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", "-m", "sentsim.cli", "train",
            "--train", str(pairs), "--output-dir", str(out), "--base-model", str(tiny_model_dir),
            "--epochs", "1", "--batch-size", "8", "--no-progress",
        ],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("sentsim: read 64 pairs") == 2  # both ranks ran
    import sentsim

    model = sentsim.load(out)
    assert model.encode(["the cat runs"]).shape == (1, 32)
    assert model.config.training["global_steps"] == 4  # 64 pairs / (8 per process x 2 processes)
