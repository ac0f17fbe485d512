"""sentsim's Gradio demo: compare two sentences, ask the FAQ bot, score a file of pairs, search sentences.

Run it (it binds to 127.0.0.1, with no share link and no analytics; needs ``pip install 'sentsim[demo]'``):

    sentsim demo [--model DIR] [--faq FILE] [--port 7860]
    .venv/bin/python demo/app.py [...]          # the same, from the project root

Every event is also an API endpoint, callable with ``gradio_client``: ``/compare``, ``/ask``, ``/batch`` and
``/search``. Their functions check their own inputs (text length, file size, rows, UTF-8), because the limits of the
page do not bind API callers; bad input is a one-line error, never a stack trace, and the app keeps serving.
Thumbs up/down on a chat reply append one JSON line to the feedback file (``runs/feedback.jsonl`` by default).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry, no update check

import argparse  # noqa: E402
import atexit  # noqa: E402
import csv  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import html  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import sentsim  # noqa: E402
from sentsim import similarity as sim  # noqa: E402
from sentsim.backends import BACKENDS  # noqa: E402
from sentsim.data import read_pairs  # noqa: E402
from sentsim.errors import ConfigError, DataError, SentsimError, check_text  # noqa: E402

logger = logging.getLogger("sentsim.demo")

__all__ = [
    "build_demo",
    "launch_demo",
    "mcp_available",
    "append_feedback",
    "vote_record",
    "chat_turn",
    "verdict_for",
    "main",
    "MAX_TEXT_CHARS",
    "MAX_FILE_BYTES",
    "MAX_BATCH_ROWS",
    "MAX_SEARCH_LINES",
]

MAX_TEXT_CHARS = 2_000  # one sentence, question or search query
MAX_FILE_BYTES = 2 * 1024 * 1024  # an uploaded file (batch CSV, search .txt), and the search text box
MAX_BATCH_ROWS = 5_000
MAX_SEARCH_LINES = 1_000
MAX_TOP_K = 50
UPLOAD_LIMIT = "4mb"  # Gradio's own upload guard at launch: looser than ours, so our one-line message is what shows
HEATMAP_MAX_TOKENS = 40
DEFAULT_FEEDBACK_PATH = Path("runs") / "feedback.jsonl"  # below the folder the demo is started from
PAIR_FORMATS = [".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet"]
_KEEP_OUTPUTS_S = 3600  # our scored CSVs are pruned after an hour (Gradio serves its own copy from its cache)

COMPARE_EXAMPLES = [
    ["A man is playing a guitar.", "Someone is playing a guitar.", "cosine"],
    ["A man is playing a guitar.", "The stock market fell sharply today.", "cosine"],
    ["I like this movie.", "I do not like this movie.", "cosine"],
    ["The dog bit the man.", "The man bit the dog.", "cosine"],
]
COMPARE_LABELS = ["paraphrase", "unrelated", "negation", "word-order swap"]
ASK_EXAMPLES = [
    "how do I install sentsim",
    "can I fine-tune on my own data?",
    "what does the threshold mean",
    "what is the capital of France",
]
SEARCH_EXAMPLE = "\n".join(
    [
        "A man is playing a guitar.",
        "The cat sleeps on the sofa.",
        "Stock markets fell sharply today.",
        "How do I reset my password?",
        "A woman is slicing an onion.",
        "The weather will be sunny tomorrow.",
    ]
)


# ------------------------------------------------------------------------------------------------ errors
def _one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _bad(message: str) -> gr.Error:
    """A one-line error for the page (a pop-up) and for API callers (``AppError`` in gradio_client)."""
    return gr.Error(html.escape(_one_line(message), quote=False), title="Check the input", print_exception=False)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn sentsim's own errors into one-line messages and anything unexpected into a short apology, logged with
    its traceback here, so no stack trace reaches the page and the app keeps serving. Keeps the signature and the
    docstring, which Gradio reads for the API (and MCP) description."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except SentsimError as exc:
            raise _bad(str(exc)) from None
        except Exception as exc:  # a bug: log it whole, show one line
            logger.exception("%s failed", getattr(fn, "__name__", "event"))
            raise gr.Error(
                f"Something went wrong ({type(exc).__name__}); the app is still running, please try again.",
                print_exception=False,
            ) from None

    return wrapper


def _check_text(value: Any, what: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``value`` stripped, or a one-line error: not text, empty, or longer than ``limit`` characters."""
    try:
        return check_text("" if value is None else value, f"the {what}", limit)
    except SentsimError as exc:
        raise _bad(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None


def _check_metric(metric: Any) -> str:
    if metric not in sim.METRICS:
        raise _bad(f"Unknown metric {str(metric)[:40]!r}; choose one of: {', '.join(sim.METRICS)}.")
    return str(metric)


def _check_upload(file: Any, what: str, suffixes: list[str]) -> Path:
    """The uploaded file's path, after checking that it exists, has a known type and is at most 2 MB."""
    if file is None or file == "":
        raise _bad(f"Upload {what} first.")
    path = Path(getattr(file, "name", None) or str(file))
    if not path.is_file():
        raise _bad(f"The uploaded file {path.name!r} was not found; upload it again.")
    if path.suffix.lower() not in suffixes:
        raise _bad(f"{path.name}: unknown file type {path.suffix!r}; expected {', '.join(suffixes)}.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _bad(f"{path.name} is {size / 2**20:.1f} MB, over the limit of {MAX_FILE_BYTES / 2**20:g} MB.")
    if size == 0:
        raise _bad(f"{path.name} is empty.")
    return path


def _without_folder(message: str, path: Path) -> str:
    """A sentsim error message that names the upload by its file name, not by Gradio's cache path."""
    return message.replace(str(path), path.name)


# ------------------------------------------------------------------------------------------------ feedback
def append_feedback(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path`` (created with its folder if missing).

    The line is written with a single ``os.write`` to a file opened with ``O_APPEND``, so lines from concurrent
    writers (threads or processes) never interleave: each lands whole at the end of the file.

    Raises:
        OSError: the file cannot be opened or the line was not written whole.
    """
    data = (json.dumps(dict(record), ensure_ascii=False, default=float) + "\n").encode("utf-8")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    fd = os.open(target, flags, 0o644)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise OSError(f"{target}: wrote {written} of {len(data)} bytes of a feedback line")


def vote_record(records: Mapping[int, Mapping[str, Any]] | None, index: Any, liked: Any) -> dict[str, Any] | None:
    """The feedback line for a thumbs up/down on chat message ``index``, or None when there is nothing to record
    (a message the bot did not write, a vote taken back, or a thumbs-down on "I don't know").

    The line is a training pair for ``sentsim train --train FEEDBACK`` (``query``, ``matched_question``,
    ``label``) and, through its up votes, for ``sentsim faq train --feedback FEEDBACK``.

    Args:
        records: Per chat message index, what the bot answered: query, matched_question, answer, id, score.
        index: The liked message's index (Gradio's ``LikeData.index``; a list/tuple's first item is used).
        liked: True (thumbs up), False (thumbs down), or "Like"/"Dislike"; anything else is no vote.
    """
    if isinstance(index, list | tuple):
        index = index[0] if index else None
    record = (records or {}).get(index) if isinstance(index, int) else None
    if liked is True or liked == "Like":
        vote = "up"
    elif liked is False or liked == "Dislike":
        vote = "down"
    else:  # "" or None: a vote taken back
        vote = None
    if record is None or vote is None:
        return None
    answered = record.get("answer") is not None
    if not answered and vote == "down":
        # "It should have answered" names no right answer (the did-you-mean options lead to one): nothing to learn
        return None
    # An up vote on an answer: the query and the matched question mean the same (label 1). A down vote on an
    # answer, or an up vote on "I don't know": the matched question was not the user's (label 0).
    return {
        "query": record.get("query"),
        "matched_question": record.get("matched_question"),
        "answer": record.get("answer"),
        "id": record.get("id"),
        "match_score": record.get("score"),  # not "score", which pair readers take for the label
        "vote": vote,
        "label": 1 if vote == "up" and answered else 0,  # `sentsim train` reads (query, matched_question, label)
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------------------------------ compare
def verdict_for(score: float, threshold: float | None) -> str:
    """``"same meaning"`` at or above the threshold, ``"different"`` below it, ``"no threshold"`` without one."""
    if threshold is None:
        return "no threshold"
    return "same meaning" if score >= threshold else "different"


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _tokens(encoder: Any, text: str, limit: int) -> tuple[list[str], list[int]]:
    """The tokenizer's tokens for ``text`` (truncated as the encoder truncates) and their special-token mask."""
    tokenizer = encoder.tokenizer
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a WordEmbeddings wrapper holds the HF tokenizer
    enc = tokenizer(text, truncation=True, max_length=limit, return_special_tokens_mask=True)
    ids = list(enc["input_ids"])
    mask = list(enc.get("special_tokens_mask") or [0] * len(ids))
    return list(tokenizer.convert_ids_to_tokens(ids)), mask


def token_similarity(model: Any, a: str, b: str) -> tuple[list[str], list[str], np.ndarray]:
    """Cosine similarity between every token of ``a`` and every token of ``b`` from the encoder's token embeddings:
    ``(tokens of a, tokens of b, matrix (len a, len b))``, special tokens ([CLS], [SEP], ...) dropped."""
    encoder = model.encoder
    out = encoder.encode([a, b], output_value="token_embeddings", show_progress_bar=False)
    sides = []
    for text, emb in zip((a, b), out):
        emb = _to_numpy(emb)
        try:
            tokens, mask = _tokens(encoder, text, model.max_seq_length)
        except Exception:  # an encoder without a Hugging Face tokenizer: number the rows instead
            tokens, mask = [f"#{i}" for i in range(len(emb))], [0] * len(emb)
        keep = [i for i, m in enumerate(mask) if not m]
        if len(tokens) == len(emb):
            rows, labels = keep, [tokens[i] for i in keep]
        elif len(keep) == len(emb):  # the encoder added no special tokens
            rows, labels = list(range(len(emb))), [tokens[i] for i in keep]
        else:
            rows, labels = list(range(len(emb))), [f"#{i}" for i in range(len(emb))]
        vectors = emb[rows] if rows else np.zeros((0, emb.shape[1]), dtype=np.float32)
        sides.append((labels, vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)))
    (labels_a, va), (labels_b, vb) = sides
    return labels_a, labels_b, va @ vb.T


def heatmap_figure(labels_a: list[str], labels_b: list[str], matrix: np.ndarray) -> Figure:
    """A heatmap of token-by-token similarities (rows: sentence 1, columns: sentence 2)."""
    cut_a, cut_b = labels_a[:HEATMAP_MAX_TOKENS], labels_b[:HEATMAP_MAX_TOKENS]
    values = matrix[: len(cut_a), : len(cut_b)]
    fig = Figure(figsize=(min(12.0, 2.5 + 0.42 * len(cut_b)), min(10.0, 1.8 + 0.36 * len(cut_a))), layout="tight")
    ax = fig.add_subplot()
    if values.size == 0:
        ax.text(0.5, 0.5, "no tokens to compare", ha="center", va="center")
        ax.set_axis_off()
        return fig
    image = ax.imshow(values, cmap="viridis", vmin=min(0.0, float(values.min())), vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cut_b)), cut_b, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(cut_a)), cut_a, fontsize=9)
    ax.set_xlabel("sentence 2")
    ax.set_ylabel("sentence 1")
    shown = len(cut_a) < len(labels_a) or len(cut_b) < len(labels_b)
    ax.set_title(f"Token cosine similarity{f' (first {HEATMAP_MAX_TOKENS} tokens)' if shown else ''}", fontsize=10)
    if len(cut_a) <= 14 and len(cut_b) <= 14:
        for i in range(len(cut_a)):
            for j in range(len(cut_b)):
                v = float(values[i, j])
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return fig


