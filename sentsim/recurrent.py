"""Fast CPU inference for the LSTM encoder: sentences grouped by token length, so the LSTM runs unpacked.

sentence-transformers runs its LSTM module on a packed sequence, which PyTorch steps through one time step at a
time with many small operations, and tokenizes one sentence at a time. Sentences of the same token length need no
padding and no packing, so a batch of them runs through PyTorch's fused (oneDNN) LSTM kernel in one call, and the
mean over all their time steps is the masked mean the Pooling module takes. The result is the same embedding (to
float rounding) in less time; ``eval/bench_speed.py --lstm`` measures it.

Only the layout :func:`sentsim.encoders.build_lstm` makes is run this way (WordEmbeddings over a transformers
tokenizer, LSTM, mean Pooling, Normalize); any other model keeps sentence-transformers' own ``encode``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["GroupedLSTM"]


class GroupedLSTM:
    """Encodes with the live modules of a sentence-transformers LSTM model (training changes them in place)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.words, self.lstm = encoder[0], encoder[1]
        self.tokenizer = self.words.tokenizer.tokenizer
        self.max_len = int(self.words.max_seq_length)

    @staticmethod
    def applies(encoder: Any) -> bool:
        """Whether ``encoder`` has the layout this class runs: WordEmbeddings, LSTM, mean Pooling[, Normalize]."""
        from sentence_transformers.sentence_transformer.modules.tokenizer.word import TransformersTokenizerWrapper

        names = [type(module).__name__ for module in encoder]
        if names not in (["WordEmbeddings", "LSTM", "Pooling"], ["WordEmbeddings", "LSTM", "Pooling", "Normalize"]):
            return False
        mode = getattr(encoder[2], "pooling_mode", None)
        modes = [mode] if isinstance(mode, str) else list(mode or ())
        return modes == ["mean"] and isinstance(encoder[0].tokenizer, TransformersTokenizerWrapper)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The ids WordEmbeddings makes (special tokens included, then cut to the limit), in one tokenizer call."""
        ids = self.tokenizer(texts, verbose=False)["input_ids"]
        return [row[: self.max_len] or [0] for row in ids]

    def encode(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        batch_size = max(batch_size, 1)
        ids = self.token_ids(texts)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, row in enumerate(ids):
            groups[len(row)].append(i)
        batches = [idx[s : s + batch_size] for _, idx in sorted(groups.items()) for s in range(0, len(idx), batch_size)]
        device = self.words.emb_layer.weight.device
        out = np.empty((len(texts), self.lstm.get_embedding_dimension()), dtype=np.float32)
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.inference_mode():
                for part in tqdm(batches, desc="Batches", disable=not show_progress_bar):
                    tokens = torch.tensor([ids[i] for i in part], device=device)
                    states = self.lstm.encoder(self.words.emb_layer(tokens))[0]
                    pooled = torch.nn.functional.normalize(states.mean(dim=1), p=2, dim=1)  # as encode() does
                    out[part] = pooled.float().cpu().numpy()
        finally:
            self.encoder.train(was_training)
        return out
