"""FAQ bot figures (issue 4): out-of-scope detection on BANKING77 with held-out intents, and `ask` latency.

Run:  python eval/bench_faq.py                    # every part
      python eval/bench_faq.py --part shipped     # the shipped FAQ: calibrate on half its queries, test on the rest
      python eval/bench_faq.py --part oos         # held-out intents: in-scope accuracy and out-of-scope recall
      python eval/bench_faq.py --part oos --train-epochs 1   # the same after `sentsim faq train` on the in-scope FAQ
      python eval/bench_faq.py --part latency     # ask() p50/p99 at 1k, 10k and 100k entries
      python eval/bench_faq.py --part oos --answer-k 4   # each intent scored by the mean of its 4 best questions
      python eval/bench_faq.py --part oos --train-epochs 2 --train-loss proxy --train-batch-size 32 --train-lr 5e-5
      python eval/bench_faq.py --part http        # `sentsim serve` under 10,000 requests at concurrency 32

oos: the 77 BANKING77 intents are split (per seed) into 57 in scope, 10 out-of-scope for dev and 10 out-of-scope
for test. The FAQ is 90% of the in-scope intents' train questions (answer = intent). Dev queries: the other 10% of
those questions plus the train questions of the dev out-of-scope intents; `FAQBot.calibrate` chooses the threshold
and margin on them. Test queries: the test questions of the in-scope intents and of the test out-of-scope intents,
which the bot has never seen in any form. Reported on test: in-scope accuracy (answered and right), out-of-scope
recall (not answered), and top-1 accuracy without abstaining. Test questions choose nothing.
Three calibration objectives: balanced, precision (target 0.95) and accuracy (in-scope accuracy >= 90 on dev, the
floor of issue 4's target, catching as many out-of-scope dev queries as that allows); each also chooses the gap
weight (``--gap-weights``; 0 alone is the best score alone). Beside them, a ceiling that is not a result: the most
out-of-scope recall any one threshold on the best score would give on test while in-scope accuracy stays >= 90
(issue 4's target asks 85 there), chosen in hindsight on test, and the same for the calibrated confidence: how far
each rule is from the target, whatever the threshold.

latency: one `ask` at a time on BANKING77 test questions, after a warm-up, over FAQs of 1,000 and 10,000 BANKING77
train questions and of 100,000 entries (the 10,000 embeddings repeated with small noise), each with the bot's
default index (exact below 50,000 entries, FAISS HNSW from there). Beside each `ask`, in turns: the question encoded
alone by sentsim, so what `ask` adds to the encoder is read from one loop; then, in a loop of its own, by plain
sentence-transformers, the peer.

Every part runs the model on `--backend` (default torch, fp32; `auto` or `openvino-int8` for the CPU default).

http: `sentsim serve --backend` (the shipped FAQ) in its own process on 127.0.0.1; this process sends BANKING77
test questions to POST /v1/ask, `--concurrency` at a time, `--requests` in all, and counts throughput, latency and
errors. Once per `--ask-batches` setting (default: without batching, then batches of up to 32), each against a
fresh server.

Writes eval/results/bench_faq.json (or --out) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np

import sentsim
from sentsim.backends import BACKENDS
from sentsim.faq import FAQBot, check_gap_weight

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import proxy_margin_arg  # noqa: E402  (eval/run.py's --proxy-margin check)

ROOT = Path(__file__).resolve().parents[1]


def read_banking(data: Path, split: str) -> list[tuple[str, str]]:
    with (data / "banking77" / f"{split}.csv").open(encoding="utf-8", newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def oos_split(train, test, seed: int):
    intents = sorted({c for _, c in train})
    rng = random.Random(seed)
    rng.shuffle(intents)
    oos_dev, oos_test, in_scope = set(intents[:10]), set(intents[10:20]), set(intents[20:])
    faq, dev = [], []
    by_intent = defaultdict(list)
    for text, intent in train:
        if intent in in_scope:
            by_intent[intent].append(text)
        elif intent in oos_dev:
            dev.append((text, None))
    for intent in sorted(by_intent):
        texts = by_intent[intent]
        rng.shuffle(texts)
        cut = max(1, len(texts) // 10)
        dev += [(t, intent) for t in texts[:cut]]
        faq += [(t, intent) for t in texts[cut:]]
    test_q = [(t, c if c in in_scope else None) for t, c in test if c in in_scope or c in oos_test]
    return faq, dev, test_q


def best_recall_at_accuracy(
    scores: np.ndarray, right: np.ndarray, in_scope: np.ndarray, floor: float = 0.90
) -> float | None:
    """The most out-of-scope recall any one score threshold gives while in-scope accuracy stays >= ``floor``.

    A ceiling read off the test curve itself, not a calibrated figure: it says how far the score rule is from a
    target such as issue 4's (in-scope accuracy 90 with out-of-scope recall 85) even with the best threshold in
    hindsight. ``right``: the top match is the expected answer (in-scope queries only). None when no threshold
    keeps ``floor``.
    """
    scores, right, in_scope = (np.asarray(a) for a in (scores, right, in_scope))
    n_in, n_out = int(in_scope.sum()), int((~in_scope).sum())
    best = None
    for t in np.r_[np.unique(scores), np.inf]:  # answer when score >= t
        answered = scores >= t
        if n_in and (answered & right & in_scope).sum() / n_in >= floor:
            recall = float((~answered & ~in_scope).sum() / n_out) if n_out else 0.0
            best = recall if best is None else max(best, recall)
    return best


OBJECTIVES = ("balanced", "precision", "accuracy")  # accuracy: in-scope accuracy >= 90 on dev, issue 4's floor


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return round(statistics.fmean(values), 4), round(statistics.stdev(values), 4) if len(values) > 1 else 0.0


def part_oos(
    model,
    data: Path,
    seeds: list[int],
    train_epochs: float = 0,
    answer_k: int = 1,
    train_loss: str = "mnrl",
    train_batch_size: int = 32,
    train_lr: float = 2e-5,
    gap_weights: list[float] | None = None,
    train_proxy_margin: float = 0.0,
) -> dict:
    import shutil
    import tempfile

    from sentsim.faq import FAQEntry
    from sentsim.faq_train import train_faq

    train, test = read_banking(data, "train"), read_banking(data, "test")
    rows = []
    for seed in seeds:
        faq, dev, test_q = oos_split(train, test, seed)
        seed_model, wall = model, None
        if train_epochs:  # fine-tune on the in-scope FAQ only (`sentsim faq train`); dev and test stay unseen
            tmp = Path(tempfile.mkdtemp(prefix="bench-faq-"))
            try:
                entries = [FAQEntry(q, intent, intent) for q, intent in faq]
                r = train_faq(
                    entries, tmp / "model", loss=train_loss, epochs=train_epochs, batch_size=train_batch_size,
                    learning_rate=train_lr, seed=seed, show_progress=False, proxy_margin=train_proxy_margin,
                )  # fmt: skip
                seed_model, wall = sentsim.load(r.output_dir, device="cpu", backend=model.backend), r.wall_time_s
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        bot = FAQBot.from_pairs(
            [(q, i, i) for q, i in faq], model=seed_model, show_progress=False, answer_k=answer_k
        )  # id = intent
        ceiling = None
        for objective in OBJECTIVES:
            bot.calibrate(
                [q for q, _ in dev], [e for _, e in dev], objective=objective, target_precision=0.95,
                target_accuracy=0.90, **({} if gap_weights is None else {"gap_weights": gap_weights}),
            )  # fmt: skip
            answers = bot.ask_many([q for q, _ in test_q], alternatives=0)
            inn = [(a, e) for a, (_, e) in zip(answers, test_q) if e is not None]
            out = [a for a, (_, e) in zip(answers, test_q) if e is None]
            if ceiling is None:  # the threshold's best case on test, from the raw best scores (no margin)
                ceiling = best_recall_at_accuracy(
                    np.array([a.score for a in answers]),
                    np.array([e is not None and a.id == e for a, (_, e) in zip(answers, test_q)]),
                    np.array([e is not None for _, e in test_q]),
                )
            row = {
                "seed": seed,
                "objective": objective,
                "faq_questions": len(faq),
                "dev_queries": len(dev),
                "test_in_scope": len(inn),
                "test_out_of_scope": len(out),
                "threshold": round(bot.threshold, 4),
                "margin": bot.margin,
                "gap_weight": bot.gap_weight,
                "in_scope_accuracy": round(100 * sum(a.answer == e for a, e in inn) / len(inn), 2),
                "out_of_scope_recall": round(100 * sum(a.answer is None for a in out) / len(out), 2),
                "top1_no_abstain": round(100 * sum(a.id == e for a, e in inn) / len(inn), 2),
                "oos_recall_at_in_scope_90_test_ceiling": None if ceiling is None else round(100 * ceiling, 2),
                "confidence_ceiling": _pct(
                    best_recall_at_accuracy(
                        np.array([a.confidence for a in answers]),
                        np.array([e is not None and a.id == e for a, (_, e) in zip(answers, test_q)]),
                        np.array([e is not None for _, e in test_q]),
                    )
                ),  # the same ceiling for the calibrated confidence (best score plus gap_weight times its lead)
                "answer_k": answer_k,
                "faq_train_epochs": train_epochs,
                **(
                    {
                        "faq_train": {
                            "loss": train_loss,
                            "batch_size": train_batch_size,
                            "lr": train_lr,
                            "proxy_margin": train_proxy_margin,
                        }
                    }
                    if train_epochs
                    else {}
                ),
                "faq_train_wall_s": wall,
                "dev": bot.calibration,
            }
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "dev"}), flush=True)
    summary = {}
    for objective in OBJECTIVES:
        sel = [r for r in rows if r["objective"] == objective]
        summary[objective] = {
            k: _mean_std([r[k] if r[k] is not None else 0.0 for r in sel])
            for k in ("in_scope_accuracy", "out_of_scope_recall", "top1_no_abstain", "threshold", "gap_weight",
                      "confidence_ceiling")
        }  # fmt: skip
    ceilings = [r["oos_recall_at_in_scope_90_test_ceiling"] for r in rows if r["objective"] == "balanced"]
    summary["oos_recall_at_in_scope_90_test_ceiling"] = (
        _mean_std([c if c is not None else 0.0 for c in ceilings]) if ceilings else None
    )
    return {"rows": rows, "summary": summary}


def part_shipped(model, seed: int = 0, gap_weights: list[float] | None = None) -> dict:
    """The FAQ that ships with sentsim: calibrate on a random half of its labelled queries, test on the other half."""
    from sentsim.faq import default_queries_path
    from sentsim.retrieval import read_qa

    qa = read_qa(default_queries_path(), allow_empty_answer=True)
    rows = list(zip(qa.questions, qa.answers))
    random.Random(seed).shuffle(rows)
    half = len(rows) // 2
    bot = FAQBot.from_file(None, model=model, threshold=0.5)  # calibrated below, on the first half only
    out = {}
    extra = {} if gap_weights is None else {"gap_weights": gap_weights}
    for objective in ("balanced", "precision"):
        bot.calibrate(
            [q for q, _ in rows[:half]], [e for _, e in rows[:half]], objective, target_precision=0.95, **extra
        )
        answers = bot.ask_many([q for q, _ in rows[half:]])
        inn = [(a, e) for a, (_, e) in zip(answers, rows[half:]) if e]
        oos = [a for a, (_, e) in zip(answers, rows[half:]) if not e]
        out[objective] = {
            "threshold": round(bot.threshold, 4),
            "margin": bot.margin,
            "gap_weight": bot.gap_weight,
            "in_scope_accuracy": round(100 * sum(a.answer is not None and a.id == e for a, e in inn) / len(inn), 2),
            "out_of_scope_recall": round(100 * sum(a.answer is None for a in oos) / len(oos), 2),
            "top1_no_abstain": round(100 * sum(a.id == e for a, e in inn) / len(inn), 2),
            "test_queries": len(inn) + len(oos),
        }
        print(json.dumps({"objective": objective, **out[objective]}), flush=True)
    return out


def _percentiles(times: list[float]) -> dict:
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def part_latency(model, data: Path, n_queries: int, sizes: list[int], answer_k: int = 1) -> dict:
    from sentence_transformers import SentenceTransformer

    from sentsim.index import resolve_kind
    from sentsim.loading import bundled_model_path

    train = read_banking(data, "train")
    queries = [t for t, _ in read_banking(data, "test")][:n_queries]
    base = model.encode([t for t, _ in train], batch_size=64)
    peer = SentenceTransformer(str(bundled_model_path()), device="cpu")
    rng = np.random.default_rng(0)
    results = {}
    for size in sizes:
        reps = -(-size // len(train))
        emb = np.vstack([base + (rng.normal(0, 0.01, base.shape) if r else 0) for r in range(reps)])[:size]
        pairs = [(f"{train[i % len(train)][0]} #{i}", train[i % len(train)][1]) for i in range(size)]
        bot = FAQBot.from_pairs(pairs, model=model, embeddings=emb, answer_k=answer_k)  # exact, HNSW from 50,000
        for q in queries[:20]:  # warm-up
            bot.ask(q)
            model.encode([q])
        t_ask, t_enc, t_peer = [], [], []
        for i, q in enumerate(queries):  # ask and the encoder alone back to back, in turns, so load hits both alike
            for step in ("ask", "encode") if i % 2 else ("encode", "ask"):
                t0 = time.perf_counter()
                bot.ask(q) if step == "ask" else model.encode([q])
                (t_ask if step == "ask" else t_enc).append(time.perf_counter() - t0)
        # the peer in a loop of its own: right after another library's call, the cores are still busy with its
        # idle threads spinning (torch's OpenMP, OpenVINO's pool), which would count against the next call
        for q in queries[:20]:
            peer.encode(q)
        for q in queries:
            t0 = time.perf_counter()
            peer.encode(q)
            t_peer.append(time.perf_counter() - t0)
        results[size] = {
            "index": resolve_kind("auto", size),
            "ask": _percentiles(t_ask),
            "sentsim_encode_one": _percentiles(t_enc),
            "peer_encode_one": _percentiles(t_peer),
            "queries": len(queries),
            "answer_k": answer_k,
        }
        print(json.dumps({"entries": size, **results[size]}), flush=True)
    return results


def part_http(
    data: Path, n_requests: int, concurrency: int, model: str | None, ask_batch: int = 32, backend: str = "torch"
) -> dict:
    import asyncio
    import socket
    import subprocess

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "sentsim.cli", "-q", "serve", "--port", str(port), "--ask-batch", str(ask_batch)]
    cmd += ["--model", model] if model else []
    cmd += ["--backend", backend]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # the model loads and the FAQ is embedded first
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the server did not come up: " + (server.stderr.read() if server.poll() else ""))
        questions = [t for t, _ in read_banking(data, "test")]

        async def load() -> tuple[list[float], dict[int, int], float]:
            times: list[float] = []
            statuses: dict[int, int] = defaultdict(int)
            queue = iter(range(n_requests))
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

                async def worker() -> None:
                    for i in queue:
                        t0 = time.perf_counter()
                        try:
                            r = await client.post("/v1/ask", json={"question": questions[i % len(questions)]})
                            statuses[r.status_code] += 1
                        except httpx.HTTPError:
                            statuses[-1] += 1
                        times.append(time.perf_counter() - t0)

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return times, statuses, time.perf_counter() - start

        times, statuses, wall = asyncio.run(load())
    finally:
        server.terminate()
        server.wait(timeout=30)
    errors = sum(n for code, n in statuses.items() if code != 200)
    result = {
        "ask_batch": ask_batch,
        "requests": n_requests,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "requests_per_s": round(n_requests / wall, 1),
        **_percentiles(times),
        "statuses": dict(statuses),
        "errors": errors,
    }
    print(json.dumps(result), flush=True)
    return result


def positive_int(text: str) -> int:
    """argparse type: an int >= 1, so a bad ``--answer-k`` is a usage error, not a traceback."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return int(text)