# ------------------------------------------------------------------------------------------------ ask
def _reply_text(answer: Any) -> str:
    """The chat reply for a :class:`sentsim.Answer`: the answer with its confidence, or "I don't know" with
    "did you mean ...?" suggestions."""
    alts = list(answer.alternatives)[:3]
    if answer.confident:
        lines = [
            answer.answer,
            "",
            f"**Confidence:** {answer.score:.3f} (the bot answers from {answer.threshold:.3f})",
            f"**Matched FAQ question:** {answer.question}",
        ]
        if alts:
            lines.append("**Related:** " + " · ".join(f"{a.question} ({a.score:.2f})" for a in alts))
        return "\n".join(lines)
    if answer.reason == "ambiguous":
        second = alts[0].score if alts else answer.score
        head = f"Sorry, I'm not sure: the two best answers are too close to call ({answer.score:.3f} and {second:.3f})."
    else:
        head = (
            f"Sorry, I don't know that one: the closest FAQ question scores {answer.score:.3f}, below the "
            f"{answer.threshold:.3f} the bot needs to answer."
        )
    options = [(answer.question, answer.score)] + [(a.question, a.score) for a in alts]
    return "\n".join([head, "", "Did you mean:"] + [f"- {q} ({s:.2f})" for q, s in options[:3]])


