"""The full benchmark table of issue 3: sentsim's fine-tuning beside the bundled model zero-shot and beside plain
sentence-transformers, on three tasks, over several seeds, with a report folder for every evaluation.

Run:  python eval/run.py                         # every task, 3 seeds (hours on 2 CPU cores)
      python eval/run.py --tasks sts --seeds 42  # one task, one seed
      python eval/run.py --quick                 # a short end-to-end version (minutes; the slow test runs it)

Tasks (data from ../shared/data, or --data DIR):
- sts:   STS-B. Train on train, choose on dev, report Spearman x100 (cosine) on test.
- pairs: MSRP. Train on train, choose the threshold on dev, report accuracy and F1 on test.
- faq:   BANKING77. Train on pairs of train questions (same intent or not), retrieve the nearest train question for
         every test question, report top-1 accuracy. `--loss faq=faq` trains sentsim as `sentsim faq train` does
         instead (every question with a paraphrase of its intent, MNRL that leaves same-intent questions out of
         the in-batch negatives, no mined hard negatives, lr 5e-5); `--loss faq=proxy` as `sentsim faq train
         --loss proxy` does (every question classified among one learned vector per intent, lr 5e-5; with
         `--epochs faq=2 --batch-size faq=32`). BENCHMARKS.md has their figures.
Models per task and seed: "sentsim" (`sentsim.train` with its defaults on the task's training data), "peer" (plain
sentence-transformers, CosineSimilarityLoss, the same epochs and batch size, lr 2e-5, warm-up 10%: the recipe of
its documentation), and once "zero-shot" (the bundled model). The model sentsim trains on STS-B is also scored on
the other two tasks, which it must not make worse than zero-shot. Test files are never used for any choice.

Writes OUT/rows.jsonl (each figure as it is measured; `--resume` runs only the models, tasks and seeds it lacks
with the same settings, so the hours of the full table can be split), OUT/results.json, OUT/results.md (mean and
standard deviation over seeds) and OUT/reports/... (one
`sentsim eval` report folder per model, task and seed); prints the results table at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import sentsim
from sentsim.harness import evaluate_faq, evaluate_pairs, evaluate_sts
from sentsim.losses import check_proxy_margin
from sentsim.reports import write_report

ROOT = Path(__file__).resolve().parents[1]
MSRP_COLUMNS = "#1 String,#2 String,Quality"
HEADLINE = {"sts": ["spearman_cosine"], "pairs": ["accuracy", "f1"], "faq": ["top1_accuracy"]}
TASKS = ("sts", "pairs", "faq")


# ---------------------------------------------------------------------------------------------- data
def banking_pairs(train_csv: Path, out: Path, seed: int, max_rows: int | None = None) -> tuple[Path, Path]:
    """Labelled pairs of BANKING77 train questions: each question with one other question, of the same intent
    (label 1) for every other row and of another intent (label 0) otherwise. The last tenth of the questions form
    the dev pairs (checkpoint choice only). Returns (train pairs, dev pairs)."""
    with train_csv.open(encoding="utf-8", newline="") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    rng = random.Random(seed)
    rng.shuffle(rows)
    if max_rows:
        rows = rows[:max_rows]
    cut = len(rows) - len(rows) // 10
    paths = []
    for name, part in (("banking_train_pairs.csv", rows[:cut]), ("banking_dev_pairs.csv", rows[cut:])):
        by_intent: dict[str, list[str]] = defaultdict(list)
        for text, intent in part:
            by_intent[intent].append(text)
        path = out / name
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["sentence1", "sentence2", "label"])
            for i, (text, intent) in enumerate(part):
                same = [t for t in by_intent[intent] if t != text]
                if i % 2 == 0 and same:
                    writer.writerow([text, rng.choice(same), 1])
                else:
                    other = rng.choice(part)
                    while other[1] == intent:
                        other = rng.choice(part)
                    writer.writerow([text, other[0], 0])
        paths.append(path)
    return paths[0], paths[1]


def faq_slice(data: Path, tmp: Path, every: int, queries: int) -> tuple[Path, Path]:
    """A smaller FAQ (every n-th train question) and the first test queries, for --quick."""
    for name, keep in (("train.csv", lambda i: i % every == 0), ("test.csv", lambda i: i < queries)):
        with (data / "banking77" / name).open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        with (tmp / f"banking_{name}").open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([rows[0]] + [r for i, r in enumerate(rows[1:]) if keep(i)])
    return tmp / "banking_train.csv", tmp / "banking_test.csv"


# ---------------------------------------------------------------------------------------------- training
def proxy_margin_arg(text: str) -> float:
    """argparse type: the proxy loss's margin, checked by the library's ``check_proxy_margin``, so a bad value is a
    usage error before any slow work (eval/faq_dev.py and eval/bench_faq.py use it too)."""
    try:
        return check_proxy_margin(float(text))
    except ValueError as e:  # float's, or the library's ConfigError
        raise argparse.ArgumentTypeError(str(e) if isinstance(e, sentsim.ConfigError) else f"not a number: {text!r}")


def train_sentsim(task: str, spec: dict, out: Path, seed: int, epochs: float, batch: int) -> tuple[Path, float]:
    if task == "faq" and spec.get("sentsim_loss") in ("faq", "proxy"):
        from sentsim.faq_train import train_faq

        r = train_faq(
            spec["faq"], out, faq_columns="text,category", hard_negatives=False, epochs=epochs, batch_size=batch,
            learning_rate=spec["sentsim_lr"], seed=seed, overwrite=True, show_progress=False,
            loss="proxy" if spec["sentsim_loss"] == "proxy" else "mnrl", proxy_margin=spec.get("proxy_margin", 0.0),
        )  # fmt: skip
        return out, r.wall_time_s
    result = sentsim.train(
        train=spec["train"],
        dev=spec["dev"],
        columns=spec.get("columns"),
        score_range=spec.get("score_range"),
        loss=spec.get("sentsim_loss", "auto"),
        output_dir=out,
        epochs=epochs,
        batch_size=batch,
        seed=seed,
        max_train_rows=spec.get("max_rows"),
        overwrite=True,
        show_progress=False,
    )
    return out, result.wall_time_s


def train_peer(task: str, spec: dict, out: Path, seed: int, epochs: float, batch: int) -> tuple[Path, float]:
    """Plain sentence-transformers, as its documentation fine-tunes on labelled pairs: CosineSimilarityLoss."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.sentence_transformer import losses

    from sentsim.data import read_pairs
    from sentsim.loading import bundled_model_path

    start = time.perf_counter()
    pairs = read_pairs(spec["train"], spec.get("columns"), spec.get("score_range"), max_rows=spec.get("max_rows"))
    data = Dataset.from_dict({"sentence1": pairs.sentence1, "sentence2": pairs.sentence2, "score": pairs.labels})
    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    args = Args(
        output_dir=str(out) + ".checkpoints",
        num_train_epochs=epochs,
        per_device_train_batch_size=batch,
        learning_rate=2e-5,
        warmup_steps=0.1,
        seed=seed,
        save_strategy="no",
        dataloader_pin_memory=False,
        report_to="none",
        disable_tqdm=True,
    )
    SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=losses.CosineSimilarityLoss(model)
    ).train()
    wall = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    model.save(str(out))
    return out, wall


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(task: str, model, name: str, specs: dict, report: Path) -> dict[str, float]:
    spec = specs[task]
    if task == "sts":
        result = evaluate_sts(model, spec["test"], score_range=(0, 5), max_rows=spec.get("test_rows"), model_name=name)
    elif task == "pairs":
        result = evaluate_pairs(
            model, spec["test"], dev=spec["dev"], columns=MSRP_COLUMNS, max_rows=spec.get("test_rows"), model_name=name
        )
    else:
        result = evaluate_faq(
            model, spec["faq"], spec["queries"], faq_columns="text,category", columns="text,category",
            answer_k=spec.get("answer_k", 1), max_rows=spec.get("test_rows"), model_name=name, show_progress=False,
        )  # fmt: skip
    write_report(result, report, overwrite=True, max_errors=200)
    return {k: result.metrics[k] for k in HEADLINE[task]}


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of every (model, trained on, task, figure)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    walls: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["trained_on"], r["task"], r["figure"])].append(r["value"])
        if r.get("train_wall_s") is not None:
            walls[(r["model"], r["trained_on"], r["task"], r["figure"])].append(r["train_wall_s"])
    out = []
    for key, values in groups.items():
        model, trained_on, task, figure = key
        out.append(
            {
                "model": model,
                "trained_on": trained_on,
                "task": task,
                "figure": figure,
                "mean": round(statistics.fmean(values), 2),
                "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
                "n": len(values),
                "train_wall_s": round(statistics.fmean(walls[key])) if walls.get(key) else None,
            }
        )
    return out


