"""The ``sentsim`` command line: thin, it parses, calls the library and prints.

Known errors (bad input) print one line ``sentsim: error: ...`` and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sentsim.backends import BACKENDS
from sentsim.errors import ConfigError, DataError, OutputExistsError, SentsimError
from sentsim.losses import PAIR_FILE_LOSSES
from sentsim.similarity import METRICS

logger = logging.getLogger("sentsim")

MAX_ENCODE_LINES = 10_000_000
EVAL_TASKS = ("sts", "pairs", "faq")  # sentsim.harness.TASKS, without importing the harness for --help
ANSWER_K_HELP = (
    "score each answer by the mean of its K best questions (default 1, or the saved bot's); calibrate with the K "
    "you ask with"
)


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model folder or hub id (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument(
        "--backend",
        default=None,
        choices=BACKENDS,
        help="how to run the encoder (default: the model's saved one, else auto: on a CPU, openvino-int8 where the "
        "CPU has VNNI and int8 keeps embeddings within 0.99 cosine of fp32, else openvino in fp32; for an LSTM, "
        "torch-bf16 where the CPU has native bf16, else torch; torch on a GPU); "
        "ONNX and OpenVINO ones export once",
    )


def _load(args: argparse.Namespace):
    import sentsim

    return sentsim.load(args.model, backend=getattr(args, "backend", None))


def _add_pair_format(p: argparse.ArgumentParser, dev_columns: bool = True) -> None:
    """How pair files are read: the options train, eval and average share."""
    p.add_argument(
        "--columns", default=None, help="columns, names or 0-based: sentence1,sentence2[,score] (faq: query,answer)"
    )
    if dev_columns:
        p.add_argument("--dev-columns", default=None, help="columns of the dev file, when they differ")
    p.add_argument("--score-range", default=None, help="declared score range, scaled to 0..1, e.g. 0,5 for STS-B")
    p.add_argument("--same-cutoff", type=float, default=0.7, help="graded score (0..1) counted as same meaning")


def _parser() -> argparse.ArgumentParser:
    from sentsim import __version__

    parser = argparse.ArgumentParser(prog="sentsim", description="Siamese sentence similarity.")
    parser.add_argument("--version", action="version", version=f"sentsim {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("score", help="score how alike two sentences are", description="Score one sentence pair.")
    p.add_argument("sentence1")
    p.add_argument("sentence2")
    _add_model(p)
    p.add_argument("--metric", choices=METRICS, default=None, help="similarity metric (default: the model's)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("encode", help="embed a file of sentences", description="Embed one sentence per line.")
    p.add_argument("file", help="UTF-8 text file, one sentence per line")
    p.add_argument("--out", required=True, help="output .npy file (float32, rows L2-normalised)")
    _add_model(p)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    p = sub.add_parser("train", help="fine-tune on sentence pairs", description="Fine-tune a Siamese model.")
    p.add_argument("--train", required=True, help="training pairs: CSV, TSV, JSONL or Parquet")
    p.add_argument("--dev", default=None, help="dev pairs: evaluation during training and the threshold")
    p.add_argument("--output-dir", required=True, help="where the model goes")
    _add_pair_format(p)
    p.add_argument(
        "--loss",
        choices=PAIR_FILE_LOSSES,
        default="auto",
        help="(loss proxy needs answers: sentsim faq train --loss proxy)",
    )
    p.add_argument("--encoder", choices=("transformer", "lstm"), default="transformer")
    p.add_argument("--base-model", default=None, help="model to start from (default: the bundled one)")
    p.add_argument("--epochs", type=float, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-5 transformer, 1e-3 lstm)")
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--eval-steps", type=int, default=None, help="evaluate and checkpoint every N steps")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE")
    p.add_argument("--threshold-objective", choices=("accuracy", "f1"), default="accuracy")
    p.add_argument("--max-train-rows", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --output-dir")
    p.add_argument("--keep-checkpoints", action="store_true")
    p.add_argument(
        "--average-best", type=int, default=None, metavar="K",
        help="average the K best checkpoints by dev figure; kept when it beats the best one on dev",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "distill",
        help="distill a transformer into a fast LSTM",
        description="Train a fresh BiLSTM to reproduce a teacher's embeddings on unlabelled sentences (no labels "
        "needed), then save it. Fine-tune it afterwards with: sentsim train --encoder lstm --base-model DIR.",
    )
    p.add_argument("files", nargs="+", help=".txt (one sentence per line) or CSV, TSV, JSONL or Parquet tables")
    p.add_argument("--output-dir", required=True, help="where the student goes")
    p.add_argument("--columns", default=None, help="the text columns of the tables (default: known names)")
    p.add_argument("--teacher", default=None, help="the model to reproduce (default: the bundled one)")
    p.add_argument("--dev", default=None, help="graded pairs to report teacher and student on (e.g. STS-B dev)")
    p.add_argument("--dev-columns", default=None, help="columns of --dev, as for train")
    p.add_argument("--score-range", default=None, help="declared range of the --dev scores, e.g. 0,5")
    p.add_argument("--hidden-dim", type=int, default=None, help="LSTM size per direction (default: teacher dim / 2)")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--distance", choices=("cosine", "mse", "l2"), default="cosine")
    p.add_argument("--max-sentences", type=int, default=None)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --output-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "eval",
        help="evaluate a model: sts, pairs or faq",
        description="Evaluate a model on a test set and write a report folder: metrics.json, report.md, a PNG plot "
        "and errors.csv (the failed items). Thresholds are chosen on --dev, never on the test data. Data: a file, a "
        "path under ../shared/data, or a datasets id ID[@CONFIG][:SPLIT]; by default the task's public test set.",
    )
    p.add_argument("--task", required=True, choices=EVAL_TASKS)
    _add_model(p)
    p.add_argument("--data", default=None, help="sts, pairs: test pairs (default: STS-B test, MSRP test)")
    p.add_argument("--dev", default=None, help="pairs: dev pairs; faq: dev queries; they choose the threshold")
    p.add_argument("--faq", default=None, help="faq: FAQ rows (question, answer) (default: BANKING77 train)")
    p.add_argument("--queries", default=None, help="faq: test queries (query, expected answer; empty: out of scope)")
    _add_pair_format(p)
    p.add_argument("--faq-columns", default=None, help="question,answer columns of --faq, e.g. text,category")
    p.add_argument("--metric", choices=METRICS, default=None, help="pairs, faq: similarity metric (default: model's)")
    p.add_argument("--threshold", default=None, help="pairs, faq: a fixed threshold, or 'model', instead of --dev")
    p.add_argument("--objective", choices=("accuracy", "f1"), default="accuracy", help="pairs: what --dev maximises")
    p.add_argument("--ks", default="1,5,10", help="faq: cut-offs of recall@k; MRR is cut at the largest")
    p.add_argument(
        "--answer-k", type=int, default=None,
        help="faq: score each answer by the mean of its K best questions (default 1: its best question)",
    )  # fmt: skip
    p.add_argument("--max-rows", type=int, default=None, help="evaluate only the first test rows")
    p.add_argument("--report", default=None, help="report folder (default: runs/eval-TASK-DATE-TIME)")
    p.add_argument("--overwrite", action="store_true", help="replace a report folder that holds files")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plot")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of the table")

    p = sub.add_parser(
        "average",
        help="average the weights of several models (model soup)",
        description="Average the weights of models fine-tuned from the same base (other seeds, checkpoints of one "
        "run) into one model, often better than each; with --dev its thresholds are chosen on dev pairs.",
    )
    p.add_argument("models", nargs="+", help="two or more model folders with the same encoder")
    p.add_argument("--output-dir", required=True, help="where the averaged model goes")
    p.add_argument("--weights", default=None, help="comma-separated weight per model (default: equal)")
    p.add_argument("--dev", default=None, help="dev pairs to choose the thresholds on")
    _add_pair_format(p, dev_columns=False)
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --output-dir")

    faq = sub.add_parser(
        "faq",
        help="the FAQ bot: ask, calibrate, train",
        description="Answer questions from an FAQ file (CSV, TSV, JSONL, JSON or YAML; default: sentsim's own help "
        "desk), saying 'I don't know' when no entry matches.",
    )
    faq_sub = faq.add_subparsers(dest="faq_command", required=True, metavar="SUBCOMMAND")
    for name, text in (("ask", "answer one question"), ("calibrate", "choose the threshold on labelled queries")):
        q = faq_sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        source = q.add_mutually_exclusive_group()
        source.add_argument("--faq", default=None, help="FAQ file (default: the FAQ that ships with sentsim)")
        source.add_argument("--bot", default=None, help="a bot folder saved by 'sentsim faq calibrate --save'")
        q.add_argument("--faq-columns", default=None, help="question,answer columns of a table FAQ")
        q.add_argument("--keep-last", action="store_true", help="a question given twice: keep the last answer")
        q.add_argument("--answer-k", type=int, default=None, metavar="K", help=ANSWER_K_HELP)
        _add_model(q)
        if name == "ask":
            q.add_argument("question")
            q.add_argument("--threshold", type=float, default=None, help="answer only at or above this score")
            q.add_argument("--alternatives", type=int, default=3, help="how many other answers to suggest")
        else:
            q.add_argument("--queries", required=True, help="labelled queries: query,expected (empty: out of scope)")
            q.add_argument("--columns", default=None, help="query,expected columns of --queries")
            q.add_argument(
                "--objective",
                choices=("balanced", "precision", "accuracy"),
                default="balanced",
                help="balanced: the mean of in-scope accuracy and out-of-scope recall; precision: the most right "
                "answers at --target-precision; accuracy: the most out-of-scope queries caught while in-scope "
                "accuracy stays at --target-accuracy",
            )
            q.add_argument("--target-precision", type=float, default=0.95, help="for --objective precision")
            q.add_argument("--target-accuracy", type=float, default=0.90, help="for --objective accuracy")
            q.add_argument(
                "--gap-weights",
                default=None,
                help="comma-separated gap weights to try (default 0,0.5,1,2; 0 keeps the best score alone)",
            )
            q.add_argument("--save", default=None, help="save the calibrated bot to this folder")
            q.add_argument("--overwrite", action="store_true", help="replace a bot already in --save")
        q.add_argument("--json", action="store_true", help="print JSON")
    q = faq_sub.add_parser(
        "train",
        help="fine-tune the encoder for one FAQ",
        description="Fine-tune on the FAQ itself: questions that share an answer are positives, the most alike "
        "question of another answer a hard negative (multiple-negatives ranking loss). Prints top-1 retrieval "
        "before and after, on --queries when given (never trained on).",
    )
    q.add_argument("--faq", required=True, help="FAQ file (CSV, TSV, JSONL, JSON or YAML)")
    q.add_argument("--faq-columns", default=None, help="question,answer columns of a table FAQ")
    q.add_argument("--output-dir", required=True, help="where the fine-tuned model goes")
    q.add_argument("--base-model", default=None, help="model to start from (default: the bundled one)")
    q.add_argument("--queries", default=None, help="labelled queries (query,expected) for the figures")
    q.add_argument("--columns", default=None, help="query,expected columns of --queries")
    q.add_argument("--no-hard-negatives", action="store_true", help="in-batch negatives only")
    q.add_argument(
        "--no-mask-same-answer",
        action="store_true",
        help="plain MNRL: count in-batch questions of the anchor's own answer as negatives too",
    )
    q.add_argument(
        "--loss",
        choices=("mnrl", "proxy"),
        default="mnrl",
        help="mnrl (default): paraphrase pairs; proxy: each question classified among one learned vector per answer "
        "(no pairs, no hard negatives; ahead of mnrl on BANKING77, see BENCHMARKS.md)",
    )
    q.add_argument(
        "--proxy-margin",
        type=float,
        default=0.0,
        help="loss proxy: count the cosine to a question's own answer this much less in training (CosFace's "
        "additive margin, in [0, 1); default 0)",
    )
    q.add_argument(
        "--feedback",
        default=None,
        help="the demo's feedback file (JSONL): queries voted a right match train as paraphrases of the question",
    )
    q.add_argument("--epochs", type=float, default=1)
    q.add_argument("--batch-size", type=int, default=32)
    q.add_argument("--lr", type=float, default=2e-5)
    q.add_argument("--seed", type=int, default=42)
    q.add_argument("--overwrite", action="store_true", help="replace a model already in --output-dir")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "serve",
        help="the FAQ bot and the model as an HTTP service",
        description="Serve POST /v1/ask, /v1/similarity, /v1/embed and GET /healthz (OpenAPI schema at /docs) on "
        "127.0.0.1 unless --host says otherwise. With --faq the file is watched and reloaded when it changes; a "
        "broken new file leaves the old FAQ serving. Needs the serve extra: pip install 'sentsim[serve]'.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--faq", default=None, help="FAQ file to serve and watch (default: sentsim's own FAQ)")
    source.add_argument("--bot", default=None, help="a bot folder saved by 'sentsim faq calibrate --save'")
    p.add_argument("--faq-columns", default=None, help="question,answer columns of a table FAQ")
    p.add_argument("--threshold", type=float, default=None, help="answer only at or above this score")
    p.add_argument("--answer-k", type=int, default=None, metavar="K", help=ANSWER_K_HELP)
    _add_model(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--ask-batch",
        type=int,
        default=32,
        help="most /v1/ask questions answered in one batch, from those that arrive together (default 32; 1: none)",
    )

    p = sub.add_parser(
        "demo",
        help="the Gradio web demo",
        description="Serve the Gradio demo (compare, ask the FAQ, batch, search) on 127.0.0.1. Needs the demo "
        "extra: pip install 'sentsim[demo]'.",
    )
    _add_model(p)
    p.add_argument("--faq", default=None, help="FAQ file for the Ask tab (default: sentsim's own FAQ)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--feedback", default=None, help="where thumbs up/down are appended (default runs/feedback.jsonl)")
    p.add_argument(
        "--mcp",
        action="store_true",
        help="also serve the endpoints as MCP tools (streamable HTTP at /gradio_api/mcp/); needs the mcp package",
    )

    p = sub.add_parser("info", help="describe a model", description="What a model is and how it was trained.")
    p.add_argument("model", nargs="?", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _cmd_score(args: argparse.Namespace) -> int:

    model = _load(args)
    metric = args.metric or model.metric
    threshold = model.config.threshold_for(metric)
    score = float(model.similarity(args.sentence1, args.sentence2, metric))
    same = None if threshold is None else score >= threshold
    if args.json:
        print(json.dumps({"score": score, "metric": metric, "threshold": threshold, "same": same}))
    elif same is None:
        print(f"{score:.4f}  ({metric}; this model has no decision threshold)")
    else:
        print(f"{score:.4f}  {'same meaning' if same else 'different'}  ({metric}, threshold {threshold:.4f})")
    return 0


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: bytes that are not UTF-8") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: file is empty")
    if len(lines) > MAX_ENCODE_LINES:
        raise DataError(f"{path}: {len(lines)} lines, more than the limit of {MAX_ENCODE_LINES}")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(f"{path}: line {i}: empty sentence")
    return lines


def _cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite to replace it")
    sentences = _read_lines(Path(args.file))
    model = _load(args)
    emb = model.encode(sentences, batch_size=args.batch_size, show_progress_bar=not args.quiet)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.npy")
    try:
        np.save(tmp, emb, allow_pickle=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %s: %d x %d float32", out, *emb.shape)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from sentsim.training import TrainConfig, train

    cfg = TrainConfig(
        train=args.train,
        dev=args.dev,
        output_dir=args.output_dir,
        columns=args.columns,
        dev_columns=args.dev_columns,
        score_range=args.score_range,
        loss=args.loss,
        encoder=args.encoder,
        base_model=args.base_model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        eval_steps=args.eval_steps,
        early_stopping_patience=args.early_stopping,
        same_cutoff=args.same_cutoff,
        threshold_objective=args.threshold_objective,
        max_train_rows=args.max_train_rows,
        resume=args.resume,
        overwrite=args.overwrite,
        keep_checkpoints=args.keep_checkpoints,
        average_best=args.average_best,
        show_progress=not (args.no_progress or args.quiet),
    )
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, the main process reports
        return 0
    print(f"saved {result.output_dir}")
    print(f"loss: {result.loss} ({result.loss_reason})")
    if result.dev_metrics is not None:
        print(f"dev before: {result.dev_before}")
        print(f"dev after:  {result.dev_metrics}")
    print(f"wall time: {result.wall_time_s:.1f} s")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from sentsim.distillation import DistillConfig, distill

    cfg = DistillConfig(
        output_dir=args.output_dir,
        files=args.files,
        columns=args.columns,
        teacher=args.teacher,
        dev=args.dev,
        dev_columns=args.dev_columns,
        score_range=args.score_range,
        hidden_dim=args.hidden_dim,
        num_layers=args.layers,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        distance=args.distance,
        max_sentences=args.max_sentences,
        seed=args.seed,
        overwrite=args.overwrite,
        show_progress=not (args.no_progress or args.quiet),
    )
    result = distill(cfg)
    print(f"saved {result.output_dir} (distilled on {result.sentences:,} sentences)")
    if result.dev_metrics is not None:
        print(f"dev, teacher:        {result.teacher_dev}")
        print(f"dev, student before: {result.dev_before}")
        print(f"dev, student after:  {result.dev_metrics}")
    print(f"wall time: {result.wall_time_s:.1f} s")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:

    info = _load(args).info()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    training = info.get("training") or {}
    lines = [
        f"model:        {args.model or 'bundled'}",
        f"encoder:      {info['encoder']} ({info['dimension']} dimensions, up to {info['max_seq_length']} tokens)",
        f"base model:   {info.get('base_model')}",
        f"metric:       {info['metric']}",
        f"thresholds:   {json.dumps(info['thresholds']) if info['thresholds'] else 'none chosen'}",
        f"  chosen on:  {info.get('threshold_source') or '-'}",
    ]
    if training:
        lines += [
            f"trained on:   {training.get('train_file')} ({training.get('train_pairs')} pairs, "
            f"{training.get('train_label_kind')} labels)",
            f"loss:         {training.get('loss')}: {training.get('loss_reason')}",
            f"dev file:     {training.get('dev_file')}",
            f"dev before:   {training.get('dev_before')}",
            f"dev after:    {info.get('dev_metrics')}",
            f"wall time:    {training.get('wall_time_s')} s, {training.get('global_steps')} steps",
        ]
    else:
        lines.append("training:     not trained by sentsim")
    print("\n".join(lines))
    return 0


def _floats(text: str, flag: str) -> list[float]:
    """A comma-separated list of numbers from the command line; a ConfigError (exit 2) naming ``flag`` if not."""
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not a comma-separated list of numbers") from None


def _cmd_average(args: argparse.Namespace) -> int:
    from sentsim.averaging import average_models

    weights = None if args.weights is None else _floats(args.weights, "--weights")
    model = average_models(
        args.models,
        args.output_dir,
        weights=weights,
        dev=args.dev,
        columns=args.columns,
        score_range=args.score_range,
        same_cutoff=args.same_cutoff,
        overwrite=args.overwrite,
    )
    print(f"saved {Path(args.output_dir).expanduser().resolve()}: the mean of {len(args.models)} models")
    if model.config.dev_metrics is not None:
        print(f"dev: {model.config.dev_metrics}")
    return 0


def _faq_bot(args: argparse.Namespace, **kwargs):
    from sentsim.faq import FAQBot

    model = _load(args)
    if args.answer_k is not None:
        kwargs["answer_k"] = args.answer_k
    if args.bot is not None:
        return FAQBot.load(args.bot, model=model, **kwargs)
    on_duplicate = "last" if args.keep_last else "error"
    return FAQBot.from_file(args.faq, model=model, columns=args.faq_columns, on_duplicate=on_duplicate, **kwargs)


def _cmd_faq_train(args: argparse.Namespace) -> int:
    from sentsim.faq_train import train_faq

    r = train_faq(
        args.faq,
        args.output_dir,
        base_model=args.base_model,
        queries=args.queries,
        query_columns=args.columns,
        faq_columns=args.faq_columns,
        hard_negatives=not args.no_hard_negatives,
        feedback=args.feedback,
        mask_same_answer=not args.no_mask_same_answer,
        loss=args.loss,
        proxy_margin=args.proxy_margin,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        overwrite=args.overwrite,
        show_progress=not (args.no_progress or args.quiet),
    )
    print(f"saved {r.output_dir} ({r.pairs} training pairs{', hard negatives' if r.hard_negatives else ''})")
    if r.feedback is not None:
        f = r.feedback
        print(
            f"feedback: {f['positive']} queries voted a right match trained on; {f['negative']} wrong matches not "
            f"used (they name no right answer); {f['unknown']} for questions no longer in the FAQ, "
            f"{f['duplicate']} duplicates"
        )
    print(f"top-1 before: {r.before['top1_accuracy']}  after: {r.after['top1_accuracy']}  (on {r.after['on']})")
    print(f"wall time: {r.wall_time_s:.1f} s")
    return 0


def _cmd_faq(args: argparse.Namespace) -> int:
    if args.faq_command == "train":
        return _cmd_faq_train(args)
    if args.faq_command == "ask":
        bot = _faq_bot(args)
        if args.threshold is not None:
            bot.threshold = args.threshold
        ans = bot.ask(args.question, alternatives=args.alternatives)
        if args.json:
            print(json.dumps(ans.to_dict(), ensure_ascii=False))
        elif ans.answer is not None:
            print(ans.answer)
            print(f"  (matched {ans.question!r}, score {ans.score:.3f})")
        else:
            why = "not sure enough" if ans.reason == "below_threshold" else "two answers are too close to call"
            print(f"I don't know ({why}: best score {ans.score:.3f}, threshold {bot.threshold:.3f}).")
            suggestions = [ans.question] + [a.question for a in ans.alternatives[: max(0, args.alternatives - 1)]]
            print("Did you mean: " + " | ".join(suggestions))
        return 0
    from sentsim.retrieval import read_qa

    queries = read_qa(args.queries, args.columns, allow_empty_answer=True)
    bot = _faq_bot(args)
    extra = {} if args.gap_weights is None else {"gap_weights": _floats(args.gap_weights, "--gap-weights")}
    bot.calibrate(
        queries.questions, queries.answers, args.objective, args.target_precision,
        target_accuracy=args.target_accuracy, **extra,
    )  # fmt: skip
    if args.save is not None:
        bot.save(args.save, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(bot.calibration))
    else:
        c = bot.calibration
        print(
            f"threshold {c['threshold']:.4f}, margin {c['margin']}, gap weight {c['gap_weight']} "
            f"({c['objective']}, {c['queries']} queries)"
        )
        if c["in_scope_accuracy"] is not None:
            print(f"in-scope accuracy:    {c['in_scope_accuracy']:.2f}% of {c['in_scope']}")
        if c["out_of_scope_recall"] is not None:
            print(f"out-of-scope recall:  {c['out_of_scope_recall']:.2f}% of {c['out_of_scope']}")
        print(f"precision of answers: {c['precision']:.2f}% ({c['answered']} answered)")
        if args.save is not None:
            print(f"saved {Path(args.save).expanduser().resolve()}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from sentsim.faq import FAQBot
    from sentsim.serve import build_app, run

    model = _load(args)
    chosen = (("columns", args.faq_columns), ("threshold", args.threshold), ("answer_k", args.answer_k))
    faq_kwargs = {k: v for k, v in chosen if v is not None}
    bot_kwargs = {"answer_k": args.answer_k} if args.answer_k is not None else {}
    bot = FAQBot.load(args.bot, model=model, **bot_kwargs) if args.bot is not None else None
    if bot is not None and args.threshold is not None:
        bot.threshold = args.threshold
    app = build_app(bot, model, faq_path=args.faq, faq_kwargs=faq_kwargs or None, ask_batch=args.ask_batch)
    run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from sentsim.demo import main as demo_main
    except ImportError as exc:
        raise ConfigError(f"sentsim demo needs Gradio ({exc.name} is missing): pip install 'sentsim[demo]'") from None
    argv = ["--port", str(args.port)]
    pairs = (("--model", args.model), ("--faq", args.faq), ("--feedback", args.feedback), ("--backend", args.backend))
    for flag, value in pairs:
        if value is not None:
            argv += [flag, value]
    return demo_main(argv + (["--mcp"] if args.mcp else []))


_EVAL_OPTIONS = {  # flag -> the tasks it applies to
    "data": ("sts", "pairs"),
    "dev": ("pairs", "faq"),
    "faq": ("faq",),
    "queries": ("faq",),
    "faq_columns": ("faq",),
    "dev_columns": ("pairs", "faq"),
    "score_range": ("sts", "pairs"),
    "metric": ("pairs", "faq"),
    "threshold": ("pairs", "faq"),
    "answer_k": ("faq",),
}


def _cmd_eval(args: argparse.Namespace) -> int:
    import time

    from sentsim.harness import evaluate
    from sentsim.loading import check_output_folder
    from sentsim.reports import markdown_report, write_report

    for name, tasks in _EVAL_OPTIONS.items():
        if getattr(args, name) is not None and args.task not in tasks:
            raise ConfigError(f"--{name.replace('_', '-')} is for --task {' or '.join(tasks)}, not {args.task}")
    common = {"max_rows": args.max_rows, "columns": args.columns}
    if args.task == "sts":
        kwargs = dict(data=args.data, score_range=args.score_range)
    elif args.task == "pairs":
        kwargs = dict(test=args.data, dev=args.dev, dev_columns=args.dev_columns, score_range=args.score_range,
                      threshold=args.threshold, metric=args.metric, objective=args.objective,
                      same_cutoff=args.same_cutoff)  # fmt: skip
    else:
        kwargs = dict(faq=args.faq, queries=args.queries, dev=args.dev, threshold=args.threshold, ks=args.ks,
                      answer_k=1 if args.answer_k is None else args.answer_k,
                      faq_columns=args.faq_columns, dev_columns=args.dev_columns,
                      metric=args.metric, show_progress=False if args.quiet else None)  # fmt: skip
    folder = Path(args.report or f"runs/eval-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_output_folder(folder, args.overwrite)  # before the evaluation, not after it
    model = _load(args) if getattr(args, "backend", None) is not None else args.model
    result = evaluate(args.task, model, **common, **kwargs)
    folder = write_report(result, folder, overwrite=args.overwrite, plots=not args.no_plots)
    if args.json:
        print((folder / "metrics.json").read_text(encoding="utf-8"), end="")
    else:
        print(markdown_report(result, worst=0).rstrip())
        print(f"\nreport: {folder} (errors.csv: {len(result.errors)} items, worst first)")
    return 0


COMMANDS = {
    "score": _cmd_score,
    "encode": _cmd_encode,
    "train": _cmd_train,
    "distill": _cmd_distill,
    "eval": _cmd_eval,
    "average": _cmd_average,
    "faq": _cmd_faq,
    "serve": _cmd_serve,
    "demo": _cmd_demo,
    "info": _cmd_info,
}


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sentsim: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    args = _parser().parse_args(argv)
    _setup_logging(args.quiet)
    try:
        return COMMANDS[args.command](args)
    except SentsimError as exc:
        print(f"sentsim: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sentsim: interrupted", file=sys.stderr)
        return 130
    finally:
        # main() may run inside another program (tests, notebooks): leave no handler on a stream it may close.
        logger.handlers.clear()
        logger.propagate = True


if __name__ == "__main__":
    sys.exit(main())
