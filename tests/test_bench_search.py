"""eval/bench_search.py's building blocks: reading the real sentence columns, the synthetic rows and the exact
first row that recall@1 is measured against; eval/int8_calibration.py's refusal without the data; and the pipe
protocol of bench_speed.py's second-environment peer (eval/st_worker.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import ROOT, data_path, load_script


@pytest.fixture(scope="module")
def eval_on_path():
    sys.path.insert(0, str(ROOT / "eval"))  # the scripts import bench_speed from their own folder
    try:
        yield
    finally:
        sys.path.remove(str(ROOT / "eval"))


@pytest.fixture(scope="module")
def bench(eval_on_path):
    return load_script("eval/bench_search.py")


def test_read_column_reads_every_msrp_and_stsb_sentence(bench):
    # MSRP's sentences hold unbalanced quotes; read as quoted CSV, rows ran together and left None cells
    msrp = bench.read_column(data_path("msrp", "train.tsv"), ["#1 String", "#2 String"], delimiter="\t")
    assert len(msrp) == 2 * 3576 and all(isinstance(t, str) and t for t in msrp)
    stsb = bench.read_column(data_path("stsb", "train.csv"), [0, 1])
    assert len(stsb) == 2 * 5749 and all(isinstance(t, str) and t for t in stsb)


def test_synthetic_rows_are_unit_vectors_near_the_base(bench):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((50, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rows = bench.synthetic_rows(base, 1_000, seed=1)
    assert rows.shape == (1_000, 16) and np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    nearest = (rows @ base.T).max(axis=1)  # each row is at least half one real sentence, plus a little noise
    assert nearest.min() > 0.5 and nearest.mean() > 0.85


def test_exact_top1_over_chunks_is_the_argmax(bench):
    rng = np.random.default_rng(2)
    rows, queries = rng.standard_normal((1_003, 8)).astype(np.float32), rng.standard_normal((17, 8)).astype(np.float32)
    assert bench.exact_top1(rows, queries, chunk=100).tolist() == (queries @ rows.T).argmax(axis=1).tolist()


def test_int8_calibration_script_needs_the_data(eval_on_path, tmp_path, capsys):
    script = load_script("eval/int8_calibration.py")
    assert script.main(["--data", str(tmp_path), "--out", str(tmp_path / "out.json")]) == 2
    assert "stsb/test.csv: not found" in capsys.readouterr().err and not (tmp_path / "out.json").exists()


FAKE_WORKER = """
import base64, json, sys
import numpy as np
print(json.dumps({"export_s": 0.5, "args": sys.argv[1:]}), flush=True)
for line in sys.stdin:
    texts = json.loads(line)["texts"]
    emb = np.array([[len(t), 1.0] for t in texts], dtype=np.float32)
    data = base64.b64encode(emb.tobytes()).decode()
    print(json.dumps({"seconds": 0.25 * len(texts), "embeddings": data}), flush=True)
"""


def test_remote_st_worker_protocol(eval_on_path, tmp_path):
    # bench_speed's second-environment peer: the worker's own timing and its embeddings come back through the pipe
    speed = load_script("eval/bench_speed.py")
    worker = tmp_path / "worker.py"
    worker.write_text(FAKE_WORKER)
    remote = speed.RemoteST(sys.executable, tmp_path / "model", tmp_path / "cache", "avx2", worker=worker)
    try:
        assert remote.info["args"] == [str(tmp_path / "model"), str(tmp_path / "cache"), "avx2"]
        emb = remote.encode(["abc", "hello"], 2)
        assert emb.dtype == np.float32 and emb.tolist() == [[3.0, 1.0], [5.0, 1.0]]
        assert remote.seconds == 0.5
        remote.encode(["x"], 1)
        assert remote.seconds == 0.25
    finally:
        remote.close()
    quits = tmp_path / "quits.py"
    quits.write_text('import json; print(json.dumps({"export_s": 0.0}), flush=True)\n')
    remote = speed.RemoteST(sys.executable, tmp_path / "model", tmp_path / "cache", "avx2", worker=quits)
    with pytest.raises(SystemExit, match="worker ended"):
        remote.encode(["abc"], 1)
    broken = tmp_path / "broken.py"
    broken.write_text("import sys; sys.exit(1)\n")
    with pytest.raises(SystemExit, match="ended without loading"):
        speed.RemoteST(sys.executable, tmp_path / "model", tmp_path / "cache", "avx2", worker=broken)
