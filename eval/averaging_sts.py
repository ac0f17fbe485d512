"""Weight averaging on STS-B (issue 3): does averaging fine-tuned weights beat a single fine-tuning?

Run:  python eval/averaging_sts.py --part soup          # 3 seeds of 1 epoch, then their uniform average
      python eval/averaging_sts.py --part checkpoints   # 2 epochs, dev every 90 steps, `--average-best 4`
      python eval/averaging_sts.py --part wise --model DIR --alphas 1,0.8,0.6,0.5
                                                        # bundled + alpha * (fine-tuned - bundled)

Every choice is made on STS-B dev; test is read for the figures only. Prints one line per model (dev and test
Spearman x100 of cosine similarity) and writes eval/results/averaging_sts-PART.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import sentsim
from sentsim.harness import evaluate_sts
from sentsim.loading import bundled_model_path

ROOT = Path(__file__).resolve().parents[1]


def figures(model, stsb: Path) -> dict[str, float]:
    return {
        split: round(evaluate_sts(model, stsb / f"{split}.csv", score_range=(0, 5)).metrics["spearman_cosine"], 2)
        for split in ("dev", "test")
    }


def fine_tune(stsb: Path, out: Path, seed: int, epochs: float, lr: float, **extra) -> tuple[Path, float]:
    result = sentsim.train(
        train=stsb / "train.csv", dev=stsb / "dev.csv", score_range=(0, 5), output_dir=out, epochs=epochs,
        learning_rate=lr, seed=seed, overwrite=True, show_progress=False, **extra,
    )  # fmt: skip
    return out, result.wall_time_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("soup", "checkpoints", "wise"), required=True)
    parser.add_argument("--seeds", default="42,43,44", help="soup: one fine-tuning per seed")
    parser.add_argument("--epochs", type=float, default=None, help="default: 1 (soup), 2 (checkpoints)")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--k", type=int, default=4, help="checkpoints: how many best checkpoints to average")
    parser.add_argument("--eval-steps", type=int, default=90, help="checkpoints: dev evaluation every N steps")
    parser.add_argument("--model", default=None, help="wise: the fine-tuned model folder")
    parser.add_argument("--alphas", default="1,0.8,0.6,0.5,0.4", help="wise: weights of the fine-tuned model")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    stsb = Path(args.data) / "stsb"
    if not (stsb / "train.csv").is_file():
        print(f"averaging_sts.py: error: {stsb}: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    if args.part == "wise" and not args.model:
        parser.error("--part wise needs --model DIR (a model fine-tuned from the bundled one)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sentsim-avg-") as tmp:
        if args.part == "soup":
            folders = []
            for seed in (int(s) for s in args.seeds.split(",")):
                folder, wall = fine_tune(stsb, Path(tmp) / f"seed{seed}", seed, args.epochs or 1, args.lr)
                folders.append(folder)
                trained = sentsim.load(folder, backend="torch")
                rows.append({"model": f"seed {seed}", "train_s": round(wall), **figures(trained, stsb)})
                print(json.dumps(rows[-1]), flush=True)
            soup = sentsim.average_models(folders, dev=stsb / "dev.csv", score_range=(0, 5))
            rows.append({"model": f"uniform average of {len(folders)} seeds", **figures(soup, stsb)})
        elif args.part == "checkpoints":
            started = time.perf_counter()
            folder, _ = fine_tune(
                stsb, Path(tmp) / "model", 42, args.epochs or 2, args.lr, eval_steps=args.eval_steps,
                average_best=args.k,
            )  # fmt: skip
            model = sentsim.load(folder, backend="torch")
            record = model.config.training["checkpoint_averaging"]
            rows.append({"model": f"--average-best {args.k}", "train_s": round(time.perf_counter() - started),
                         "averaging": record, **figures(model, stsb)})  # fmt: skip
        else:
            for alpha in (float(a) for a in args.alphas.split(",")):
                mixed = sentsim.average_models([bundled_model_path(), args.model], weights=[1 - alpha, alpha])
                rows.append({"model": f"bundled + {alpha} x (fine-tuned - bundled)", "alpha": alpha,
                             **figures(mixed, stsb)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    if args.part != "wise":
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/averaging_sts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
    }
    out = Path(args.out or ROOT / "eval" / "results" / f"averaging_sts-{args.part}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print("\n| model | STS-B dev | STS-B test |\n| --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['dev']:.2f} | {r['test']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
