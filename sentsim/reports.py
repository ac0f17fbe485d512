"""Writing an evaluation out: ``metrics.json``, a Markdown report, PNG plots and a per-item error file.

:func:`write_report` writes one :class:`~sentsim.harness.TaskResult` into a folder, atomically (a temporary folder
beside it, renamed into place), and refuses to replace a non-empty folder unless asked. The folder holds:

- ``metrics.json``: the figures, model, task, data files, threshold and where it came from, counts, versions.
- ``report.md``: the same as Markdown tables, the worst items, and links to the plots.
- ``errors.csv``: the failed items, worst first (sts: every pair, by rank disagreement; pairs: misclassified
  pairs; faq: misanswered queries with what was returned).
- PNG plots: ``scatter.png`` (sts: gold against predicted), ``threshold.png`` (pairs: precision, recall and F1
  against the threshold), ``scores.png`` (faq: histogram of top scores, in scope against out of scope).

Plots use matplotlib's Agg canvas directly (no pyplot, no global backend change), imported only when plotting.
:func:`compare_table` puts several results side by side, for benchmark scripts.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentsim._version import __version__
from sentsim.harness import TaskResult
from sentsim.loading import atomic_folder, check_output_folder

__all__ = ["write_report", "markdown_report", "compare_table", "write_plots", "threshold_curves"]

logger = logging.getLogger(__name__)

PLOTS = {"sts": "scatter.png", "pairs": "threshold.png", "faq": "scores.png"}


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float | np.floating):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, list | tuple):
        return " | ".join(str(v) for v in value)
    return str(value)


def _cell(value: Any, limit: int | None = None) -> str:
    text = _fmt(value).replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], limit: int | None = None) -> str:
    """A Markdown table; cells longer than ``limit`` characters are cut."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(v, limit) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _threshold_text(result: TaskResult) -> str:
    if result.threshold is None:
        return "none"
    return f"{result.threshold:.4f}, {result.threshold_source}"


def markdown_report(result: TaskResult, plots: Sequence[str] = (), worst: int = 10) -> str:
    """The report as Markdown: what was evaluated, the figures, the ``worst`` failed items and the plots.

    Example:
        >>> from sentsim.harness import TaskResult
        >>> r = TaskResult("sts", "m", "cosine", {"spearman_cosine": 82.0}, "spearman_cosine", {"test": "t.csv"})
        >>> print(markdown_report(r).splitlines()[0])
        # sentsim eval: sts
    """
    about = [
        ("model", result.model),
        ("task", result.task),
        *((f"{role} data", source) for role, source in result.data.items()),
        ("similarity metric", result.metric),
        ("threshold", _threshold_text(result)),
        *((k.replace("_", " "), v) for k, v in result.counts.items()),
        ("wall time", f"{result.wall_time_s:.1f} s"),
    ]
    parts = [f"# sentsim eval: {result.task}", "", _table(["", ""], about), ""]
    figures = [(k + (" (primary)" if k == result.primary else ""), v) for k, v in result.metrics.items()]
    parts += ["## Figures", "", "x100 except the threshold.", "", _table(["figure", "value"], figures), ""]
    if result.errors and worst > 0:
        shown = result.errors[:worst]
        keys = [k for k in shown[0] if k not in ("top_answers",)]
        title = "Worst pairs" if result.task != "faq" else "Misanswered queries"
        parts += [f"## {title} ({len(shown)} of {len(result.errors)}; all in errors.csv)", ""]
        parts += [_table(keys, [[item[k] for k in keys] for item in shown], limit=80), ""]
    parts += [f"![{name}]({name})\n" for name in plots]
    return "\n".join(parts)


def compare_table(results: Sequence[TaskResult], keys: Sequence[str] | None = None) -> str:
    """Several results in one Markdown table, a row each (model, task, test data, figures).

    Args:
        results: The results to compare, e.g. one per model or seed.
        keys: The figures to show; by default every figure of the first result.

    Example:
        >>> from sentsim.harness import TaskResult
        >>> rs = [TaskResult("sts", m, "cosine", {"spearman_cosine": v}, "spearman_cosine", {"test": "t.csv"})
        ...       for m, v in (("a", 80.0), ("b", 85.5))]
        >>> print(compare_table(rs))
        | model | task | data | spearman_cosine |
        | --- | --- | --- | --- |
        | a | sts | t.csv | 80.00 |
        | b | sts | t.csv | 85.50 |
    """
    keys = list(keys if keys is not None else (results[0].metrics if results else []))
    rows = [
        [r.model, r.task, r.data.get("test") or r.data.get("queries", ""), *(r.metrics.get(k) for k in keys)]
        for r in results
    ]
    return _table(["model", "task", "data", *keys], rows)