def gap_weight_list(text: str) -> list[float]:
    """argparse type: comma-separated gap weights, each checked by the library's ``check_gap_weight``, so a bad
    ``--gap-weights`` is a usage error, not a traceback."""
    try:
        return [check_gap_weight(w) for w in text.split(",")]
    except sentsim.ConfigError as e:
        raise argparse.ArgumentTypeError(f"{e} (in {text!r})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("shipped", "oos", "latency", "http", "all"), default="all")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument(
        "--backend", default="torch", choices=BACKENDS, help="how the model runs (default torch: fp32, as recorded)"
    )
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--queries", type=int, default=500, help="latency: questions asked one at a time")
    parser.add_argument("--sizes", default="1000,10000,100000", help="latency: FAQ sizes")
    parser.add_argument("--train-epochs", type=float, default=0, help="oos: fine-tune on the in-scope FAQ first")
    parser.add_argument(
        "--gap-weights",
        type=gap_weight_list,
        default=None,
        help="oos, shipped: calibrate's gap weights to try (default: its own; 0: the best score)",
    )
    parser.add_argument("--train-loss", choices=("mnrl", "proxy"), default="mnrl", help="oos: sentsim faq train --loss")
    parser.add_argument("--train-batch-size", type=positive_int, default=32, help="oos: sentsim faq train --batch-size")
    parser.add_argument("--train-lr", type=float, default=2e-5, help="oos: sentsim faq train --lr")
    parser.add_argument(
        "--train-proxy-margin",
        type=proxy_margin_arg,
        default=0.0,
        help="oos: sentsim faq train --proxy-margin (loss proxy)",
    )
    parser.add_argument(
        "--answer-k",
        type=positive_int,
        default=1,
        help="oos, latency: FAQBot(answer_k=K), each answer by its K best questions",
    )
    parser.add_argument("--requests", type=int, default=10_000, help="http: requests in all")
    parser.add_argument("--concurrency", type=int, default=32, help="http: requests in flight at once")
    parser.add_argument("--ask-batches", default="1,32", help="http: sentsim serve --ask-batch settings to compare")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=None, help="JSON record (default eval/results/bench_faq-PART.json)")
    args = parser.parse_args(argv)
    if args.train_proxy_margin and args.train_loss != "proxy":
        parser.error("--train-proxy-margin is a setting of --train-loss proxy")
    data = Path(args.data)
    if not (data / "banking77" / "train.csv").is_file():
        print(f"bench_faq.py: error: {data}/banking77: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    model = sentsim.load(args.model, device="cpu", backend=args.backend)
    record = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/bench_faq.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model or "bundled",
    }
    gap_weights = args.gap_weights
    if args.part in ("shipped", "all"):
        record["shipped"] = part_shipped(model, gap_weights=gap_weights)
    if args.part in ("oos", "all"):
        seeds = [int(s) for s in args.seeds.split(",")]
        record["oos"] = part_oos(
            model, data, seeds, args.train_epochs, args.answer_k, args.train_loss, args.train_batch_size, args.train_lr,
            gap_weights, args.train_proxy_margin,
        )  # fmt: skip
        print(
            "\n| objective | in-scope accuracy | out-of-scope recall | top-1 without abstaining | threshold "
            "| gap weight | ceiling of the confidence |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for objective in OBJECTIVES:
            s = record["oos"]["summary"][objective]
            cells = [
                f"{s[k][0]:.2f} ± {s[k][1]:.2f}"
                for k in ("in_scope_accuracy", "out_of_scope_recall", "top1_no_abstain")
            ]
            print(
                f"| {objective} | " + " | ".join(cells) + f" | {s['threshold'][0]:.4f} | {s['gap_weight'][0]:.2f} | "
                f"{s['confidence_ceiling'][0]:.2f} ± {s['confidence_ceiling'][1]:.2f} |"
            )
        ceiling = record["oos"]["summary"]["oos_recall_at_in_scope_90_test_ceiling"]
        if ceiling:
            print(
                f"\nCeiling read off the test curve (best threshold in hindsight, not a result): out-of-scope recall "
                f"{ceiling[0]:.2f} ± {ceiling[1]:.2f} while in-scope accuracy stays >= 90 (0 where none keeps 90)."
            )
    if args.part in ("latency", "all"):
        sizes = [int(s) for s in args.sizes.split(",")]
        record["latency"] = part_latency(model, data, args.queries, sizes, args.answer_k)
        print("\n| entries | index | ask p50 ms | ask p99 ms | encode one p50 ms: sentsim | encode one p50 ms: peer |")
        print("| --- | --- | --- | --- | --- | --- |")
        for size, r in record["latency"].items():
            print(
                f"| {size:,} | {r['index']} | {r['ask']['p50_ms']:.2f} | {r['ask']['p99_ms']:.2f} | "
                f"{r['sentsim_encode_one']['p50_ms']:.2f} | {r['peer_encode_one']['p50_ms']:.2f} |"
            )
    if args.part in ("http", "all"):
        # each batching setting against its own fresh server, one after the other in this run
        batches = [int(b) for b in args.ask_batches.split(",")]
        runs = [part_http(data, args.requests, args.concurrency, args.model, b, args.backend) for b in batches]
        record["http"] = runs
        print("\n| /v1/ask batching | requests | concurrency | requests/s | p50 ms | p99 ms | errors |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in runs:
            batching = "none (--ask-batch 1)" if r["ask_batch"] == 1 else f"up to {r['ask_batch']}"
            cells = [batching, f"{r['requests']:,}", r["concurrency"], r["requests_per_s"], r["p50_ms"], r["p99_ms"]]
            print("| " + " | ".join(str(c) for c in cells + [r["errors"]]) + " |")
    out = Path(args.out or ROOT / "eval" / "results" / f"bench_faq-{args.part}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