def _answer_dict(answer: Any) -> dict[str, Any]:
    out = answer.to_dict()
    out["alternatives"] = out["alternatives"][:3]
    out["matched_question"] = answer.question
    out["score"] = round(float(answer.score), 6)
    out["reply"] = _reply_text(answer)
    if not answer.confident:
        out["suggestions"] = [answer.question] + [a.question for a in answer.alternatives][:2]
    return out


def chat_turn(
    result: Mapping[str, Any], history: list[dict[str, Any]] | None, records: dict[int, dict[str, Any]] | None
) -> tuple[list[dict[str, Any]], str, dict[int, dict[str, Any]]]:
    """Add one exchange to the chat: ``(new history, "" to clear the box, records)``. ``records`` maps the reply's
    index in the chat to what the bot answered, for the thumbs up/down feedback."""
    history = list(history or [])
    records = dict(records or {})
    history.append({"role": "user", "content": str(result.get("query", ""))})
    reply: dict[str, Any] = {"role": "assistant", "content": str(result.get("reply", ""))}
    if result.get("suggestions"):
        reply["options"] = [{"value": q, "label": f"Did you mean: {q}"} for q in result["suggestions"]]
    history.append(reply)
    records[len(history) - 1] = {
        "query": result.get("query"),
        "matched_question": result.get("matched_question"),
        "answer": result.get("answer"),
        "id": result.get("id"),
        "score": result.get("score"),
    }
    return history, "", records


