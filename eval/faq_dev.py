"""Choosing how BANKING77 is trained and scored, on a dev split of train only (issue 3).

Run:  python eval/faq_dev.py                       # zero-shot and eval/run.py's sentsim recipe, answer_k 1..5
      python eval/faq_dev.py --epochs 1,2 --answer-k 1,3,4
      python eval/faq_dev.py --loss proxy --epochs 2 --batch-size 32 --lr 5e-5   # sentsim faq train --loss proxy

Test questions are never read. Each intent's train questions are shuffled (``--split-seed``) and a tenth of them
become dev queries; the other nine tenths are the FAQ and the training data. Each model (the bundled one zero-shot,
then sentsim trained as ``eval/run.py`` trains it on BANKING77 for each ``--epochs``: MNRL on ``banking_pairs``,
batch 16, lr 2e-5; or, with ``--loss proxy``, as ``sentsim faq train --loss proxy`` trains it on the FAQ) answers
the dev queries, its answers scored by the mean of their ``answer_k`` best questions (``evaluate_faq``). Prints
one table of dev top-1 accuracy and, per model, how many dev queries each ``answer_k`` gets right that
``answer_k=1`` gets wrong and the reverse. Writes OUT/dev.json, with which dev queries each row got right
(``right``: a 1 or a 0 per query).

``--baseline OLD/dev.json`` compares each row with the baseline's last model at the same ``answer_k``, query
by query: the queries only this run gets right, those only the baseline does, and the exact two-sided sign test
(McNemar's) on them. Two seeds of one proxy-loss recipe differ by 8 of 965 dev queries (BENCHMARKS.md), so a gain of
a few queries is not a reason to send a setting to test.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np

import sentsim
from sentsim.faq_train import train_faq
from sentsim.harness import evaluate_faq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import banking_pairs, proxy_margin_arg  # noqa: E402  (the pairs eval/run.py trains on)

ROOT = Path(__file__).resolve().parents[1]


class Cached:
    """A model whose embeddings are computed once per text: every answer_k reads the same embeddings."""

    def __init__(self, model) -> None:
        self.model, self.cache = model, {}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, sentences, **kwargs):
        new = [s for s in dict.fromkeys(sentences) if s not in self.cache]
        if new:
            self.cache.update(zip(new, np.asarray(self.model.encode(new, **kwargs))))
        return np.stack([self.cache[s] for s in sentences])


def dev_split(train_csv: Path, out: Path, seed: int) -> tuple[Path, Path]:
    """(FAQ file, dev query file): per intent, a tenth of the train questions (at least one) as dev queries."""
    with train_csv.open(encoding="utf-8", newline="") as f:
        by_intent: dict[str, list[dict]] = defaultdict(list)
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row)
    rng = random.Random(seed)
    faq, dev = [], []
    for intent in sorted(by_intent):
        rows = by_intent[intent][:]
        rng.shuffle(rows)
        cut = max(1, len(rows) // 10)
        dev += rows[:cut]
        faq += rows[cut:]
    paths = []
    for name, part in (("faq.csv", faq), ("dev.csv", dev)):
        with (out / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, ["text", "category"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(part)
        paths.append(out / name)
    return paths[0], paths[1]


def sign_test(gained: int, lost: int) -> float:
    """The exact two-sided sign test (McNemar's) on paired right/wrong outcomes: the chance of a split at least
    this uneven of the ``gained + lost`` queries on which two models disagree, were each as likely to win each.

    >>> sign_test(2, 0), sign_test(7, 1), round(sign_test(20, 4), 4), sign_test(0, 0)
    (0.5, 0.0703125, 0.0015, 1.0)
    """
    from scipy.stats import binomtest

    return float(binomtest(gained, gained + lost).pvalue) if gained + lost else 1.0


def read_baseline(path: Path, split_seed: int) -> dict[int, np.ndarray]:
    """{answer_k: which dev queries the baseline's last model got right}, from an earlier run's dev.json."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        rows = record["rows"]
        found = {}
        for r in (r for r in rows if r["model"] == rows[-1]["model"]):
            if set(r["right"]) - {"0", "1"}:
                raise ValueError("'right' holds a character other than 0 and 1")
            found[r["answer_k"]] = np.array([c == "1" for c in r["right"]])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise ValueError(f"{path}: not a dev.json of eval/faq_dev.py with per-query results ({e})") from None
    if record.get("split_seed", 0) != split_seed:
        raise ValueError(f"{path}: made on --split-seed {record.get('split_seed')}, not {split_seed}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="1", help="comma-separated sentsim training epochs ('' for zero-shot only)")
    parser.add_argument("--answer-k", default="1,2,3,4,5", help="comma-separated answer_k values to score with")
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--loss", choices=("mnrl", "proxy"), default="mnrl", help="mnrl: eval/run.py's recipe")
    parser.add_argument("--proxy-margin", type=proxy_margin_arg, default=0.0, help="with --loss proxy: its margin")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--baseline", default=None, help="an earlier run's dev.json to compare with, query by query")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "faq-dev"))
    args = parser.parse_args(argv)
    if args.proxy_margin and args.loss != "proxy":
        parser.error("--proxy-margin is a setting of --loss proxy")
    ks = [int(k) for k in args.answer_k.split(",")]
    if 1 not in ks or min(ks) < 1:
        parser.error("--answer-k must hold 1 (the baseline the others are compared with) and no value below 1")
    train_csv = Path(args.data) / "banking77" / "train.csv"
    if not train_csv.is_file():
        print(f"faq_dev.py: error: {train_csv}: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    baseline = {}
    if args.baseline:
        try:
            baseline = read_baseline(Path(args.baseline), args.split_seed)
        except ValueError as e:
            print(f"faq_dev.py: error: --baseline {e}", file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sentsim-faq-dev-"))
    results = []
    try:
        faq, dev = dev_split(train_csv, tmp, args.split_seed)
        n_dev = sum(1 for _ in csv.DictReader(dev.open(encoding="utf-8", newline="")))
        if any(len(v) != n_dev for v in baseline.values()):
            message = f"--baseline {args.baseline}: not made on these {n_dev} dev queries"
            print(f"faq_dev.py: error: {message}", file=sys.stderr)
            return 2
        epochs_list = [float(e) for e in filter(None, args.epochs.split(","))]
        loss = f"{args.loss} margin {args.proxy_margin:g}" if args.proxy_margin else args.loss
        models = [("zero-shot", None)] + [(f"sentsim {loss} {e:g} epochs", e) for e in epochs_list]
        for name, epochs in models:
            wall = None
            if epochs is None:
                model = sentsim.load(device="cpu", backend="torch")
            elif args.loss == "proxy":
                started = time.perf_counter()
                train_faq(
                    faq, tmp / "model", faq_columns="text,category", loss="proxy", epochs=epochs,
                    batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, overwrite=True,
                    show_progress=False, proxy_margin=args.proxy_margin,
                )  # fmt: skip
                wall = round(time.perf_counter() - started, 1)
                model = sentsim.load(tmp / "model", device="cpu", backend="torch")
            else:
                pair_train, pair_dev = banking_pairs(faq, tmp, args.seed)
                started = time.perf_counter()
                sentsim.train(
                    train=pair_train, dev=pair_dev, loss="mnrl", output_dir=tmp / "model", epochs=epochs,
                    batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, overwrite=True,
                    show_progress=False,
                )  # fmt: skip
                wall = round(time.perf_counter() - started, 1)
                model = sentsim.load(tmp / "model", device="cpu", backend="torch")
            right, model = {}, Cached(model)
            for k in ks:
                r = evaluate_faq(
                    model, faq, dev, faq_columns="text,category", columns="text,category", ks=(1,), answer_k=k,
                    model_name=name, show_progress=False,
                )  # fmt: skip
                right[k] = np.array([item["correct"] for item in r.items])
            for k in ks:
                row = {
                    "model": name, "answer_k": k, "dev_top1": round(100 * float(right[k].mean()), 2),
                    "gained_vs_k1": int((right[k] & ~right[1]).sum()), "lost_vs_k1": int((right[1] & ~right[k]).sum()),
                    "dev_queries": len(right[k]), "train_wall_s": wall,
                }  # fmt: skip
                if k in baseline:
                    gained, lost = int((right[k] & ~baseline[k]).sum()), int((baseline[k] & ~right[k]).sum())
                    row["vs_baseline"] = {"gained": gained, "lost": lost, "p": round(sign_test(gained, lost), 4)}
                print(json.dumps(row), flush=True)
                row["right"] = "".join("1" if x else "0" for x in right[k])  # per dev query, in file order
                results.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "date": str(date.today()), "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/faq_dev.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "split_seed": args.split_seed,
    }  # fmt: skip
    (out / "dev.json").write_text(json.dumps({**meta, "rows": results}, indent=2))
    lines = [
        "| model | answer_k | dev top-1 | right only with this k | right only with k=1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['model']} | {r['answer_k']} | {r['dev_top1']:.2f} | {r['gained_vs_k1']} | {r['lost_vs_k1']} |"
        for r in results
    ]
    print("\n" + "\n".join(lines))
    compared = [r for r in results if "vs_baseline" in r]
    if compared:
        print(f"\nAgainst {args.baseline} (its last model, the same answer_k):\n")
        print("| model | answer_k | right only here | right only in the baseline | sign test p |")
        print("| --- | --- | --- | --- | --- |")
        for r in compared:
            v = r["vs_baseline"]
            print(f"| {r['model']} | {r['answer_k']} | {v['gained']} | {v['lost']} | {v['p']:.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
