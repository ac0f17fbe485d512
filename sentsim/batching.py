"""Micro-batching: concurrent single requests answered by one batched call.

A transformer encodes 32 short questions in one forward pass far faster than in 32 passes, and a chatbot server
gets questions one at a time from many users at once. :class:`MicroBatcher` runs one worker thread: each request
thread hands its item over and waits; the worker takes every item queued at that moment (up to ``max_batch``),
makes one call for all of them, and hands each thread its own result. It never waits for a batch to fill, so a
lone request pays nothing; under load, requests that arrive while a batch is computed form the next one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Coalesce concurrent :meth:`submit` calls into calls of ``fn`` on lists of items.

    Args:
        fn: Takes a list of items and returns one result per item, in order.
        max_batch: The most items in one call.
        name: The worker thread's name.

    When ``fn`` raises on a batch of several items, each item is retried alone, so one bad item fails only its own
    request, with its own error.

    Example:
        >>> batcher = MicroBatcher(lambda xs: [x * x for x in xs])
        >>> batcher.submit(7)
        49
        >>> batcher.close()
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch: int = 32, name: str = "sentsim-batcher"):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, not {max_batch}")
        self.fn = fn
        self.max_batch = max_batch
        self.batches = 0  # calls of fn made, for tests and logs
        self.items = 0
        self._queue: queue.SimpleQueue[tuple[T, Future] | None] = queue.SimpleQueue()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def submit(self, item: T, timeout: float | None = None) -> R:
        """``fn([item])[0]``, computed together with whatever other items are waiting; raises what ``fn`` raised."""
        if self._closed:
            raise RuntimeError("this MicroBatcher is closed")
        future: Future = Future()
        self._queue.put((item, future))
        return future.result(timeout)

    def close(self) -> None:
        """Stop the worker once the items already queued are answered."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._worker.join(timeout=30)

    # ------------------------------------------------------------------ the worker
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list[tuple[T, Future]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = list(self.fn(items))
            if len(results) != len(items):
                raise RuntimeError(f"the batched function returned {len(results)} results for {len(items)} items")
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:  # find which item failed: each gets its own answer or its own error
                self._answer([one])
            return
        self.batches += 1
        self.items += len(items)
        for (_, future), result in zip(batch, results):
            future.set_result(result)
