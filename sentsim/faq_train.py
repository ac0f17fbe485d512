"""Fine-tuning the encoder for one FAQ: questions that share an answer are positives, the others negatives.

Every question whose answer has another question becomes an anchor, paired with one of its paraphrases (the
positive) and, with hard negatives on, with the question of *another* answer that the starting model finds most
alike (one of its three nearest, at random): the pairs a bot confuses. Training uses the multiple-negatives ranking
loss (each anchor against its positive, the hard negative and every other positive in the batch), and by default
leaves out of each anchor's negatives the in-batch questions of its own answer, which are paraphrases of it
(:func:`sentsim.losses.grouped_mnrl`). Retrieval figures
are measured before and after, on labelled queries when given (the honest figure), else on the FAQ's own questions,
each asked against the others (optimistic after training, since the model has seen them).
"""

from __future__ import annotations

import logging
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentsim.data import PairData
from sentsim.errors import ConfigError, DataError
from sentsim.faq import FAQBot, FAQEntry, read_faq

logger = logging.getLogger(__name__)

__all__ = ["faq_pairs", "faq_figures", "feedback_questions", "train_faq", "FAQTrainResult"]


@dataclass
class FAQTrainResult:
    """What :func:`train_faq` returns: the saved model folder, the figures before and after, the pair count."""

    output_dir: Path
    before: dict[str, Any]
    after: dict[str, Any]
    pairs: int
    hard_negatives: bool
    wall_time_s: float
    feedback: dict[str, int] | None = None


def faq_pairs(
    entries: Sequence[FAQEntry],
    model: Any = None,
    hard_negatives: bool = True,
    seed: int = 42,
    source: str = "FAQ",
    show_progress: bool | None = None,
    groups: bool = True,
) -> PairData:
    """Training pairs of an FAQ: (question, a paraphrase with the same answer[, a hard negative]).

    With ``groups``, each pair carries its answer's id (and its hard negative's), so the loss can leave the
    in-batch questions of the same answer out of the negatives.

    Raises:
        DataError: no answer has two questions, so there is nothing to learn from.
    """
    rng = random.Random(seed)
    by_answer: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_answer[e.id].append(i)
    anchors = [i for i, e in enumerate(entries) if len(by_answer[e.id]) > 1]
    if not anchors:
        raise DataError(f"{source}: no answer has two or more questions, so there are no positives to train on")
    if len(by_answer) < 2 and hard_negatives:
        raise DataError(f"{source}: one answer only, so there are no negatives to train on")
    questions = [e.question for e in entries]
    negatives = None
    if hard_negatives:
        if model is None:
            from sentsim.encoders import load

            model = load()
        progress = len(questions) >= 1_000 if show_progress is None else show_progress
        emb = np.asarray(model.encode(questions, batch_size=64, show_progress_bar=progress))
        code_of = {entry_id: c for c, entry_id in enumerate(by_answer)}
        codes = np.array([code_of[e.id] for e in entries])
        negatives = []
        for start in range(0, len(anchors), 1024):
            rows = anchors[start : start + 1024]
            sims = emb[rows] @ emb.T  # (c, n)
            sims[codes[rows][:, None] == codes[None, :]] = -np.inf  # only other answers
            k = min(3, sims.shape[1] - 1)
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            negatives += [int(rng.choice(list(t))) for t in top]
    positives = [questions[rng.choice([j for j in by_answer[entries[i].id] if j != i])] for i in anchors]
    return PairData(
        sentence1=[questions[i] for i in anchors],
        sentence2=positives,
        labels=None,
        kind="none",
        source=f"{source} (paraphrase pairs{', hard negatives' if hard_negatives else ''})",
        rows=[i + 1 for i in anchors],
        label_column=None,
        negatives=None if negatives is None else [questions[j] for j in negatives],
        groups=[entries[i].id for i in anchors] if groups else None,
        negative_groups=[entries[j].id for j in negatives] if groups and negatives is not None else None,
    )


