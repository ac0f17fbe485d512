"""Choose the bundled model's decision thresholds on STS-B dev (never test) and print them.

Run: python eval/calibrate_bundled.py [--data ../shared/data]
The printed dict is what sentsim.encoders.BUNDLED_THRESHOLDS holds; BENCHMARKS.md records the run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import sentsim
from sentsim.data import read_pairs
from sentsim.evaluation import binary_metrics
from sentsim.thresholds import choose_thresholds, dev_scores, same_labels

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--cutoff", type=float, default=0.7, help="gold score (0..1) counted as same meaning")
    args = parser.parse_args()

    # 1. Load the dev data and the bundled model
    dev = read_pairs(Path(args.data) / "stsb" / "dev.csv", score_range=(0, 5))
    model = sentsim.load(device="cpu", backend="torch")  # thresholds of the fp32 model
    # 2. Choose a threshold per metric for best accuracy on dev
    thresholds = choose_thresholds(model, dev, cutoff=args.cutoff, objective="accuracy")
    # 3. Report dev accuracy at those thresholds
    labels = same_labels(dev, args.cutoff)
    scores = dev_scores(model, dev)
    print("| metric | threshold | dev accuracy | dev F1 |")
    print("| --- | --- | --- | --- |")
    for metric, t in thresholds.items():
        m = binary_metrics(scores[metric], labels, t)
        print(f"| {metric} | {t:.4f} | {m['accuracy']:.2f} | {m['f1']:.2f} |")
    print(json.dumps({k: round(v, 4) for k, v in thresholds.items()}))


if __name__ == "__main__":
    main()
