"""Choosing and building the training loss.

``auto`` picks from the data and the encoder: graded scores -> the cosine similarity loss (cosine similarity
regressed on the score, sentence-transformers' STS recipe) for a pretrained transformer, CoSENT (a ranking loss)
for a fresh LSTM; 0/1 labels -> online contrastive (hard positives and negatives of each batch); no label ->
multiple-negatives ranking (every other pair in the batch is a negative). The losses themselves are
sentence-transformers' own.

Why, measured on STS-B (BENCHMARKS.md): fine-tuning the bundled transformer one epoch at lr 2e-5 took dev Spearman
from 86.72 to 89.32 with the cosine loss but down to 85.19 with CoSENT, while the LSTM trained one epoch from
scratch reached test 74.38 with CoSENT and 70.53 with the cosine loss.
"""

from __future__ import annotations

from typing import Any, Literal

from sentsim.data import PairData
from sentsim.errors import ConfigError, DataError

__all__ = [
    "LOSSES",
    "PAIR_FILE_LOSSES",
    "LossName",
    "choose_loss",
    "check_loss_data",
    "build_loss",
    "SCORE_LOSSES",
    "grouped_mnrl",
    "proxy_softmax",
]

LossName = Literal["auto", "cosine", "cosent", "angle", "contrastive", "online_contrastive", "mnrl", "proxy"]
LOSSES: tuple[str, ...] = ("auto", "cosine", "cosent", "angle", "contrastive", "online_contrastive", "mnrl", "proxy")
# what ``sentsim train`` offers: pairs read from a file carry no groups, which 'proxy' needs (sentsim faq train has it)
PAIR_FILE_LOSSES: tuple[str, ...] = tuple(name for name in LOSSES if name != "proxy")
SCORE_LOSSES = ("cosine", "cosent", "angle")
BINARY_LOSSES = ("contrastive", "online_contrastive")


def choose_loss(requested: str, data: PairData, encoder: str = "transformer") -> tuple[str, str]:
    """Resolve ``requested`` (maybe ``auto``) against the training data and the encoder being trained.

    Returns:
        ``(loss name, reason in words)``; the reason goes to the training log and the model's config.
    """
    if requested not in LOSSES:
        raise ConfigError(f"unknown loss {requested!r}; choose one of: {', '.join(LOSSES)}")
    if requested != "auto":
        check_loss_data(requested, data)
        return requested, f"{requested} was asked for"
    if data.kind == "score":
        if encoder == "lstm":
            return "cosent", f"auto: column {data.label_column!r} holds graded scores and the LSTM is new, so CoSENT"
        return "cosine", f"auto: column {data.label_column!r} holds graded scores, so a score loss (cosine similarity)"
    if data.kind == "binary":
        return (
            "online_contrastive",
            f"auto: column {data.label_column!r} holds 0/1 labels, so online contrastive loss",
        )
    return "mnrl", "auto: the pairs have no label column, so multiple-negatives ranking loss (MNRL)"


def check_loss_data(loss: str, data: PairData) -> None:
    """Raise :class:`DataError` naming the first row whose label the loss cannot use."""
    if loss == "proxy" and data.groups is None:
        raise DataError(
            f"{data.source}: loss 'proxy' learns one vector per group (an FAQ answer), and these pairs carry no "
            "group: train it with sentsim faq train --loss proxy"
        )
    if loss in SCORE_LOSSES and data.kind == "none":
        raise DataError(f"{data.source}: loss {loss!r} needs a score column, and this file has none")
    if loss in BINARY_LOSSES:
        if data.kind == "none":
            raise DataError(f"{data.source}: loss {loss!r} needs a 0/1 label column, and this file has none")
        for row, value in zip(data.rows, data.labels or []):
            if value not in (0.0, 1.0):
                raise DataError(
                    f"{data.source}: row {row}: label {value:g} in column {data.label_column!r} is not 0 or 1, "
                    f"which loss {loss!r} needs"
                )