def feedback_questions(path: str | os.PathLike, entries: Sequence[FAQEntry]) -> tuple[list[FAQEntry], dict[str, int]]:
    """The demo's feedback as extra questions for training: each query voted a right match (label 1) becomes one
    more question of the entry it matched, so it is trained as a paraphrase of that entry's questions.

    A feedback file is the JSON lines the demo's Ask tab appends (``query``, ``matched_question``, ``label``: 1 for
    a thumbs-up on an answer, 0 for a wrong match, ...); any pair file with those roles works. A wrong match says
    which answer is not the user's but not which is, so it gives no positive here (``sentsim train --train
    FEEDBACK`` uses it, as a label-0 pair).

    Returns:
        The extra entries, and counts: ``positive`` (used), ``negative`` (not used here), ``unknown`` (positives
        whose matched question is no longer in this FAQ, skipped), ``duplicate`` (queries already in the FAQ or
        voted twice).

    Raises:
        DataError: the file is missing or malformed (one line naming it and the row), or it has no votes.
    """
    from sentsim.data import read_pairs

    votes = read_pairs(path)
    if votes.labels is None or votes.kind != "binary":
        raise DataError(f"{os.fspath(path)}: expected votes labelled 1 (up) or 0 (down) in a 'label' column")
    by_question = {e.question: e for e in entries}
    seen = {e.question.strip().lower() for e in entries}
    extra: list[FAQEntry] = []
    counts = {"positive": 0, "negative": 0, "unknown": 0, "duplicate": 0}
    for query, matched, label in zip(votes.sentence1, votes.sentence2, votes.labels):
        if label != 1:
            counts["negative"] += 1
            continue
        entry = by_question.get(matched)
        key = query.strip().lower()
        if entry is None:
            counts["unknown"] += 1
        elif key in seen:
            counts["duplicate"] += 1
        else:
            seen.add(key)
            extra.append(FAQEntry(question=query.strip(), answer=entry.answer, id=entry.id, tags=("feedback",)))
            counts["positive"] += 1
    if counts["unknown"]:
        logger.warning("%s: %d right matches name questions no longer in the FAQ; skipped", path, counts["unknown"])
    return extra, counts


def _leave_one_out(emb: np.ndarray, ids: list[str]) -> float | None:
    """Top-1 accuracy of each question (whose answer has others) asked against all the other questions."""
    codes = np.unique(np.array(ids), return_inverse=True)[1]
    counts = np.bincount(codes)
    rows = np.flatnonzero(counts[codes] > 1)
    if not len(rows):
        return None
    right = 0
    for start in range(0, len(rows), 1024):
        chunk = rows[start : start + 1024]
        sims = emb[chunk] @ emb.T
        sims[np.arange(len(chunk)), chunk] = -np.inf  # not itself
        right += int((codes[sims.argmax(axis=1)] == codes[chunk]).sum())
    return round(100 * right / len(rows), 2)


