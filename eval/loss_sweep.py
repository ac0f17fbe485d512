"""Which score loss and learning rate to fine-tune the bundled model with: dev Spearman x100 (cosine) on STS-B after
`sentsim.train` with each setting. Dev only: the test split is never read here.

Run: python eval/loss_sweep.py [--losses cosine,cosent,angle] [--lrs 2e-5] [--epochs 1] [--data ../shared/data/stsb]
Each setting trains from the bundled model on all of STS-B train (about 4.5 minutes an epoch on 2 cores).
Writes eval/results/loss_sweep.json and prints one results table at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from datetime import date
from pathlib import Path

import sentsim

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="cosine,cosent,angle")
    parser.add_argument("--lrs", default="2e-5")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "stsb"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results"))
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = []
    for loss in args.losses.split(","):
        for lr in (float(x) for x in args.lrs.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                result = sentsim.train(
                    train=data / "train.csv",
                    dev=data / "dev.csv",
                    score_range=(0, 5),
                    output_dir=Path(tmp) / "model",
                    loss=loss,
                    learning_rate=lr,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    show_progress=False,
                )
            row = {
                "loss": loss,
                "lr": lr,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "dev_spearman_before": result.dev_before["spearman"],
                "dev_spearman_after": result.dev_metrics["spearman"],
                "dev_pearson_after": result.dev_metrics["pearson"],
                "train_wall_s": round(result.wall_time_s),
            }
            print(row, flush=True)
            rows.append(row)

    record = {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or ''}", "rows": rows}
    (out / "loss_sweep.json").write_text(json.dumps(record, indent=2))
    print("\n| loss | lr | epochs | batch | dev Spearman before | dev Spearman after | dev Pearson after | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = [r["loss"], r["lr"], r["epochs"], r["batch_size"], r["dev_spearman_before"]]
        cells += [r["dev_spearman_after"], r["dev_pearson_after"], r["train_wall_s"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
