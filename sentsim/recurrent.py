"""Fast CPU inference for the LSTM encoder: sentences grouped by token length, so the LSTM runs unpacked.

sentence-transformers runs its LSTM module on a packed sequence, which PyTorch steps through one time step at a
time with many small operations, and tokenizes one sentence at a time. Sentences of the same token length need no
padding and no packing, so a batch of them runs through PyTorch's fused (oneDNN) LSTM kernel in one call, and the
mean over all their time steps is the masked mean the Pooling module takes. The result is the same embedding (to
float rounding) in less time; ``eval/bench_speed.py --lstm`` measures it. On the ``torch-bf16`` backend (what
``auto`` picks for an LSTM on a CPU with native bf16) the LSTM runs under ``torch.autocast`` in bfloat16.

Only the layout :func:`sentsim.encoders.build_lstm` makes is run this way (WordEmbeddings over a transformers
tokenizer, LSTM, mean Pooling, Normalize); any other model keeps sentence-transformers' own ``encode``.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
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
        self._rust: Any = None  # a copy of the fast tokenizer's Rust backend, made on first use (False: none)

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
        """The ids WordEmbeddings makes (special tokens included, then cut to the limit), in one tokenizer call.

        A fast (Rust) tokenizer is called directly, on a copy with its own padding and truncation turned off: the
        same ids as the transformers wrapper gives, without building its Python-side batch (a quarter of the
        LSTM's encoding time on STS-B test sentences)."""
        if self._rust is None:
            self._rust = False
            backend = getattr(self.tokenizer, "_tokenizer", None)
            if backend is not None and hasattr(backend, "encode_batch"):
                import copy

                try:
                    rust = copy.deepcopy(backend)
                    rust.no_padding()
                    rust.no_truncation()
                    self._rust = rust
                except Exception:  # an older or unusual tokenizer: the wrapper's call below
                    self._rust = False
        if self._rust:
            fast = getattr(self._rust, "encode_batch_fast", self._rust.encode_batch)  # no offsets, where offered
            ids = [enc.ids for enc in fast(list(texts), add_special_tokens=True)]
        else:
            ids = self.tokenizer(texts, verbose=False)["input_ids"]
        return [row[: self.max_len] or [0] for row in ids]

    def encode(
        self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False, bf16: bool = False
    ) -> np.ndarray:
        """Embeddings of ``texts``, L2-normalised float32 rows. ``bf16``: the LSTM under ``torch.autocast`` in
        bfloat16 (the ``torch-bf16`` backend), the mean over its states and the normalising in fp32."""
        import contextlib

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
        threads = torch.get_num_threads()
        workers = min(threads, len(batches)) if device.type == "cpu" else 1
        bar = tqdm(total=len(batches), desc="Batches", disable=not show_progress_bar)

        def run(parts: list[list[int]], intra_op: int | None) -> None:
            if intra_op is not None:  # this worker thread's own setting (OpenMP's is per thread)
                torch.set_num_threads(intra_op)
            autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with torch.inference_mode():  # grad mode and autocast are per thread: set in each worker
                for part in parts:
                    tokens = torch.tensor([ids[i] for i in part], device=device)
                    with autocast:
                        states = self.lstm.encoder(self.words.emb_layer(tokens))[0]
                    pooled = torch.nn.functional.normalize(states.float().mean(dim=1), p=2, dim=1)  # as encode()
                    out[part] = pooled.cpu().numpy()
                    bar.update(1)

        was_training = self.encoder.training
        self.encoder.eval()
        try:
            if workers < 2:
                run(batches, None)
            else:
                # One batch per core at a time, each on one thread: an LSTM steps through time with products too
                # small to split well over cores, so whole batches side by side go faster (BENCHMARKS.md).
                order = sorted(batches, key=len, reverse=True)  # dealt out largest first, so the shares even out
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for done in [pool.submit(run, order[w::workers], 1) for w in range(workers)]:
                        done.result()
        finally:
            torch.set_num_threads(threads)  # the per-thread settings above can reach shared state (MKL's)
            self.encoder.train(was_training)
            bar.close()
        return out