def grouped_mnrl(encoder, scale: float = 20.0):
    """The multiple-negatives ranking loss over pairs that know their group (an FAQ answer, an intent).

    Plain MNRL treats every other sentence in the batch as a negative of each anchor. When many pairs share a
    group (130 questions per intent on BANKING77), a batch of 64 often holds a paraphrase of the anchor's own
    group among those "negatives", and the loss pushes it away. This loss leaves those sentences out of the
    anchor's softmax: the other pairs' positives of the anchor's group and, when the label says which group each
    hard negative belongs to, the hard negatives of that group. The label of each pair is its group code, or its
    group code and its hard negative's (:meth:`sentsim.data.PairData.to_dataset` writes it).

    Example:
        >>> import torch
        >>> from sentsim.losses import grouped_mnrl
        >>> loss = grouped_mnrl(torch.nn.Identity())
        >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
        >>> plain = loss.compute_loss_from_embeddings([a, a], torch.tensor([[0], [1], [2]]))
        >>> masked = loss.compute_loss_from_embeddings([a, a], torch.tensor([[0], [1], [0]]))
        >>> bool(masked < plain)  # pairs 0 and 2 share a group, so neither counts as the other's negative
        True
    """
    import torch
    from sentence_transformers.sentence_transformer import losses

    class GroupedMultipleNegativesRankingLoss(losses.MultipleNegativesRankingLoss):
        def compute_loss_from_embeddings(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
            if len(embeddings) < 2:
                raise ValueError(f"expected an anchor and a positive per pair, got {len(embeddings)} columns")
            anchors, docs = embeddings[0], embeddings[1:]
            n = anchors.size(0)
            codes = labels.view(n, -1).long()
            # the group of every candidate: the positives share their anchor's group; a hard negative has its
            # own when the label gives it, else -1 (never masked)
            unknown = torch.full((n,), -1, dtype=torch.long, device=codes.device)
            cand = [codes[:, 0]] + [codes[:, k] if k < codes.size(1) else unknown for k in range(1, len(docs))]
            scores = self.similarity_fct(anchors, torch.cat(docs, dim=0)) * self.scale  # (n, n * columns)
            same = codes[:, :1] == torch.cat(cand)[None, :]
            rows = torch.arange(n, device=scores.device)
            same[rows, rows] = False  # the anchor's own positive stays: it is the target
            scores = scores.masked_fill(same, float("-inf"))
            return torch.nn.functional.cross_entropy(scores, rows)

    return GroupedMultipleNegativesRankingLoss(encoder, scale=scale)


def check_proxy_margin(value: Any) -> float:
    """The proxy loss's margin as a float: a number in [0, 1); anything else (NaN too) is a ConfigError."""
    try:
        m = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"proxy_margin must be a number, not {value!r}") from None
    if not 0 <= m < 1:  # also refuses NaN
        raise ConfigError(f"proxy_margin must be in [0, 1), not {value!r}")
    return m


def proxy_softmax(encoder, proxies, scale: float = 30.0, margin: float = 0.0):
    """A classification loss over one learned vector ("proxy") per group (an FAQ answer, an intent): the softmax of
    ``scale`` times the cosine between each sentence and every proxy, against the sentence's own group (the
    normalized-softmax loss of metric learning). Every other answer is a negative of every question in every
    batch, not only those that share its batch, so questions of one answer gather round its proxy and apart from
    the rest. Only the first column of each row is used; its label is its group's index into ``proxies``.
    With ``margin``, the cosine to a sentence's own proxy counts ``margin`` less in training (the additive margin
    of CosFace), so a sentence is only done when it is nearer its own proxy than any other by that much: each
    group's questions gather tighter.

    Args:
        encoder: the sentence-transformers model being trained.
        proxies: ``(groups, dimension)`` starting vectors, e.g. each group's mean embedding by the starting model;
            they are trained with the encoder (the loss module's parameter ``proxies``).
        scale: the softmax's inverse temperature.
        margin: the additive cosine margin, in [0, 1); 0 is the plain normalized softmax.

    Example:
        >>> import torch
        >>> from sentsim.losses import proxy_softmax
        >>> loss = proxy_softmax(torch.nn.Identity(), torch.eye(2))
        >>> e = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
        >>> right = loss.compute_loss_from_embeddings(e, torch.tensor([0, 1]))
        >>> wrong = loss.compute_loss_from_embeddings(e, torch.tensor([1, 0]))
        >>> bool(right < 0.01 < wrong)
        True
    """
    import torch

    margin = check_proxy_margin(margin)

    class ProxySoftmaxLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.scale, self.margin = encoder, float(scale), margin
            self.proxies = torch.nn.Parameter(torch.as_tensor(proxies, dtype=torch.float32).clone())

        def compute_loss_from_embeddings(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            norm = torch.nn.functional.normalize
            cosines = norm(embeddings, dim=-1) @ norm(self.proxies, dim=-1).T
            labels = labels.view(-1).long().to(cosines.device)
            if self.margin:
                own = torch.nn.functional.one_hot(labels, cosines.shape[1]).to(cosines.dtype)
                cosines = cosines - self.margin * own
            return torch.nn.functional.cross_entropy(self.scale * cosines, labels)

        def forward(self, sentence_features, labels: torch.Tensor) -> torch.Tensor:
            features = next(iter(sentence_features))
            return self.compute_loss_from_embeddings(self.model(features)["sentence_embedding"], labels)

    return ProxySoftmaxLoss()


def build_loss(name: str, encoder, grouped: bool = False):
    """The sentence-transformers loss module for ``name`` over ``encoder``; ``grouped`` (mnrl only): pairs carry
    their group, see :func:`grouped_mnrl`."""
    from sentence_transformers.sentence_transformer import losses

    if grouped:
        if name != "mnrl":
            raise ConfigError(f"pairs with groups train with loss 'mnrl', not {name!r}")
        return grouped_mnrl(encoder)

    builders = {
        "cosine": losses.CosineSimilarityLoss,
        "cosent": losses.CoSENTLoss,
        "angle": losses.AnglELoss,
        "contrastive": losses.ContrastiveLoss,
        "online_contrastive": losses.OnlineContrastiveLoss,
        "mnrl": losses.MultipleNegativesRankingLoss,
    }
    if name not in builders:
        raise ConfigError(f"unknown loss {name!r}; choose one of: {', '.join(builders)}")
    return builders[name](encoder)
