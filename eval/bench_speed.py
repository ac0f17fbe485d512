"""Speed on a CPU (issue 6): plain sentence-transformers against each sentsim backend, in one process, interleaved.

Run:  python eval/bench_speed.py [--rounds 5] [--queries 300] [--model DIR] [--lstm STUDENT] [--faq]
                                 [--st-python ../st-onnx/bin/python]

Steps:
1. Load the peer (plain `SentenceTransformer`, the same model) and sentsim's backends: torch, torch-bf16, onnx,
   onnx-int8, openvino, openvino-bf16, openvino-int8 (each export is made once and cached; its time is printed,
   not counted). On a CPU with native bf16, where openvino-int8 runs its float operations in bf16, also that model
   in f32 ("openvino-int8-f32"), to show what bf16 changes. With
   `--lstm`, also that LSTM model (the distilled student of eval/bench_student.py) on the backend `auto` picks for
   it ("lstm": torch-bf16 on a CPU with native bf16, else torch) and, where that is not torch, in fp32 torch
   ("lstm-fp32"), to show what bf16 changes. With
   `--st-python`, also sentence-transformers' own ONNX int8 backend ("st-onnx-int8"), which needs a second Python
   environment (see eval/st_worker.py); it runs there as a worker process that times its own `encode` calls.
2. Accuracy: STS-B test Spearman x100 (cosine) for every backend, and the cosine of each sentence's embedding to
   the peer's (mean and worst).
3. Batch throughput: the distinct STS-B test sentences, batch 64; each round runs the peer and every backend once,
   in a rotating order, so load on the machine falls on all of them alike. Median sentences/s, and the ratio to
   the peer's median.
4. One query at a time (what a chatbot does): `--queries` BANKING77 test questions, each encoded alone; the peer
   and the backends take turns in blocks of `--block` questions, in a rotating order; p50 and p99 in ms. With
   `--faq`, also the FAQ bot's whole `ask` over the 10,000 BANKING77 train questions on each backend, each
   question encoded alone right before it is asked, so the table shows what `ask` adds to the encoder.
5. Prints the table and writes eval/results/bench_speed.json (or --out).
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

import sentsim

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8", "openvino", "openvino-bf16", "openvino-int8")


def read_sts(data: Path, split: str = "test") -> tuple[list[str], list[tuple[str, str, float]]]:
    """The distinct sentences of an STS-B split, sorted, and its (sentence1, sentence2, score) rows."""
    with (data / "stsb" / f"{split}.csv").open(encoding="utf-8", newline="") as f:
        rows = [(a, b, float(s)) for a, b, s in csv.reader(f)]
    return sorted({a for a, _, _ in rows} | {b for _, b, _ in rows}), rows


def read_questions(data: Path, split: str) -> list[tuple[str, str]]:
    with (data / "banking77" / f"{split}.csv").open(encoding="utf-8", newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def spearman(emb: np.ndarray, index: dict[str, int], rows: list[tuple[str, str, float]]) -> float:
    from scipy.stats import spearmanr

    pred = [float(emb[index[a]] @ emb[index[b]]) for a, b, _ in rows]
    return round(100 * float(spearmanr(pred, [s for _, _, s in rows]).statistic), 2)


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


class RemoteST:
    """sentence-transformers' ONNX int8 backend in another Python environment (eval/st_worker.py)."""

    def __init__(self, python: str, model_dir: Path, cache: Path, config: str, worker: Path | None = None):
        worker = worker or Path(__file__).with_name("st_worker.py")
        command = [python, str(worker), str(model_dir), str(cache), config]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench_speed.py: error: {python} {worker} ended without loading the model")
        self.info = json.loads(line)
        self.seconds = 0.0  # the worker's own time for the last encode call

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        try:
            self.proc.stdin.write(json.dumps({"texts": texts, "batch_size": batch_size}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:  # the worker is gone before the request was written
            line = ""
        if not line:
            raise SystemExit(f"bench_speed.py: error: the sentence-transformers worker ended (exit {self.proc.wait()})")
        reply = json.loads(line)
        self.seconds = reply["seconds"]
        return np.frombuffer(base64.b64decode(reply["embeddings"]), dtype=np.float32).reshape(len(texts), -1)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _int8_in_f32(model, name: str | None):
    """The openvino-int8 model of ``model`` run with OpenVINO's float operations in f32, where sentsim runs them in
    bf16 (a CPU with native bf16); None elsewhere, where the two are the same."""
    from sentsim.backends import OpenVinoEncoder, export_backend, openvino_precision
    from sentsim.loading import resolve_model

    location, is_local = resolve_model(name)
    path = export_backend(model.encoder, "openvino-int8", location if is_local else None)
    return OpenVinoEncoder(model.encoder, path, precision="f32") if openvino_precision(path) == "bf16" else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--rounds", type=int, default=5, help="batch throughput rounds")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--queries", type=int, default=300, help="questions encoded one at a time")
    parser.add_argument("--block", type=int, default=50, help="questions per encoder in turn (one-query latency)")
    parser.add_argument("--faq", action="store_true", help="also time FAQBot.ask over 10,000 entries")
    parser.add_argument("--lstm", default=None, help="an LSTM model folder to time beside the others")
    parser.add_argument("--st-python", default=None, help="a Python with sentence-transformers and optimum-onnx")
    parser.add_argument("--st-config", default="avx512_vnni", help="export_dynamic_quantized_onnx_model's config")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "bench_speed.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "stsb" / "test.csv").is_file():
        print(f"bench_speed.py: error: {data}/stsb: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    from sentence_transformers import SentenceTransformer

    from sentsim.loading import resolve_model

    # 1. the peer and the backends
    peer = SentenceTransformer(resolve_model(args.model)[0], device="cpu")
    models, export_s = {}, {}
    for backend in BACKENDS:
        started = time.perf_counter()
        models[backend] = sentsim.load(args.model, device="cpu", backend=backend)
        export_s[backend] = round(time.perf_counter() - started, 1)
    encoders = {"peer": lambda texts, bs: peer.encode(texts, batch_size=bs, normalize_embeddings=True)}
    for backend, model in models.items():
        encoders[backend] = lambda texts, bs, m=model: m.encode(texts, batch_size=bs)
    f32 = _int8_in_f32(models["openvino-int8"], args.model)
    if f32 is not None:  # on a CPU with native bf16, also the int8 model with its float operations in f32
        encoders["openvino-int8-f32"] = lambda texts, bs: f32.encode(texts, batch_size=bs)
    if args.lstm:
        student = sentsim.load(args.lstm, device="cpu", backend="auto")
        encoders["lstm"] = lambda texts, bs: student.encode(texts, batch_size=bs)
        if student.backend != "torch":
            exact = sentsim.load(args.lstm, device="cpu", backend="torch")
            encoders["lstm-fp32"] = lambda texts, bs: exact.encode(texts, batch_size=bs)
        print(f"LSTM student: auto picked {student.backend}", flush=True)
    remote = None
    if args.st_python:
        cache = ROOT / "eval" / "results" / f"st-onnx-{args.st_config}"
        remote = RemoteST(args.st_python, resolve_model(args.model)[0], cache, args.st_config)
        export_s["st-onnx-int8"] = round(remote.info["export_s"], 1)
        encoders["st-onnx-int8"] = remote.encode
    print(f"load (and ONNX export, first time only) s: {export_s}", flush=True)

    def timed(name: str, texts: list[str], bs: int) -> float:
        started = time.perf_counter()
        encoders[name](texts, bs)
        return remote.seconds if name == "st-onnx-int8" else time.perf_counter() - started

    # 2. accuracy
    sentences, rows = read_sts(data)
    index = {s: i for i, s in enumerate(sentences)}
    embs = {name: np.asarray(fn(sentences, args.batch_size), dtype=np.float32) for name, fn in encoders.items()}
    accuracy = {}
    for name, emb in embs.items():
        cos = (emb * embs["peer"]).sum(axis=1)
        accuracy[name] = {
            "stsb_test_spearman": spearman(emb, index, rows),
            "cosine_to_peer_mean": round(float(cos.mean()), 5),
            "cosine_to_peer_min": round(float(cos.min()), 5),
        }
    print(json.dumps({"accuracy": accuracy}), flush=True)

    # 3. batch throughput, interleaved in a rotating order
    names = list(encoders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(name, sentences, args.batch_size))
    rate = {n: len(sentences) / statistics.median(t) for n, t in times.items()}
    throughput = {
        n: {"sentences_per_s": round(rate[n], 1), "ratio_to_peer": round(rate[n] / rate["peer"], 2)} for n in names
    }
    print(json.dumps({"throughput": throughput}), flush=True)

    # 4. one query at a time, in blocks of questions per encoder, the encoders in a rotating order. Not question by
    # question: each library's idle threads keep spinning for a while after a call (torch's OpenMP, OpenVINO's
    # pool, ONNX Runtime in the worker), so a question right after another library's runs on contended cores,
    # which a server running one backend never sees. The first questions of a block only warm it up.
    questions = [q for q, _ in read_questions(data, "test")][: args.queries]
    for q in questions[:20]:  # warm-up
        for fn in encoders.values():
            fn([q], 1)
    one: dict[str, list[float]] = {n: [] for n in names}
    blocks = [questions[i : i + args.block] for i in range(0, len(questions), args.block)]
    for b, block in enumerate(blocks):
        for name in names[b % len(names) :] + names[: b % len(names)]:
            for q in block[:5]:
                encoders[name]([q], 1)
            for q in block:
                one[name].append(timed(name, [q], 1))
    single = {n: percentiles(t) for n, t in one.items()}
    for n in names:
        single[n]["p50_ratio_to_peer"] = round(single[n]["p50_ms"] / single["peer"]["p50_ms"], 3)
    print(json.dumps({"one_query": single}), flush=True)

    asks = {}
    if args.faq:
        faq = read_questions(data, "train")
        for backend, model in models.items():
            bot = sentsim.FAQBot.from_pairs(
                [(q, c, c) for q, c in faq], model=model, threshold=0.5, show_progress=False
            )
            for q in questions[:20]:
                bot.ask(q)
            t, alone = [], []
            for q in questions:  # the question encoded alone, then asked: the difference is the bot's own work
                started = time.perf_counter()
                model.encode([q], batch_size=1)
                alone.append(time.perf_counter() - started)
                started = time.perf_counter()
                bot.ask(q)
                t.append(time.perf_counter() - started)
            encode_p50 = percentiles(alone)["p50_ms"]
            asks[backend] = {"entries": len(faq), **percentiles(t), "encode_p50_ms": encode_p50}
            asks[backend]["ask_minus_encode_p50_ms"] = round(asks[backend]["p50_ms"] - encode_p50, 3)
        print(json.dumps({"faq_ask": asks}), flush=True)

    if remote is not None:
        remote.close()

    # 5. the table
    record = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/bench_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sentences": len(sentences),
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "load_and_export_s": export_s,
        "st_onnx": remote.info if remote is not None else None,
        "accuracy": accuracy,
        "throughput": throughput,
        "one_query": single,
        "faq_ask": asks,
        "lstm_backend": student.backend if args.lstm else None,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{record['command']}, {record['date']}, {record['machine']}; {len(sentences):,} STS-B test sentences\n")
    print("| encoder | STS-B test Spearman | cosine to peer, mean / worst | sentences/s (batch "
          f"{args.batch_size}) | x peer | one query p50 ms | p99 ms | p50 / peer |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in names:
        a, t, s = accuracy[n], throughput[n], single[n]
        label = {
            "peer": "plain sentence-transformers (peer)",
            "lstm": f"sentsim LSTM ({args.lstm}), backend=auto ({student.backend})" if args.lstm else "",
            "lstm-fp32": f"sentsim LSTM ({args.lstm}), backend=torch (fp32)",
            "st-onnx-int8": f"sentence-transformers, backend=onnx, int8 {args.st_config} (second environment)",
            "openvino-int8-f32": "sentsim, backend=openvino-int8 with its float operations in f32 (not bf16)",
        }.get(n, f"sentsim, backend={n}")
        print(
            f"| {label} | {a['stsb_test_spearman']:.2f} | "
            f"{a['cosine_to_peer_mean']:.4f} / {a['cosine_to_peer_min']:.4f} | "
            f"{t['sentences_per_s']:.1f} | {t['ratio_to_peer']:.2f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
            f"{s['p50_ratio_to_peer']:.2f} |"
        )
    if asks:
        print("\n| backend | FAQ entries | ask p50 ms | ask p99 ms | encode alone p50 ms | ask - encode p50 ms |")
        print("| --- | --- | --- | --- | --- | --- |")
        for b, r in asks.items():
            print(
                f"| {b} | {r['entries']:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['encode_p50_ms']:.2f} | "
                f"{r['ask_minus_encode_p50_ms']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
