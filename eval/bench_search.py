"""Search at scale (issue 6, target 4): sentsim.VectorIndex, exact at 10,000 rows and HNSW at 1,000,000.

Run:  python eval/bench_search.py [--rows 1000000] [--queries 1000] [--ef 16,32,64,128,256]

Steps:
1. Embeds real sentences with the bundled model: the BANKING77 train questions (10,003), the STS-B train and dev
   sentences and the MSRP train sentences (the base set), and, as queries, the first --queries BANKING77 test
   questions (never in any index).
2. Exact search at 10,000 rows (the BANKING77 train questions, as the FAQ bot holds them): one query at a time,
   p50 and p99, for sentsim's exact index, FAISS's flat index and sentence-transformers' own
   `util.semantic_search` (the peer), interleaved query by query.
3. At --rows rows: no public set has a million sentences here, so each row is a real base embedding moved part
   of the way toward another one (weight 0 to 0.5) plus a little noise, normalised: rows that crowd around the
   real sentences the way a large corpus's near-paraphrases do. The truth is exact search over all rows. The HNSW
   index (M 32, efConstruction 80) is built once (its time is printed); then, for each efSearch, one query at a
   time: p50 and p99 ms, and recall@1 against exact search (the share of queries whose first row is the exact
   first row).
4. Prints the tables and writes eval/results/bench_search.json (or --out).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from bench_speed import percentiles  # eval/ is the script's folder, so on its path

import sentsim
from sentsim.index import VectorIndex

ROOT = Path(__file__).resolve().parents[1]


def read_column(path: Path, columns: list[int] | list[str], delimiter: str = ",") -> list[str]:
    # MSRP's TSV has unbalanced quotes inside sentences: read tabs literally, or rows run together
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with path.open(encoding="utf-8-sig", newline="") as f:
        if isinstance(columns[0], str):
            return [row[c] for row in csv.DictReader(f, delimiter=delimiter, quoting=quoting) for c in columns]
        return [row[c] for row in csv.reader(f, delimiter=delimiter, quoting=quoting) for c in columns]


def exact_top1(rows: np.ndarray, queries: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """The first row of each query by exact inner product, over row chunks (the full score matrix would not fit)."""
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    arg = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(rows), chunk):
        sims = queries @ rows[start : start + chunk].T
        i = sims.argmax(axis=1)
        s = sims[np.arange(len(queries)), i]
        better = s > best
        best[better], arg[better] = s[better], i[better] + start
    return arg


def synthetic_rows(base: np.ndarray, n: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        a, b = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        w = rng.uniform(0.0, 0.5, (m, 1)).astype(np.float32)
        x = (1 - w) * base[a] + w * base[b]
        x += (noise / np.sqrt(base.shape[1])) * rng.standard_normal(x.shape).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def time_queries(search, queries: np.ndarray) -> tuple[list[float], list[int]]:
    for q in queries[:20]:  # warm-up
        search(q[None, :])
    seconds, first = [], []
    for q in queries:
        started = time.perf_counter()
        ids = search(q[None, :])
        seconds.append(time.perf_counter() - started)
        first.append(int(ids[0]))
    return seconds, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large index")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", default="16,32,64,128,256", help="efSearch values to measure")
    parser.add_argument("--m", type=int, default=32, help="HNSW links per node")
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--backend", default=None, help="encoder backend for the embeddings (default: the default)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "bench_search.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "banking77" / "train.csv").is_file():
        print(f"bench_search.py: error: {data}/banking77: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    import faiss
    import torch
    from sentence_transformers import util

    # 1. real embeddings
    model = sentsim.load(device="cpu", **({"backend": args.backend} if args.backend else {}))
    faq = read_column(data / "banking77" / "train.csv", ["text"])
    queries_text = read_column(data / "banking77" / "test.csv", ["text"])[: args.queries]
    others = read_column(data / "stsb" / "train.csv", [0, 1]) + read_column(data / "stsb" / "dev.csv", [0, 1])
    others += read_column(data / "msrp" / "train.tsv", ["#1 String", "#2 String"], delimiter="\t")
    base_text = sorted(set(faq) | set(others))
    started = time.perf_counter()
    base = np.asarray(model.encode(base_text, batch_size=64, show_progress_bar=True), dtype=np.float32)
    queries = np.asarray(model.encode(queries_text, batch_size=64), dtype=np.float32)
    print(f"embedded {len(base_text):,} base sentences in {time.perf_counter() - started:.0f} s", flush=True)
    row_of = {t: i for i, t in enumerate(base_text)}
    faq_emb = base[[row_of[t] for t in dict.fromkeys(faq)]]

    # 2. exact search at 10,000 rows, one query at a time, interleaved
    exact = VectorIndex(faq_emb, kind="exact")
    flat = VectorIndex(faq_emb, kind="flat")
    corpus = torch.from_numpy(faq_emb)
    searches = {
        "sentsim exact": lambda q: exact.search(q, 1)[1][0],
        "FAISS flat": lambda q: flat.search(q, 1)[1][0],
        "sentence-transformers util.semantic_search (peer)": lambda q: [
            util.semantic_search(torch.from_numpy(q), corpus, top_k=1)[0][0]["corpus_id"]
        ],
    }
    for fn in searches.values():
        for q in queries[:20]:
            fn(q[None, :])
    small: dict[str, list[float]] = {name: [] for name in searches}
    firsts: dict[str, list[int]] = {name: [] for name in searches}
    for q in queries:
        for name, fn in searches.items():
            started = time.perf_counter()
            ids = fn(q[None, :])
            small[name].append(time.perf_counter() - started)
            firsts[name].append(int(ids[0]))
    truth_small = np.asarray(firsts["sentsim exact"])
    exact_small = {
        name: {
            **percentiles(t),
            "agrees_with_exact": round(float((np.asarray(firsts[name]) == truth_small).mean()), 4),
        }
        for name, t in small.items()
    }
    peer_p50 = exact_small["sentence-transformers util.semantic_search (peer)"]["p50_ms"]
    for r in exact_small.values():
        r["p50_ratio_to_peer"] = round(r["p50_ms"] / peer_p50, 3)
    print(json.dumps({"exact_10k": exact_small}), flush=True)

    # 3. HNSW at --rows rows
    rows = synthetic_rows(base, args.rows)
    started = time.perf_counter()
    truth = exact_top1(rows, queries)
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    hnsw = VectorIndex(rows, kind="hnsw", m=args.m, ef_construction=args.ef_construction, progress=True)
    build_s = time.perf_counter() - started
    print(f"{args.rows:,} rows: truth by exact search in {exact_s:.0f} s; HNSW built in {build_s:.0f} s", flush=True)
    faiss.omp_set_num_threads(1)  # one query at a time: FAISS parallelises over queries, so one thread does it
    large = {}
    for ef in [int(e) for e in args.ef.split(",")]:
        hnsw.ef_search = ef
        seconds, first = time_queries(lambda q: hnsw.search(q, 1)[1][0], queries)
        large[ef] = {**percentiles(seconds), "recall_at_1": round(float((np.asarray(first) == truth).mean()), 4)}
        print(json.dumps({"ef_search": ef, **large[ef]}), flush=True)
    one_exact, _ = time_queries(lambda q: exact_top1(rows, q), queries[:50])

    record = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()} {faiss.omp_get_max_threads()} thread(s)".strip(),
        "command": "python eval/bench_search.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "queries": len(queries),
        "exact_10k": {"rows": len(faq_emb), **exact_small},
        "hnsw": {
            "rows": args.rows,
            "dim": int(rows.shape[1]),
            "m": args.m,
            "ef_construction": args.ef_construction,
            "build_s": round(build_s, 1),
            "exact_one_query_p50_ms": percentiles(one_exact)["p50_ms"],
            "by_ef_search": large,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{record['command']}, {record['date']}, {record['machine']}; {len(queries):,} BANKING77 test queries\n")
    print(f"Exact search over {len(faq_emb):,} rows, one query at a time:\n")
    print("| search | p50 ms | p99 ms | p50 / peer | same first row as sentsim exact |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in exact_small.items():
        print(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['p50_ratio_to_peer']:.2f} | "
              f"{r['agrees_with_exact']:.4f} |")  # fmt: skip
    one_ms = record["hnsw"]["exact_one_query_p50_ms"]
    print(f"\nHNSW over {args.rows:,} rows (M {args.m}, efConstruction {args.ef_construction}, built in "
          f"{build_s:.0f} s; exact search of one query: {one_ms:.1f} ms p50):\n")  # fmt: skip
    print("| efSearch | p50 ms | p99 ms | recall@1 vs exact |\n| --- | --- | --- | --- |")
    for ef, r in large.items():
        print(f"| {ef} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['recall_at_1']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
