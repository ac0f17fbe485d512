"""sentsim.batching.MicroBatcher: concurrent single calls answered by batched calls, each with its own result."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sentsim.batching import MicroBatcher


def test_a_lone_call_is_answered_at_once():
    batcher = MicroBatcher(lambda xs: [x + 1 for x in xs])
    try:
        started = time.perf_counter()
        assert batcher.submit(41) == 42
        assert time.perf_counter() - started < 0.5 and batcher.batches == 1
    finally:
        batcher.close()


def test_concurrent_calls_are_coalesced_and_each_gets_its_own_result():
    sizes: list[int] = []

    def slow_square(xs):
        sizes.append(len(xs))
        time.sleep(0.05)  # while this batch is computed, the others queue up
        return [x * x for x in xs]

    batcher = MicroBatcher(slow_square, max_batch=8)
    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(batcher.submit, range(64)))
        assert results == [x * x for x in range(64)]
        assert sum(sizes) == 64 and max(sizes) <= 8
        assert len(sizes) < 64 / 2  # coalesced: far fewer calls than items
        assert batcher.items == 64 and batcher.batches == len(sizes)
    finally:
        batcher.close()


def test_a_bad_item_fails_only_its_own_call():
    gate = threading.Event()

    def fn(xs):
        gate.wait(5)
        if any(x < 0 for x in xs):
            raise ValueError(f"negative item in {sorted(xs)}")
        return [x * 10 for x in xs]

    batcher = MicroBatcher(fn)
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(batcher.submit, x) for x in (1, -2, 3, 4)]
            time.sleep(0.2)  # let them all queue behind the first
            gate.set()
            outcomes = []
            for f in futures:
                try:
                    outcomes.append(f.result(10))
                except ValueError as exc:
                    outcomes.append(str(exc))
        assert outcomes == [10, "negative item in [-2]", 30, 40]
    finally:
        batcher.close()


def test_a_wrong_result_count_is_an_error_not_a_mix_up():
    batcher = MicroBatcher(lambda xs: [0])
    try:
        assert batcher.submit("a") == 0  # one item, one result: fine
    finally:
        batcher.close()
    bad = MicroBatcher(lambda xs: [])
    try:
        with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
            bad.submit("a")
    finally:
        bad.close()


def test_closed_batcher_refuses_and_bad_size_is_refused():
    batcher = MicroBatcher(lambda xs: xs)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        MicroBatcher(lambda xs: xs, max_batch=0)