def threshold_curves(scores: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 (x100) of ``score >= t`` at every distinct score ``t``, in increasing order.

    Example:
        >>> c = threshold_curves(np.array([0.9, 0.6, 0.4, 0.2]), np.array([1, 0, 1, 0]))
        >>> c["threshold"].tolist(), c["recall"].tolist()
        ([0.2, 0.4, 0.6, 0.9], [100.0, 100.0, 50.0, 50.0])
    """
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], np.asarray(labels)[order]
    last = np.r_[s[1:] != s[:-1], True]  # predicting positive down to s[i] includes its ties
    tp = np.cumsum(y)[last]
    predicted = np.flatnonzero(last) + 1
    precision = 100.0 * tp / predicted
    recall = 100.0 * tp / max(int(y.sum()), 1)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=tp > 0)
    return {"threshold": s[last][::-1], "precision": precision[::-1], "recall": recall[::-1], "f1": f1[::-1]}


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _plot_sts(result: TaskResult, ax) -> None:
    gold, pred = result.arrays["gold"], result.arrays["predicted"]
    ax.scatter(gold, pred, s=8, alpha=0.4)
    ax.set_xlabel("gold score")
    ax.set_ylabel(f"predicted similarity ({result.metric})")
    ax.set_title(f"STS: Spearman {result.score:.2f} over {len(gold)} pairs")


def _plot_pairs(result: TaskResult, ax) -> None:
    test = threshold_curves(result.arrays["scores"], result.arrays["labels"])
    for name in ("precision", "recall", "f1"):
        ax.plot(test["threshold"], test[name], label=f"test {name}")
    if "dev_scores" in result.arrays:
        dev = threshold_curves(result.arrays["dev_scores"], result.arrays["dev_labels"])
        ax.plot(dev["threshold"], dev["f1"], linestyle="--", color="grey", label="dev f1")
    ax.axvline(result.threshold, color="black", linewidth=1, label=f"threshold {result.threshold:.4f}")
    ax.set_xlabel(f"threshold ({result.metric} similarity)")
    ax.set_ylabel("x100")
    ax.set_title("Pairs: precision, recall and F1 against the threshold")
    ax.legend(loc="lower left", fontsize="small")


def _plot_faq(result: TaskResult, ax) -> None:
    top, inside, right = (result.arrays[k] for k in ("top_score", "in_scope", "right"))
    groups = {
        "in scope, right answer": top[inside & right],
        "in scope, wrong answer": top[inside & ~right],
        "out of scope": top[~inside],
    }
    bins = np.linspace(float(top.min()), float(top.max()) + 1e-9, 31)
    for name, values in groups.items():
        if values.size:
            ax.hist(values, bins=bins, alpha=0.55, label=f"{name} ({values.size})")
    if result.threshold is not None:
        ax.axvline(result.threshold, color="black", linewidth=1, label=f"threshold {result.threshold:.4f}")
    ax.set_xlabel(f"top-1 similarity ({result.metric})")
    ax.set_ylabel("queries")
    ax.set_title("FAQ: score of the top answer")
    ax.legend(loc="upper left", fontsize="small")


def write_plots(result: TaskResult, folder: str | os.PathLike) -> list[str]:
    """Draw the task's plot into ``folder``; returns the file names written."""
    fig, ax = _figure()
    {"sts": _plot_sts, "pairs": _plot_pairs, "faq": _plot_faq}[result.task](result, ax)
    fig.tight_layout()
    name = PLOTS[result.task]
    fig.savefig(Path(folder) / name, format="png")
    return [name]


def _write_errors(result: TaskResult, path: Path, limit: int | None) -> None:
    items = result.errors[:limit]
    keys = list(items[0]) if items else list(result.items[0]) if result.items else ["row"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        writer.writerows(
            [_fmt(item[k]) if isinstance(item[k], list | bool) else item[k] for k in keys] for item in items
        )


def write_report(
    result: TaskResult,
    folder: str | os.PathLike,
    *,
    overwrite: bool = False,
    plots: bool = True,
    max_errors: int | None = None,
) -> Path:
    """Write ``metrics.json``, ``report.md``, ``errors.csv`` and the plots into ``folder``, atomically.

    Args:
        result: What :mod:`sentsim.harness` returned.
        folder: The report folder; created, or replaced when ``overwrite``.
        overwrite: Replace a folder that already holds files.
        plots: Draw the PNG plot.
        max_errors: Write at most this many failed items to ``errors.csv`` (worst first); None writes all.

    Returns:
        The folder, resolved.

    Raises:
        OutputExistsError: ``folder`` holds files (or is a file) and ``overwrite`` is False.
    """
    target = check_output_folder(folder, overwrite).resolve()
    with atomic_folder(target) as tmp:
        names = write_plots(result, tmp) if plots else []
        _write_errors(result, tmp / "errors.csv", max_errors)
        (tmp / "report.md").write_text(markdown_report(result, names), encoding="utf-8")
        record = {
            **result.to_dict(),
            "files": ["metrics.json", "report.md", "errors.csv", *names],
            "sentsim_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "metrics.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote the %s report to %s", result.task, target)
    return target