def table(summary: list[dict]) -> str:
    lines = [
        "| task | figure | model | trained on | mean | std | seeds | train wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {"zero-shot": 0, "peer": 1, "sentsim": 2}
    for s in sorted(summary, key=lambda s: (TASKS.index(s["task"]), s["figure"], order[s["model"]], s["trained_on"])):
        cells = [s["task"], s["figure"], s["model"], s["trained_on"], f"{s['mean']:.2f}", f"{s['std']:.2f}", s["n"]]
        cells.append("" if s["train_wall_s"] is None else s["train_wall_s"])
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: sts,pairs,faq")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--models", default="zero-shot,peer,sentsim")
    parser.add_argument("--epochs", default="sts=4,pairs=4,faq=1", help="per task, e.g. sts=4,pairs=4,faq=1")
    parser.add_argument(
        "--batch-size", default="16", help="one number, or per task, e.g. sts=16,pairs=16,faq=64 (sentsim and peer)"
    )
    parser.add_argument(
        "--loss",
        default="",
        help="sentsim loss per task, e.g. pairs=cosine (default auto; faq=mnrl on the peer's pairs, faq=faq: "
        "the FAQ trainer, or faq=proxy: the FAQ trainer with one learned vector per intent; both at lr 5e-5)",
    )
    parser.add_argument(
        "--proxy-margin", type=proxy_margin_arg, default=0.0,
        help="with --loss faq=proxy: its additive cosine margin (sentsim faq train --proxy-margin; default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--answer-k", type=int, default=1,
        help="faq, every model: score each answer by the mean of its K best questions (default 1: its best question)",
    )  # fmt: skip
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "run"))
    parser.add_argument("--quick", action="store_true", help="short version: few rows, 1 seed, 1 epoch")
    parser.add_argument(
        "--resume", action="store_true", help="keep OUT/rows.jsonl and run only what it lacks (a long run in parts)"
    )
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    epochs = {k: float(v) for k, v in (item.split("=") for item in args.epochs.split(","))}
    batch = (
        {t: int(args.batch_size) for t in TASKS}
        if args.batch_size.isdigit()
        else {**{t: 16 for t in TASKS}, **{k: int(v) for k, v in (i.split("=") for i in args.batch_size.split(","))}}
    )
    data, out = Path(args.data), Path(args.out)
    if not data.is_dir():
        print(f"run.py: error: {data}: no such data folder (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    if args.answer_k < 1:
        parser.error(f"--answer-k must be >= 1, not {args.answer_k}")
    if args.proxy_margin and "faq=proxy" not in args.loss.split(","):
        parser.error("--proxy-margin is a setting of --loss faq=proxy")
    if args.quick:
        seeds, epochs = seeds[:1], {t: 1.0 for t in TASKS}
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sentsim-run-"))
    started = time.perf_counter()
    try:
        train_rows = 256 if args.quick else None
        test_rows = 200 if args.quick else None
        faq_file, query_file = (
            faq_slice(data, tmp, 10, 200) if args.quick else (data / "banking77/train.csv", data / "banking77/test.csv")
        )
        specs = {
            "sts": {
                "train": data / "stsb/train.csv", "dev": data / "stsb/dev.csv", "test": data / "stsb/test.csv",
                "score_range": (0, 5), "max_rows": train_rows, "test_rows": test_rows,
            },
            "pairs": {
                "train": data / "msrp/train.tsv", "dev": data / "msrp/dev.tsv", "test": data / "msrp/test.tsv",
                "columns": MSRP_COLUMNS, "max_rows": train_rows, "test_rows": test_rows,
            },
            "faq": {
                "faq": faq_file, "queries": query_file, "sentsim_loss": "mnrl", "sentsim_lr": 5e-5,
                "test_rows": test_rows, "answer_k": args.answer_k,
            },
        }  # fmt: skip
        for item in filter(None, args.loss.split(",")):
            task, _, loss = item.partition("=")
            specs[task]["sentsim_loss"] = loss
        if args.proxy_margin:
            specs["faq"]["proxy_margin"] = args.proxy_margin
        log = out / "rows.jsonl"  # every figure as it is measured, so --resume can go on from a stopped run
        resuming = args.resume and log.exists()  # --resume on a fresh folder starts the run
        done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if resuming else []
        if not resuming:
            log.write_text("")

        def scoring(eval_task: str) -> str:  # how a task's figures are read off the model
            return f",answer_k={args.answer_k}" if eval_task == "faq" and args.answer_k != 1 else ""

        def zero_setting(eval_task: str) -> str:
            return ("quick" if args.quick else "-") + scoring(eval_task)

        def setting(task: str, eval_task: str) -> str:
            loss = specs[task].get("sentsim_loss", "auto")
            lr = f",lr={specs[task]['sentsim_lr']}" if loss in ("faq", "proxy") else ""
            margin = f",margin={specs[task]['proxy_margin']}" if specs[task].get("proxy_margin") else ""
            quick = ",quick" if args.quick else ""
            return f"epochs={epochs[task]},batch={batch[task]},loss={loss}{lr}{margin}{quick}{scoring(eval_task)}"

        def current(r: dict) -> bool:  # a resumed row that belongs to this run's settings, models, tasks and seeds
            if r["model"] == "zero-shot":
                return r["task"] in tasks and r.get("setting") == zero_setting(r["task"])
            return (
                r["model"] in models and r["trained_on"] in tasks and r["task"] in tasks and r["seed"] in seeds
                and r.get("setting") == setting(r["trained_on"], r["task"])
            )  # fmt: skip

        done = [r for r in done if current(r)]
        rows: list[dict] = list(done)

        def measured(model: str, trained_on: str, seed: int, eval_tasks: list[str]) -> bool:
            key = (model, trained_on, seed)
            return all(
                any((r["model"], r["trained_on"], r["seed"], r["task"]) == (*key, t) for r in done) for t in eval_tasks
            )  # `done` holds only rows of this run's settings

        def record(model, trained_on, task, seed, figures, wall=None, what="-"):
            for figure, value in figures.items():
                row = {"model": model, "trained_on": trained_on, "task": task, "seed": seed, "figure": figure}
                rows.append({**row, "value": value, "train_wall_s": wall, "setting": what})
                print(json.dumps(rows[-1]), flush=True)
                with log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(rows[-1]) + "\n")

        if "zero-shot" in models:
            bundled = sentsim.load(device="cpu", backend="torch")  # the table is fp32 throughout
            for task in tasks:
                if any((r["model"], r["task"]) == ("zero-shot", task) for r in done):  # `done`: this run's settings
                    continue
                record(
                    "zero-shot",
                    "-",
                    task,
                    None,
                    evaluate(task, bundled, "zero-shot", specs, out / "reports" / f"zero-shot-{task}"),
                    what=zero_setting(task),
                )
        for seed in seeds:
            for task in tasks:
                if task == "faq":
                    pair_train, pair_dev = banking_pairs(
                        data / "banking77/train.csv", tmp, seed, train_rows and 4 * train_rows
                    )
                    specs["faq"].update(train=pair_train, dev=pair_dev)
                for who, trainer in (("peer", train_peer), ("sentsim", train_sentsim)):
                    others = [t for t in tasks if t == task or (who == "sentsim" and task == "sts")]
                    if who not in models or measured(who, task, seed, others):
                        continue
                    folder, wall = trainer(
                        task, specs[task], tmp / f"{who}-{task}-{seed}", seed, epochs[task], batch[task]
                    )
                    model = sentsim.load(folder, device="cpu", backend="torch")
                    name = f"{who} (trained on {task}, seed {seed})"
                    for eval_task in others:
                        report = out / "reports" / f"{who}-{task}-seed{seed}-on-{eval_task}"
                        figures = evaluate(eval_task, model, name, specs, report)
                        record(who, task, eval_task, seed, figures, wall, setting(task, eval_task))
                    shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarise(rows)
    meta = {
        "date": str(date.today()),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "command": "python eval/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": seeds,
        "epochs": epochs,
        "batch_size": batch,
        "answer_k": args.answer_k,
        "quick": args.quick,
        "wall_s": round(time.perf_counter() - started),
    }
    (out / "results.json").write_text(json.dumps({**meta, "summary": summary, "rows": rows}, indent=2, default=str))
    text = table(summary)
    (out / "results.md").write_text(f"{meta['command']}, {meta['date']}, {meta['machine']}\n\n{text}\n")
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
