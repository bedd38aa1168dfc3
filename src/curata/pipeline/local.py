"""Executors: where :func:`~curata.pipeline.executor.apply_steps` runs for each batch.

``local`` runs it in this process, or — when a step is CPU-heavy and more than one worker is
allowed — in a pool of worker processes (spawned, not forked: Lance's threads do not survive a
fork), with a bounded number of batches in flight so memory stays bounded; the step caches'
lookup indexes are built once, in files the workers share. ``ray`` sends the same batches to
a pool of Ray actors (:mod:`curata.pipeline.ray_executor`), also a bounded number in flight.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from curata.pipeline.executor import BatchResult, PlannedStep, Segment

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pyarrow as pa


PARENT_CHECK_SECONDS = 0.5


def default_workers(steps: list[PlannedStep]) -> int:
    """Cores when a step is CPU-heavy, else 1 (a pool would only add copying)."""
    if any(p.step.parallel for p in steps):
        return max(1, os.cpu_count() or 1)
    return 1


def map_batches(
    segment: Segment, source: Iterator[pa.Table], executor: str, workers: int | None
) -> Iterator[BatchResult]:
    """Apply the segment to every batch of ``source``, yielding results in input order."""
    if executor == "ray":
        from curata.pipeline.ray_executor import ray_map_batches

        yield from ray_map_batches(segment, source)
        return
    n = workers if workers is not None else default_workers(segment.steps)
    if n <= 1 or not segment.steps:
        for batch in source:
            yield segment.apply(batch)
        return
    yield from _pool_map(segment, source, n)


def _pool_map(segment: Segment, source: Iterator[pa.Table], workers: int) -> Iterator[BatchResult]:
    with _shared_cache_indexes(segment):
        yield from _pool_map_batches(segment, source, workers)


@contextmanager
def _shared_cache_indexes(segment: Segment) -> Iterator[None]:
    """Build the lookup index of each step cache once, in files the workers map, instead of
    in every worker (8 bytes a cached row per worker: 0.3 GiB each over 4 steps x 10M rows)."""
    caches = [p.cache for p in segment.steps if p.cache is not None]
    with tempfile.TemporaryDirectory(prefix="curata-cache-index-") as folder:
        try:
            for n, cache in enumerate(caches):  # two steps may have one fingerprint
                cache.share_index(os.path.join(folder, str(n)))
            yield
        finally:
            for cache in caches:
                cache.unshare_index()


def _pool_map_batches(
    segment: Segment, source: Iterator[pa.Table], workers: int
) -> Iterator[BatchResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(segment, os.getpid()),
    ) as pool:
        in_flight: deque[Future[BatchResult]] = deque()
        for batch in source:
            in_flight.append(pool.submit(_work, batch))
            if len(in_flight) >= 2 * workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


_worker_segment: Segment | None = None
_worker_error: Exception | None = None


def _init_worker(segment: Segment, parent: int) -> None:
    # Each worker process keeps its own copy of the segment (steps, caches), set once.
    global _worker_segment, _worker_error  # noqa: PLW0603
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _worker_segment = segment
    try:
        segment.prepare()
    except Exception as err:  # an initializer's error only breaks the pool: report it with work
        _worker_error = err


def _exit_with_parent(parent: int) -> None:
    """End this worker when the run's process ``parent`` is gone (killed with SIGKILL, say,
    maybe before this worker even started): the pool's queues stay open in its workers, so
    they would otherwise wait for work forever."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _work(batch: pa.Table) -> BatchResult:
    if _worker_error is not None:
        raise _worker_error
    assert _worker_segment is not None
    return _worker_segment.apply(batch)
