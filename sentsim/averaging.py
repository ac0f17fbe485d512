"""Averaging the weights of several fine-tuned models ("model soup", checkpoint averaging).

Models fine-tuned from the same starting point (different seeds, or checkpoints of one run) lie close enough in
weight space that their element-wise mean is itself a good model, often better than each of them, at no cost at
inference time. :func:`average_models` checks that the models can be averaged (same encoder, same tensors), writes
the mean atomically and, given dev pairs, chooses the averaged model's decision thresholds on them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sentsim.errors import ConfigError, ModelError
from sentsim.loading import check_output_folder
from sentsim.model import SiameseModel

__all__ = ["average_models"]


def _mean_state(models: Sequence[SiameseModel], names: Sequence[str], weights: Sequence[float]) -> dict:
    states = [m.encoder.state_dict() for m in models]
    first = states[0]
    for name, state in zip(names[1:], states[1:]):
        if state.keys() != first.keys():
            missing = sorted(set(first) ^ set(state))[:3]
            raise ModelError(f"{name}: its weights differ from {names[0]}'s ({', '.join(missing)}); cannot average")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                raise ModelError(
                    f"{name}: weight {key} has shape {tuple(tensor.shape)}, {names[0]} has "
                    f"{tuple(first[key].shape)}; cannot average"
                )
    mean = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            acc = tensor.detach().double() * weights[0]
            for w, state in zip(weights[1:], states[1:]):
                acc += state[key].detach().double() * w
            mean[key] = acc.to(tensor.dtype)
        else:  # integer buffers (position ids): identical across fine-tuned copies
            mean[key] = tensor
    return mean


def average_models(
    models: Sequence[str | os.PathLike | SiameseModel],
    output_dir: str | os.PathLike | None = None,
    weights: Sequence[float] | None = None,
    dev: str | os.PathLike | None = None,
    columns: str | Sequence[str] | None = None,
    score_range: str | tuple[float, float] | None = None,
    same_cutoff: float = 0.7,
    threshold_objective: str = "accuracy",
    overwrite: bool = False,
    device: str | None = "cpu",
) -> SiameseModel:
    """The weighted mean of several models' weights, as a new model.

    Args:
        models: two or more model folders (or loaded models) with the same encoder and the same tensors, such as
            fine-tunings of one base model with different seeds.
        output_dir: where to save the averaged model (atomically); not saved when None.
        weights: one weight per model, normalised to sum to 1; equal weights when None.
        dev: dev pairs to choose the averaged model's decision thresholds on (and record its dev figures); without
            them the first model's thresholds are kept, which may no longer fit.
        columns, score_range: how to read ``dev`` (as in :func:`sentsim.train`).
        same_cutoff, threshold_objective: as in :func:`sentsim.train`.
        overwrite: replace a model already in ``output_dir``.
        device: where to load model folders.

    Raises:
        ConfigError: fewer than two models, or weights that do not match them.
        ModelError: a folder is not a model, or the models' encoders or tensors differ.

    Example:
        >>> import sentsim  # doctest: +SKIP
        >>> soup = sentsim.average_models(["runs/seed42", "runs/seed43", "runs/seed44"], "runs/soup",
        ...                               dev="dev.csv", score_range=(0, 5))  # doctest: +SKIP
    """
    from sentsim.data import parse_columns, parse_score_range, read_pairs
    from sentsim.encoders import load_on_torch
    from sentsim.thresholds import choose_thresholds, dev_figures

    if len(models) < 2:
        raise ConfigError(f"average_models needs two or more models, got {len(models)}")
    if weights is None:
        weights = [1.0] * len(models)
    if len(weights) != len(models) or any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise ConfigError(f"weights must be {len(models)} non-negative numbers with a positive sum, not {weights}")
    weights = [w / sum(weights) for w in weights]
    out = check_output_folder(output_dir, overwrite) if output_dir is not None else None
    dev_data = None
    if dev is not None:
        dev_data = read_pairs(dev, parse_columns(columns), parse_score_range(score_range))

    loaded = [m if isinstance(m, SiameseModel) else load_on_torch(m, device) for m in models]
    names = [str(m) if not isinstance(m, SiameseModel) else f"model {i + 1}" for i, m in enumerate(models)]
    kinds = {m.config.encoder for m in loaded}
    if len(kinds) > 1:
        raise ModelError(f"cannot average a {' and a '.join(sorted(kinds))} encoder")
    mean = _mean_state(loaded, names, weights)

    # The result: the first model with the mean weights; a copy when the caller passed it in, so theirs stays.
    result = _copy(loaded[0]) if isinstance(models[0], SiameseModel) else loaded[0]  # ours when we loaded it
    result.encoder.load_state_dict(mean)
    result.config.training = {
        "averaged_from": names,
        "weights": [round(w, 6) for w in weights],
        "trainings": [m.config.training for m in loaded],
    }
    if dev_data is not None:
        result.config.dev_metrics = dev_figures(result, dev_data, same_cutoff)
        result.config.thresholds = choose_thresholds(result, dev_data, same_cutoff, threshold_objective)
        result.config.threshold_source = f"dev file {dev}, best {threshold_objective}" + (
            f", gold >= {same_cutoff} as same meaning" if dev_data.kind == "score" else ""
        )
    else:
        result.config.dev_metrics = None
    if out is not None:
        result.save(out, overwrite=overwrite)
    return result


def _copy(model: SiameseModel) -> SiameseModel:
    import copy

    config = copy.deepcopy(model.config)
    wanted, config.backend = config.backend, "torch"  # its weights are about to change: no export of these ones
    result = SiameseModel(copy.deepcopy(model.encoder), config)
    result.config.backend = wanted  # saved with the result, which runs on it when loaded
    return result
