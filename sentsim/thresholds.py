"""Dev figures of a model and its decision thresholds, chosen on dev data (never on test)."""

from __future__ import annotations

import numpy as np

from sentsim.data import PairData
from sentsim.evaluation import best_threshold, binarize, binary_metrics, score_metrics
from sentsim.model import SiameseModel
from sentsim.similarity import METRICS, pairwise

__all__ = ["dev_scores", "dev_figures", "choose_thresholds", "same_labels"]


def dev_scores(model: SiameseModel, data: PairData) -> dict[str, np.ndarray]:
    """Similarity of every dev pair under every metric, from one encoding pass."""
    emb = model.encode(data.sentence1 + data.sentence2, batch_size=64, show_progress_bar=False)
    left, right = emb[: len(data)], emb[len(data) :]
    return {metric: pairwise(left, right, metric) for metric in METRICS}


def same_labels(data: PairData, cutoff: float) -> np.ndarray:
    """0/1 "same meaning" labels: the labels themselves, or graded scores binarised at ``cutoff``."""
    if data.labels is None:
        raise ValueError("data has no labels")
    labels = np.asarray(data.labels, dtype=np.float64)
    return labels.astype(np.int64) if data.kind == "binary" else binarize(labels, cutoff)


def dev_figures(model: SiameseModel, data: PairData, cutoff: float = 0.7) -> dict[str, float] | None:
    """Spearman and Pearson x100 for graded scores; accuracy, F1 and average precision x100 (at the best-accuracy
    threshold on this same data) for 0/1 labels; all with the model's default metric."""
    if data.kind == "none" or not len(data):
        return None
    scores = dev_scores(model, data)[model.metric]
    if data.kind == "score":
        return {k: round(v, 3) for k, v in score_metrics(scores, data.labels).items()}
    labels = same_labels(data, cutoff)
    metrics = binary_metrics(scores, labels, best_threshold(scores, labels))
    return {k: round(float(metrics[k]), 3) for k in ("accuracy", "f1", "average_precision")}


def choose_thresholds(
    model: SiameseModel, data: PairData, cutoff: float = 0.7, objective: str = "accuracy"
) -> dict[str, float]:
    """The decision threshold for every metric, maximising ``objective`` on ``data``."""
    if data.kind == "none":
        return {}
    labels = same_labels(data, cutoff)
    return {metric: float(best_threshold(s, labels, objective)) for metric, s in dev_scores(model, data).items()}