# ------------------------------------------------------------------------------------------------ batch & search
def histogram_figure(scores: np.ndarray, metric: str, threshold: float | None) -> Figure:
    fig = Figure(figsize=(6.5, 3.6), layout="tight")
    ax = fig.add_subplot()
    ax.hist(scores, bins=min(40, max(5, len(scores) // 5)), color="#4c78a8", edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color="#e45756", linestyle="--", label=f"threshold {threshold:.3f}")
        ax.legend(fontsize=9)
    ax.set_xlabel(f"{metric} score")
    ax.set_ylabel("pairs")
    ax.set_title(f"{len(scores)} pairs", fontsize=10)
    return fig


def _decode_lines(raw: bytes, name: str) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _bad(f"{name}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8.") from None
    return text.removeprefix("\ufeff").splitlines()


def _corpus(lines: list[str], where: str) -> list[str]:
    """Non-blank lines, stripped, first occurrence kept; at most 1,000, each at most 2,000 characters."""
    seen: dict[str, None] = {}
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if len(text) > MAX_TEXT_CHARS:
            raise _bad(f"{where}: line {n} has {len(text):,} characters, over the limit of {MAX_TEXT_CHARS:,}.")
        seen.setdefault(text, None)
        if len(seen) > MAX_SEARCH_LINES:
            raise _bad(f"{where}: more than {MAX_SEARCH_LINES:,} sentences; search at most {MAX_SEARCH_LINES:,}.")
    if not seen:
        raise _bad(f"{where}: no sentences, only blank lines.")
    return list(seen)


def _safe_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", Path(name).stem)[:60] or "pairs"


# ------------------------------------------------------------------------------------------------ the app
def build_demo(model: Any = None, bot: Any = None, feedback_path: str | os.PathLike | None = None) -> gr.Blocks:
    """The demo as a ``gr.Blocks`` with a bounded queue; launch it with :func:`launch_demo` (or ``.launch()``).

    Args:
        model: A :class:`sentsim.SiameseModel`; the bot's model, else the bundled model, loaded here (once).
        bot: A :class:`sentsim.FAQBot`; sentsim's own FAQ, calibrated, over ``model`` when None.
        feedback_path: Where thumbs up/down are appended as JSON lines; ``demo/feedback.jsonl`` when None.
    """
    if model is None:
        model = bot.model if bot is not None else sentsim.load()
    if bot is None:
        bot = sentsim.FAQBot.from_file(model=model)
    feedback = Path(feedback_path) if feedback_path is not None else DEFAULT_FEEDBACK_PATH
    outputs = Path(tempfile.mkdtemp(prefix="sentsim-demo-"))  # our scored CSVs; Gradio serves its cached copies
    atexit.register(shutil.rmtree, outputs, True)
    corpus_cache: OrderedDict[str, np.ndarray] = OrderedDict()
    cache_lock = threading.Lock()
    model.encode(["warm up"])  # the first request should not pay for lazy initialisation

    def _prune_outputs() -> None:
        cutoff = time.time() - _KEEP_OUTPUTS_S
        for folder in outputs.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    # ---------------------------------------------------------------- the API: one function per endpoint
    def compare(sentence1: str, sentence2: str, metric: str = "cosine") -> tuple[float, str, float | None, Figure]:
        """Score how alike two sentences are and decide whether they mean the same.

        Args:
            sentence1: The first sentence, at most 2,000 characters.
            sentence2: The second sentence, at most 2,000 characters.
            metric: cosine, euclidean, manhattan or dot; higher always means more alike.

        Returns:
            The score; the verdict against the model's threshold for the metric: "same meaning", "different", or
            "no threshold" when the model has none; the threshold (None without one); a heatmap of the cosine
            similarity between each token of sentence1 and each token of sentence2.
        """
        a = _check_text(sentence1, "first sentence")
        b = _check_text(sentence2, "second sentence")
        metric = _check_metric(metric)
        score = float(model.similarity(a, b, metric))
        threshold = model.config.threshold_for(metric)
        try:
            figure = heatmap_figure(*token_similarity(model, a, b))
        except Exception:  # the score stands even if this encoder has no token view
            logger.exception("token heatmap failed")
            figure = None
        return round(score, 6), verdict_for(score, threshold), threshold, figure

    def ask(question: str) -> dict[str, Any]:
        """Ask sentsim's FAQ bot a question; it answers only when it is confident, else it says it does not know
        and suggests the nearest FAQ questions.

        Args:
            question: The question, at most 2,000 characters.

        Returns:
            A dict: answer (None when the bot does not know), confident, score and threshold (cosine),
            matched_question, id, reason (answered, below_threshold or ambiguous), up to three alternatives
            (question, answer, score, id), suggestions when not confident, and reply, the text the chat shows.
        """
        text = _check_text(question, "question")
        return _answer_dict(bot.ask(text, alternatives=3))

    def batch(
        file: str | None, metric: str = "cosine", columns: str = "", score_range: str = ""
    ) -> tuple[str, Figure, str]:
        """Score every sentence pair of an uploaded file and return the scored file as CSV.

        Args:
            file: CSV of sentence pairs (or TSV, JSONL, Parquet), at most 2 MB and 5,000 rows; the columns are
                found as sentsim train finds them: sentence1,sentence2[,score] or other known names, or 2-3
                columns without a header. UTF-8.
            metric: cosine, euclidean, manhattan or dot.
            columns: Optional: the columns to read, e.g. "question1,question2,is_duplicate" or "0,1".
            score_range: Optional: the range of a graded label column, e.g. "0,5"; labels are scaled to 0..1.

        Returns:
            The scored CSV (row, sentence1, sentence2, label if any, score, same if the model has a threshold),
            a histogram of the scores, and a one-line summary.
        """
        path = _check_upload(file, "a CSV file of sentence pairs", PAIR_FORMATS)
        metric = _check_metric(metric)
        try:
            data = read_pairs(
                path,
                columns=(columns or "").strip() or None,
                score_range=(score_range or "").strip() or None,
                max_rows=MAX_BATCH_ROWS + 1,
                max_chars=MAX_TEXT_CHARS,
            )
        except DataError as exc:
            raise _bad(_without_folder(str(exc), path)) from None
        if len(data) > MAX_BATCH_ROWS:
            raise _bad(f"{path.name}: more than {MAX_BATCH_ROWS:,} pairs; split it into files of at most that.")
        unique = list(dict.fromkeys(data.sentence1 + data.sentence2))
        position = {s: i for i, s in enumerate(unique)}
        emb = model.encode(unique, batch_size=64)
        left = emb[[position[s] for s in data.sentence1]]
        right = emb[[position[s] for s in data.sentence2]]
        scores = np.asarray(sim.pairwise(left, right, metric), dtype=np.float64)
        threshold = model.config.threshold_for(metric)

        _prune_outputs()
        folder = outputs / uuid.uuid4().hex[:12]
        folder.mkdir()
        target = folder / f"{_safe_stem(path.name)}-scored.csv"
        header = ["row", "sentence1", "sentence2"] + (["label"] if data.labels is not None else []) + ["score"]
        header += ["same"] if threshold is not None else []
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for i, (row, s1, s2) in enumerate(zip(data.rows, data.sentence1, data.sentence2)):
                cells: list[Any] = [row, s1, s2]
                cells += [f"{data.labels[i]:.6g}"] if data.labels is not None else []
                cells.append(f"{scores[i]:.6f}")
                cells += [int(scores[i] >= threshold)] if threshold is not None else []
                writer.writerow(cells)

        summary = f"Scored {len(scores):,} pairs with {metric}: mean {scores.mean():.3f}"
        if threshold is not None:
            same = int((scores >= threshold).sum())
            summary += f"; {same:,} at or above the threshold {threshold:.4f} (same meaning)"
        if data.labels is not None and len(scores) > 1:
            labels = np.asarray(data.labels)
            if data.kind == "binary" and threshold is not None:
                accuracy = 100 * ((scores >= threshold) == (labels > 0.5)).mean()
                summary += f"; accuracy against the labels {accuracy:.1f}%"
            elif np.ptp(labels) > 0 and np.ptp(scores) > 0:
                from scipy.stats import spearmanr

                summary += f"; Spearman with the labels {100 * spearmanr(scores, labels).statistic:.1f}"
        return str(target), histogram_figure(scores, metric, threshold), summary + "."

    def search(query: str, sentences: str = "", file: str | None = None, top_k: int = 5) -> pd.DataFrame:
        """Find the sentences nearest in meaning to a query (cosine similarity).

        Args:
            query: What to look for, at most 2,000 characters.
            sentences: The sentences to search, one per line (at most 1,000 lines of 2,000 characters).
            file: Or a UTF-8 .txt file of them, one per line, at most 2 MB; it replaces the text when given.
            top_k: How many of the nearest sentences to return (1 to 50).

        Returns:
            A table of rank, score and sentence, best first.
        """
        q = _check_text(query, "query")
        try:
            k = int(top_k)
        except (TypeError, ValueError):
            raise _bad(f"top_k must be a whole number, not {str(top_k)[:20]!r}.") from None
        if not 1 <= k <= MAX_TOP_K:
            raise _bad(f"top_k must be between 1 and {MAX_TOP_K}, not {k}.")
        if file:
            path = _check_upload(file, "a .txt file of sentences", [".txt"])
            corpus = _corpus(_decode_lines(path.read_bytes(), path.name), path.name)
        else:
            if sentences is not None and not isinstance(sentences, str):
                raise _bad(f"The sentences must be text, not {type(sentences).__name__}.")
            if len(sentences or "") > MAX_FILE_BYTES:
                raise _bad(f"The sentences have {len(sentences):,} characters, over the limit of {MAX_FILE_BYTES:,}.")
            if not (sentences or "").strip():
                raise _bad("Give the sentences to search: one per line in the box, or a .txt file.")
            corpus = _corpus(sentences.splitlines(), "the sentences")
        key = hashlib.sha256("\n".join(corpus).encode("utf-8")).hexdigest()
        with cache_lock:
            emb = corpus_cache.get(key)
            if emb is not None:
                corpus_cache.move_to_end(key)
        if emb is None:
            emb = model.encode(corpus, batch_size=64)
            with cache_lock:
                corpus_cache[key] = emb
                while len(corpus_cache) > 8:
                    corpus_cache.popitem(last=False)
        scores = sim.matrix(model.encode([q]), emb, "cosine")[0]
        order = np.argsort(-scores, kind="stable")[: min(k, len(corpus))]
        return pd.DataFrame(
            {
                "rank": list(range(1, len(order) + 1)),
                "score": [round(float(scores[i]), 4) for i in order],
                "sentence": [corpus[i] for i in order],
            }
        )

    # ---------------------------------------------------------------- page helpers (not part of the API)
    def show_reply(
        result: dict[str, Any], history: list[dict[str, Any]], records: dict[int, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], str, dict[int, dict[str, Any]]]:
        return chat_turn(result, history, records)

    def take_option(data: gr.SelectData) -> str:
        value = data.value
        return str(value.get("value", "") if isinstance(value, dict) else value)

    def on_vote(records: dict[int, dict[str, Any]], data: gr.LikeData) -> None:
        line = vote_record(records, data.index, data.liked)
        if line is None:
            return
        try:
            append_feedback(feedback, line)
        except OSError as exc:
            logger.warning("could not save feedback to %s: %s", feedback, exc)
            gr.Warning("Could not save the feedback; the answer was not affected.")
            return
        gr.Info("Thanks for the feedback.", duration=2)

    # ---------------------------------------------------------------- the page
    info = model.info()
    model_name = info.get("base_model") or info.get("encoder") or "model"
    thresholds = model.config.thresholds or {}
    entries = len({e.id for e in bot.entries})
    with gr.Blocks(title="sentsim demo", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# sentsim\nSemantic sentence similarity with one shared encoder. Model: `{model_name}` "
            f"({model.dimension}-dimensional embeddings). Each tab is also an API endpoint: see *Use via API* below."
        )
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "Score two sentences and decide whether they mean the same, against the model's threshold "
                    "for the metric. Up to 2,000 characters each."
                )
                with gr.Row():
                    s1 = gr.Textbox(label="Sentence 1", max_length=MAX_TEXT_CHARS, scale=3, elem_id="sentence1")
                    s2 = gr.Textbox(label="Sentence 2", max_length=MAX_TEXT_CHARS, scale=3, elem_id="sentence2")
                with gr.Row():
                    metric = gr.Dropdown(list(sim.METRICS), value=model.metric, label="Metric", scale=1)
                    go = gr.Button("Compare", variant="primary", scale=1)
                with gr.Row():
                    score_out = gr.Number(label="Score", precision=4, elem_id="score")
                    verdict_out = gr.Textbox(label="Verdict", elem_id="verdict")
                    threshold_out = gr.Number(label="Threshold", precision=4)
                heatmap_out = gr.Plot(label="Token-by-token similarity", format="png")
                gr.Examples(COMPARE_EXAMPLES, inputs=[s1, s2, metric], example_labels=COMPARE_LABELS)
                gr.on(
                    [go.click, s1.submit, s2.submit],
                    _guard(compare),
                    inputs=[s1, s2, metric],
                    outputs=[score_out, verdict_out, threshold_out, heatmap_out],
                    api_name="compare",
                )
                if thresholds:
                    shown = ", ".join(f"{m} {t:.4f}" for m, t in sorted(thresholds.items()))
                    gr.Markdown(f"Thresholds of this model: {shown}.")
                else:
                    gr.Markdown("This model has no thresholds: the verdict says *no threshold*.")

            with gr.Tab("Ask the FAQ", id="ask"):
                gr.Markdown(
                    f"sentsim's help desk: {entries} answers, {len(bot.entries)} questions. The bot answers when its "
                    f"best match scores at least {bot.threshold:.3f} and is not too close to another answer; "
                    "otherwise it says it does not know. Thumbs up/down on a reply records your feedback."
                )
                chatbot = gr.Chatbot(
                    label="FAQ bot", height=420, placeholder="Ask about installing, training, ...", elem_id="faq-chat"
                )
                records = gr.State({})
                with gr.Row():
                    question = gr.Textbox(
                        label="Your question", max_length=MAX_TEXT_CHARS, scale=5, placeholder="how do I install it?"
                    )
                    send = gr.Button("Ask", variant="primary", scale=1)
                gr.Examples(ASK_EXAMPLES, inputs=[question])
                with gr.Accordion("Last answer as JSON", open=False):
                    answer_out = gr.JSON(label="Answer")
                to_chat = dict(
                    fn=show_reply,
                    inputs=[answer_out, chatbot, records],
                    outputs=[chatbot, question, records],
                    api_visibility="private",
                )
                gr.on(
                    [send.click, question.submit], _guard(ask), inputs=question, outputs=answer_out, api_name="ask"
                ).then(**to_chat)
                chatbot.option_select(take_option, None, question, api_visibility="private").then(
                    _guard(ask), question, answer_out, api_visibility="private"
                ).then(**to_chat)
                chatbot.like(on_vote, records, None, api_visibility="private")

            with gr.Tab("Batch", id="batch"):
                gr.Markdown(
                    f"Upload a CSV of sentence pairs (columns `sentence1,sentence2` and an optional score or label, or "
                    f"any names `sentsim train` knows; TSV, JSONL and Parquet work too), UTF-8, **at most "
                    f"{MAX_FILE_BYTES // 2**20} MB and {MAX_BATCH_ROWS:,} rows**, and get it back scored."
                )
                with gr.Row():
                    pairs_in = gr.File(label="Pairs file", file_types=PAIR_FORMATS, type="filepath")
                    with gr.Column():
                        batch_metric = gr.Dropdown(list(sim.METRICS), value=model.metric, label="Metric")
                        columns_in = gr.Textbox(label="Columns (optional)", placeholder="sentence1,sentence2,score")
                        range_in = gr.Textbox(label="Score range (optional)", placeholder="0,5")
                        run_batch = gr.Button("Score the file", variant="primary")
                summary_out = gr.Markdown()
                with gr.Row():
                    scored_out = gr.File(label="Scored CSV")
                    hist_out = gr.Plot(label="Scores", format="png")
                run_batch.click(
                    _guard(batch),
                    [pairs_in, batch_metric, columns_in, range_in],
                    [scored_out, hist_out, summary_out],
                    api_name="batch",
                    concurrency_limit=1,
                )

            with gr.Tab("Search", id="search"):
                gr.Markdown(
                    f"Find the sentences nearest in meaning to a query. One sentence per line, or a UTF-8 .txt file "
                    f"(at most {MAX_SEARCH_LINES:,} lines of {MAX_TEXT_CHARS:,} characters, "
                    f"{MAX_FILE_BYTES // 2**20} MB); the file replaces the text when given."
                )
                with gr.Row():
                    with gr.Column(scale=2):
                        query_in = gr.Textbox(label="Query", max_length=MAX_TEXT_CHARS)
                        sentences_in = gr.Textbox(label="Sentences, one per line", lines=8, max_lines=16)
                    with gr.Column(scale=1):
                        corpus_in = gr.File(label="…or a .txt file", file_types=[".txt"], type="filepath")
                        top_k = gr.Slider(1, MAX_TOP_K, value=5, step=1, label="Top k")
                        run_search = gr.Button("Search", variant="primary")
                results_out = gr.Dataframe(headers=["rank", "score", "sentence"], label="Nearest sentences", wrap=True)
                gr.Examples([["Someone plays the guitar.", SEARCH_EXAMPLE]], inputs=[query_in, sentences_in])
                gr.on(
                    [run_search.click, query_in.submit],
                    _guard(search),
                    [query_in, sentences_in, corpus_in, top_k],
                    results_out,
                    api_name="search",
                )
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def mcp_available() -> bool:
    """Whether Gradio's MCP server can run here (it needs the ``mcp`` package: ``pip install 'gradio[mcp]'``)."""
    import importlib.util

    return importlib.util.find_spec("mcp") is not None


def launch_demo(demo: gr.Blocks, port: int = 7860, host: str = "127.0.0.1", mcp: bool = False, **kwargs: Any) -> Any:
    """Launch ``demo`` locally: no share link, no analytics, a coarse upload cap, no run history kept in the
    browser. Extra keyword arguments go to ``demo.launch`` (e.g. ``prevent_thread_lock=True``).

    Args:
        mcp: Also serve every named endpoint (``compare``, ``ask``, ``batch``, ``search``) as an MCP tool through
            Gradio's own MCP server, at ``http://HOST:PORT/gradio_api/mcp/`` (streamable HTTP). Each tool's
            description and typed parameters come from the endpoint function's signature and docstring.

    Raises:
        ConfigError: ``mcp`` was asked for but the ``mcp`` package is not installed.
    """
    if mcp and not mcp_available():
        raise ConfigError("the MCP server needs the mcp package: pip install 'gradio[mcp]' (or 'sentsim[demo]')")
    options: dict[str, Any] = {
        "mcp_server": mcp,
        "server_name": host,
        "server_port": port,
        "share": False,
        "max_file_size": UPLOAD_LIMIT,
        "run_history": False,
        "show_error": False,
    }
    return demo.launch(**{**options, **kwargs})


def main(argv: list[str] | None = None) -> int:
    """``sentsim demo [--model DIR] [--faq FILE] [--port N]``: build the demo and serve it until Ctrl+C."""
    parser = argparse.ArgumentParser(prog="sentsim demo", description="sentsim's Gradio demo, on 127.0.0.1.")
    parser.add_argument("--model", help="a sentsim or sentence-transformers model folder (default: the bundled model)")
    parser.add_argument("--faq", help="an FAQ file for the Ask tab (default: sentsim's own FAQ, calibrated)")
    parser.add_argument("--port", type=int, default=7860, help="the port (default: 7860)")
    parser.add_argument("--feedback", help=f"where thumbs up/down are appended (default: {DEFAULT_FEEDBACK_PATH})")
    parser.add_argument("--mcp", action="store_true", help="also serve the endpoints as MCP tools (/gradio_api/mcp/)")
    parser.add_argument("--backend", choices=BACKENDS, help="how to run the encoder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's start-up self-checks
    try:
        model = sentsim.load(args.model, backend=args.backend)
        bot = sentsim.FAQBot.from_file(args.faq, model=model) if args.faq else None
        demo = build_demo(model=model, bot=bot, feedback_path=args.feedback)
        launch_demo(demo, port=args.port, mcp=args.mcp)
    except SentsimError as exc:
        print(f"sentsim demo: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"sentsim demo: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
