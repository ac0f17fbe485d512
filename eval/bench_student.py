"""The distilled LSTM student (issue 6): distill the bundled model into the LSTM, fine-tune it on STS-B, report.

Run:  python eval/bench_student.py [--data ../shared/data] [--out eval/results/student]
      then: python eval/bench_speed.py --lstm eval/results/student/tuned   (speed against the peer)

Steps:
1. Unlabelled sentences: the train and dev splits of STS-B and MSRP and the BANKING77 train questions (no test
   split is read for training; duplicates dropped).
2. `sentsim.distill`: the bundled model embeds them; a fresh BiLSTM (192 per direction, so 384 dimensions) learns
   to reproduce those embeddings (cosine distance, 3 epochs, batch 64, lr 2e-3).
3. `sentsim.train --encoder lstm --base-model STUDENT`: STS-B train, cosine loss, lr 2e-4, 2 epochs, batch 32, the
   best dev checkpoint. These settings were chosen on STS-B dev (cosine 2e-4: 87.31, CoSENT 5e-4: 87.21, CoSENT
   2e-4: 86.45).
4. STS-B test Spearman x100 (cosine) of the teacher, the student after distillation and after fine-tuning; prints
   a table and writes metrics.json to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import date
from pathlib import Path

import sentsim
from sentsim.data import read_pairs
from sentsim.evaluation import spearman

ROOT = Path(__file__).resolve().parents[1]


def test_spearman(model: sentsim.SiameseModel, test) -> float:
    return round(100 * spearman(model.similarity(test.sentence1, test.sentence2, "cosine"), test.labels), 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "student"))
    parser.add_argument("--distill-epochs", type=float, default=3)
    parser.add_argument("--tune-epochs", type=float, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    if not (data / "stsb" / "test.csv").is_file():
        print(f"bench_student.py: error: {data}/stsb: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    stsb = data / "stsb"
    test = read_pairs(stsb / "test.csv", score_range=(0, 5))

    # 1-2. distill on unlabelled train and dev sentences
    files = [stsb / "train.csv", stsb / "dev.csv", data / "msrp" / "train.tsv", data / "msrp" / "dev.tsv"]
    files.append(data / "banking77" / "train.csv")
    distilled = sentsim.distill(
        files=files[2:],
        texts=[s for f in files[:2] for p in [read_pairs(f, score_range=(0, 5))] for s in p.sentence1 + p.sentence2],
        output_dir=out / "distilled",
        dev=stsb / "dev.csv",
        score_range=(0, 5),
        epochs=args.distill_epochs,
        seed=args.seed,
        overwrite=True,
    )
    # 3. fine-tune the student on STS-B
    tuned = sentsim.train(
        train=stsb / "train.csv",
        dev=stsb / "dev.csv",
        score_range=(0, 5),
        encoder="lstm",
        base_model=str(out / "distilled"),
        loss="cosine",
        learning_rate=2e-4,
        epochs=args.tune_epochs,
        batch_size=32,
        seed=args.seed,
        output_dir=out / "tuned",
        overwrite=True,
    )
    # 4. figures
    teacher = sentsim.load(backend="torch")
    rows = [
        ("bundled all-MiniLM-L6-v2 (the teacher), zero-shot", teacher, distilled.teacher_dev, None),
        (f"LSTM student, distilled ({distilled.sentences:,} sentences)", distilled.model, distilled.dev_metrics,
         distilled.wall_time_s),
        ("LSTM student, distilled, then fine-tuned on STS-B", tuned.model, tuned.dev_metrics, tuned.wall_time_s),
    ]  # fmt: skip
    record = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/bench_student.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sentences": distilled.sentences,
        "rows": [
            {
                "model": name,
                "test_spearman": test_spearman(m, test),
                "dev_spearman": (dev or {}).get("spearman"),
                "wall_s": None if wall is None else round(wall, 1),
            }
            for name, m, dev, wall in rows
        ],  # fmt: skip
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{record['command']}, {record['date']}, {record['machine']}\n")
    print("| model | STS-B test Spearman x100 | STS-B dev | wall s |\n| --- | --- | --- | --- |")
    for r in record["rows"]:
        print(f"| {r['model']} | {r['test_spearman']:.2f} | {r['dev_spearman']} | {r['wall_s'] or ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