def faq_figures(
    entries: Sequence[FAQEntry],
    model: Any,
    queries: Sequence[str] | None = None,
    expected: Sequence[Any] = (),
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Retrieval figures of ``model`` on an FAQ: top-1 accuracy (no abstaining) on the in-scope labelled queries,
    or leave-one-out top-1 on the FAQ's own questions when no queries are given."""
    return _figures(FAQBot(entries, model, threshold=0.0, show_progress=show_progress), entries, queries, expected)


def _figures(bot: FAQBot, entries: Sequence[FAQEntry], queries: Sequence[str] | None, expected: Sequence[Any]) -> dict:
    if queries:
        want = bot._expected_ids(expected)
        answers = bot.ask_many(list(queries), alternatives=0)
        scored = [(a.id, w) for a, w in zip(answers, want) if w is not None]
        if not scored:
            raise DataError("the labelled queries have no in-scope query (every expected answer is empty)")
        top1 = round(100 * sum(a == w for a, w in scored) / len(scored), 2)
        return {"top1_accuracy": top1, "on": f"{len(scored)} labelled in-scope queries"}
    return {"top1_accuracy": _leave_one_out(bot._emb, [e.id for e in entries]), "on": "the FAQ's own questions"}


def train_faq(
    faq: str | os.PathLike | Sequence[FAQEntry],
    output_dir: str | os.PathLike,
    base_model: str | None = None,
    queries: str | os.PathLike | None = None,
    query_columns: str | Sequence[str] | None = None,
    faq_columns: str | Sequence[str] | None = None,
    hard_negatives: bool = True,
    feedback: str | os.PathLike | None = None,
    mask_same_answer: bool = True,
    loss: str = "mnrl",
    proxy_margin: float = 0.0,
    epochs: float = 1,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    seed: int = 42,
    overwrite: bool = False,
    show_progress: bool = True,
) -> FAQTrainResult:
    """Fine-tune a model for one FAQ and save it (atomically); see the module's description.

    Args:
        faq: An FAQ file (as :func:`sentsim.faq.read_faq` reads) or its entries.
        output_dir: Where the fine-tuned model goes.
        base_model: The model to start from; the bundled model when None.
        queries: Labelled queries (``query,expected``) for the before and after figures; never trained on.
        hard_negatives: Mine a hard negative per pair from the FAQ itself.
        feedback: The demo's feedback file: its up-voted queries train as paraphrases of the questions they
            matched (see :func:`feedback_questions`); the figures are still measured on the FAQ as it is.
        mask_same_answer: Leave the in-batch questions of an anchor's own answer out of its negatives (False:
            plain MNRL, which counts them as negatives).
        loss: ``mnrl`` (multiple-negatives ranking over paraphrase pairs) or ``proxy``: every question is
            classified among one learned vector per answer (:func:`sentsim.losses.proxy_softmax`), so every other
            answer is a negative of every question; no pairs or hard negatives are mined. On BANKING77 it was
            ahead of MNRL on a dev split and on 3 test seeds (BENCHMARKS.md).
        proxy_margin: loss ``proxy`` only: the additive cosine margin of :func:`sentsim.losses.proxy_softmax`.
        epochs, batch_size, learning_rate, seed, overwrite, show_progress: As in :func:`sentsim.train`.

    Example:
        >>> from sentsim.faq_train import train_faq  # doctest: +SKIP
        >>> r = train_faq("faq.csv", "runs/faq-model", queries="labelled.csv")  # doctest: +SKIP
        >>> r.before["top1_accuracy"], r.after["top1_accuracy"]  # doctest: +SKIP
    """
    import time

    from sentsim.encoders import load
    from sentsim.loading import check_output_folder
    from sentsim.losses import check_proxy_margin
    from sentsim.retrieval import read_qa
    from sentsim.training import group_sums, train

    started = time.perf_counter()
    if loss not in ("mnrl", "proxy"):
        raise ConfigError(f"loss must be 'mnrl' or 'proxy', not {loss!r}")
    if check_proxy_margin(proxy_margin) and loss != "proxy":  # checked before the slow figures, not after
        raise ConfigError(f"proxy_margin is a setting of loss 'proxy', not of loss {loss!r}")
    check_output_folder(output_dir, overwrite)
    entries = list(faq) if not isinstance(faq, str | os.PathLike) else read_faq(faq, faq_columns)
    source = os.fspath(faq) if isinstance(faq, str | os.PathLike) else "FAQ"
    q_texts, q_expected = None, ()
    if queries is not None:
        qa = read_qa(queries, query_columns, allow_empty_answer=True)
        q_texts, q_expected = qa.questions, qa.answers
    start = load(base_model, backend="torch")  # fp32, as the trained model runs until it is loaded again
    progress = None if show_progress else False
    start_bot = FAQBot(entries, start, threshold=0.0, show_progress=progress)
    before = _figures(start_bot, entries, q_texts, q_expected)
    logger.info("before: top-1 %s on %s", before["top1_accuracy"], before["on"])
    votes = None
    train_entries = entries
    if feedback is not None:
        extra, votes = feedback_questions(feedback, entries)
        train_entries = entries + extra
        logger.info("feedback: %d up-voted queries added as questions (%s)", len(extra), votes)
    if loss == "proxy":
        if len({e.id for e in train_entries}) < 2:
            raise DataError(f"{source}: one answer only, so there is nothing to tell it from")
        hard_negatives = False  # every other answer's proxy is a negative of every question
        questions = [e.question for e in train_entries]
        pairs = PairData(
            questions, questions, None, "none", f"{source} (questions and their answers)",
            list(range(1, len(questions) + 1)), None, groups=[e.id for e in train_entries],
        )  # fmt: skip
        logger.info("training on %d questions of %d answers (proxy loss)", len(pairs), len(set(pairs.groups)))
        proxies = group_sums(start_bot._emb, [e.id for e in entries])  # embedded once, for the figures before
    else:
        pairs = faq_pairs(train_entries, start, hard_negatives, seed, source, progress, groups=mask_same_answer)
        logger.info("training on %d pairs%s", len(pairs), " with hard negatives" if hard_negatives else "")
    result = train(
        train=pairs,
        output_dir=output_dir,
        loss=loss,
        base_model=base_model,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        overwrite=overwrite,
        show_progress=show_progress,
        **({"proxies": proxies, "proxy_margin": proxy_margin} if loss == "proxy" else {}),
    )
    after = faq_figures(entries, result.model, q_texts, q_expected, progress)
    logger.info("after: top-1 %s on %s", after["top1_accuracy"], after["on"])
    result.model.config.training = {
        **(result.model.config.training or {}),
        "faq": source,
        "faq_figures_before": before,
        "faq_figures_after": after,
        **({"feedback": os.fspath(feedback), "feedback_votes": votes} if votes is not None else {}),
    }
    result.model.save(result.output_dir, overwrite=True)
    return FAQTrainResult(
        result.output_dir, before, after, len(pairs), hard_negatives, round(time.perf_counter() - started, 1), votes
    )
