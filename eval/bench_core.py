"""Issue 2 figures: STS-B test Spearman x100 (cosine) of the bundled model zero-shot, after `sentsim train` with
the default settings, and of the LSTM encoder trained on STS-B, with encoding speed beside the transformer's.

Run: python eval/bench_core.py [--part zero|transformer|lstm|all] [--data ../shared/data] [--out eval/results]
Steps: 1. load STS-B; 2. zero-shot; 3. train the transformer (defaults, dev for choices); 4. train the LSTM;
5. speed of both on STS-B test sentences; one results table at the end. Test data is never used for a choice.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import sentsim
from sentsim.data import read_pairs
from sentsim.evaluation import spearman

ROOT = Path(__file__).resolve().parents[1]


def test_spearman(model: sentsim.SiameseModel, test) -> float:
    return round(100 * spearman(model.similarity(test.sentence1, test.sentence2, "cosine"), test.labels), 2)


def speed(model: sentsim.SiameseModel, sentences: list[str], rounds: int = 3) -> float:
    """Median sentences per second over ``rounds`` passes, batch 64."""
    model.encode(sentences[:64], batch_size=64)  # warm up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.encode(sentences, batch_size=64, show_progress_bar=False)
        rates.append(len(sentences) / (time.perf_counter() - start))
    return round(sorted(rates)[len(rates) // 2], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("zero", "transformer", "lstm", "all"), default="all")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "stsb"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results"))
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Data
    test = read_pairs(data / "test.csv", score_range=(0, 5))
    sentences = list(dict.fromkeys(test.sentence1 + test.sentence2))
    common = dict(train=data / "train.csv", dev=data / "dev.csv", score_range=(0, 5), overwrite=True)
    rows: list[dict] = []

    # 2. Zero-shot
    bundled = sentsim.load(device="cpu", backend="torch")
    if args.part in ("zero", "all", "lstm"):
        rows.append({"model": "bundled all-MiniLM-L6-v2, zero-shot", "test_spearman": test_spearman(bundled, test)})

    # 3. Transformer, default settings
    if args.part in ("transformer", "all"):
        result = sentsim.train(output_dir=out / "stsb-transformer", **common)
        rows.append(
            {
                "model": f"sentsim train (defaults: {result.loss}, 4 epochs, batch 16, lr 2e-5)",
                "test_spearman": test_spearman(result.model, test),
                "train_wall_s": round(result.wall_time_s),
                "dev_spearman": result.dev_metrics["spearman"],
            }
        )

    # 4. LSTM, and 5. speed beside the transformer
    if args.part in ("lstm", "all"):
        result = sentsim.train(output_dir=out / "stsb-lstm", encoder="lstm", epochs=1, batch_size=32, **common)
        lstm_rate, tf_rate = speed(result.model, sentences), speed(bundled, sentences)
        rows.append(
            {
                "model": f"sentsim train --encoder lstm ({result.loss}, 1 epoch, batch 32, lr 1e-3)",
                "test_spearman": test_spearman(result.model, test),
                "train_wall_s": round(result.wall_time_s),
                "dev_spearman": result.dev_metrics["spearman"],
                "sentences_per_s": lstm_rate,
                "transformer_sentences_per_s": tf_rate,
                "speed_ratio": round(lstm_rate / tf_rate, 2),
            }
        )

    record = {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or ''}", "rows": rows}
    (out / f"bench_core_{args.part}.json").write_text(json.dumps(record, indent=2))
    print("\n| model | STS-B test Spearman x100 | dev | train wall s | sentences/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        rate = ""
        if "sentences_per_s" in r:
            rate = f"{r['sentences_per_s']} ({r['speed_ratio']}x the transformer's {r['transformer_sentences_per_s']})"
        cells = [r["model"], r["test_spearman"], r.get("dev_spearman", ""), r.get("train_wall_s", ""), rate]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
