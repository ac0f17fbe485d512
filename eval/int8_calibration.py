"""What the int8 recipe does (issue 6): openvino-int8 calibrated with and without sentsim's short texts, and with
products left in fp32 or not, each sentence's embedding against the fp32 model's, on a selection pool (BANKING77
train, MSRP train and STS-B dev sentences: where choices are made) and on STS-B test (only reported).

Run:  python eval/int8_calibration.py [--data ../shared/data] [--out eval/results/int8_calibration.json]

Steps:
1. The bundled model is copied to a scratch folder, so its int8 exports land there and not in the cache.
2. For each recipe (the shipped FAQ's texts alone, then with `sentsim.backends.SHORT_TEXTS` as the default has
   them; every product in int8, or some left in fp32 as `sentsim.backends.KEEP_FP32` names them),
   `export_backend(..., "openvino-int8", calibration=..., keep_fp32=...)` quantizes the model again.
3. The distinct sentences of each split are encoded by the torch model (the reference) and by the int8 model;
   per sentence, the cosine between the two. The default recipe is run twice, with OpenVINO's float operations in
   f32 and in bf16 (what sentsim picks on a CPU with native bf16; skipped on others).
4. Prints mean and worst cosine and the count below 0.99 (issue 6's bar), then the STS-B test sentences that fall
   furthest, and writes the figures as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
from bench_faq import read_banking
from bench_speed import read_sts  # eval/ is the script's folder, so on its path

import sentsim
from sentsim.backends import (
    KEEP_FP32,
    SHORT_TEXTS,
    OpenVinoEncoder,
    calibration_texts,
    export_backend,
    openvino_precision,
)
from sentsim.loading import bundled_model_path

ROOT = Path(__file__).resolve().parents[1]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def msrp_sentences(path: Path) -> list[str]:
    """The distinct sentences of an MSRP file (both columns), read as the harness reads it: tabs, no quoting."""
    import csv

    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r and r[0] in ("0", "1")]
    return sorted({text for r in rows for text in (r[3], r[4])})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "int8_calibration.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    for need in (data / "stsb" / "test.csv", data / "banking77" / "train.csv", data / "msrp" / "train.tsv"):
        if not need.is_file():
            print(f"int8_calibration.py: error: {need}: not found (see ../shared/data/README.md)", file=sys.stderr)
            return 2

    # 1. a scratch copy of the bundled model
    work = Path(tempfile.mkdtemp(prefix="sentsim-int8-"))
    try:
        folder = work / "model"
        shutil.copytree(bundled_model_path(), folder)
        reference = sentsim.load(folder, device="cpu", backend="torch")  # fp32, the reference
        splits = {
            "BANKING77 train": sorted({text for text, _ in read_banking(data, "train")}),
            "MSRP train": msrp_sentences(data / "msrp" / "train.tsv"),
            "STS-B dev": read_sts(data, "dev")[0],
            "STS-B test": read_sts(data, "test")[0],
        }
        truth = {name: reference.encode(texts, batch_size=64) for name, texts in splits.items()}
        full, short = calibration_texts(), set(SHORT_TEXTS)
        faq_only = [t for t in full if t not in short]
        attention_output, scores, first_ffn_output = KEEP_FP32
        recipes = {  # label: (calibration texts, products left in fp32)
            "shipped FAQ only; all int8": (faq_only, ()),
            "FAQ + short texts; all int8": (full, ()),
            "FAQ + short texts; fp32 attention output": (full, (attention_output,)),
            "FAQ + short texts; fp32 attention scores": (full, (scores,)),
            "FAQ + short texts; fp32 attention output and scores": (full, (attention_output, scores)),
            "FAQ + short texts; fp32 attention output, scores and first FFN output (default)": (full, KEEP_FP32),
        }
        default = next(label for label in recipes if label.endswith("(default)"))
        figures: dict[str, dict] = {}
        worst: list[tuple[float, str]] = []
        for label, (texts, keep) in recipes.items():
            # 2. quantize again with this recipe
            path = export_backend(reference.encoder, "openvino-int8", folder, calibration=texts, keep_fp32=keep)
            runs = {label: "f32"}
            if label == default and openvino_precision(path) == "bf16":  # this CPU: bf16
                runs[label.replace("(default)", "(default), bf16")] = "bf16"
            for name_run, precision in runs.items():
                fast = OpenVinoEncoder(reference.encoder, path, precision=precision)
                figures[name_run] = {"calibration_texts": len(texts), "fp32": list(keep), "precision": precision}
                for name, split in splits.items():
                    # 3. cosine to fp32, sentence by sentence
                    got = fast.encode(split, batch_size=64)
                    cos = (unit(got) * unit(truth[name])).sum(axis=1)
                    figures[name_run][name] = {
                        "sentences": len(split),
                        "mean": round(float(cos.mean()), 4),
                        "worst": round(float(cos.min()), 4),
                        "below_0.99": int((cos < 0.99).sum()),
                        "below_0.995": int((cos < 0.995).sum()),
                    }
                    if name == "STS-B test" and name_run == default:
                        worst = sorted(zip(cos.tolist(), split))[:5]
                pool = [figures[name_run][name] for name in splits if name != "STS-B test"]
                figures[name_run]["pool"] = {
                    "sentences": sum(p["sentences"] for p in pool),
                    "worst": min(p["worst"] for p in pool),
                    "below_0.99": sum(p["below_0.99"] for p in pool),
                    "below_0.995": sum(p["below_0.995"] for p in pool),
                }
                del fast
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # 4. report
    record = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/int8_calibration.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "figures": figures,
        "furthest_test_sentences": [{"cosine": round(c, 4), "text": t} for c, t in worst],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{record['command']}, {record['date']}\n")
    print("| recipe | texts | split | mean cosine | worst | below 0.99 | below 0.995 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, f in figures.items():
        for name in [*splits, "pool"]:
            r = f[name]
            mean = f"{r['mean']:.4f}" if "mean" in r else ""
            split = f"{name} ({r['sentences']:,})" if name != "pool" else f"selection pool ({r['sentences']:,})"
            print(f"| {label} | {f['calibration_texts']} | {split} | {mean} | {r['worst']:.4f} | "
                  f"{r['below_0.99']} | {r['below_0.995']} |")  # fmt: skip
    print("\nFurthest STS-B test sentences (the default recipe):")
    for c, t in worst:
        print(f"  {c:.4f}  {t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
