"""The ``ray`` executor: the same per-batch work, streamed through a pool of Ray actors.

Each actor prepares the segment's steps once and then applies them to the batches it is sent,
exactly as a worker of the local executor does, so the outputs are the local executor's. The
driver keeps a bounded window of batches in flight (two per actor): it sends the next batch
only once the oldest result is back, and yields results in input order as they arrive. Memory
in the driver is bounded, outputs are written and progress advances while the run goes on.

Why not Ray Data: ``map_batches`` needs a ``Dataset``, and none of Ray Data's constructors
takes an iterator that the driver feeds as it goes (``from_arrow`` and ``from_items`` take the
whole input); reading the input on the workers (``read_lance``) would cover only a dataset
input, not imported files nor a segment fed by the one before, and would bypass the input's
row count and schema the run records. A window over actors needs only Ray Core.

Ray is an optional extra (``pip install "curata[ray]"``); a local Ray is started when none is
running, with as many CPUs as this machine has (``RAY_ADDRESS`` points at a cluster instead).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from curata.errors import CurataError, MissingDependency

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.pipeline.executor import BatchResult, Segment

BATCHES_PER_ACTOR = 2


class SegmentWorker:
    """A Ray actor: prepares the steps once, then applies them to each batch it receives."""

    def __init__(self, segment: Segment) -> None:
        segment.prepare()
        self.segment = segment

    def apply(self, batch: pa.Table) -> BatchResult | CurataError:
        """The batch's result, or the curata error it raised (for the driver to raise as it
        is, not wrapped in Ray's task error)."""
        try:
            return self.segment.apply(batch)
        except CurataError as err:
            return err


def require_ray() -> None:
    """Import Ray, or say how to install it.

    Raises:
        MissingDependency: Ray is not installed.
    """
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise MissingDependency("ray", "ray", "The ray executor") from err


def _start_ray(ray: Any) -> None:
    """Start (or join, with ``RAY_ADDRESS``) Ray without the notices that are not the user's
    business: Ray's start-up warnings (such as its token authentication being on), and
    Lance's warning about fork, which the processes Ray forks and at once replaces by its
    own programs set off (Ray's workers are started fresh, not forked from this process)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="lance is not fork-safe", category=UserWarning)
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)


def ray_map_batches(segment: Segment, source: Iterator[pa.Table]) -> Iterator[BatchResult]:
    """Apply the segment to every batch on Ray actors, yielding results in input order.

    At most ``BATCHES_PER_ACTOR`` batches per actor are in flight at a time.

    Raises:
        CurataError: a step or gate failed the run (the error the step raised).
    """
    require_ray()
    import ray

    batches = _unless_empty(source)
    if batches is None:
        return
    if not ray.is_initialized():
        _start_ray(ray)
    # Actors start once there is a batch and end before the last result is handed on. A
    # segment gets its first batch only from the last result of the one before (that one or
    # this one needs the whole input), so one segment at a time holds CPUs: starting earlier
    # would leave the segment before waiting for CPUs that this one holds.
    actors = _start_actors(segment)
    in_flight: deque[Any] = deque()
    try:
        for n, batch in enumerate(batches):
            in_flight.append(actors[n % len(actors)].apply.remote(batch))
            if len(in_flight) >= BATCHES_PER_ACTOR * len(actors):
                yield _result(in_flight.popleft())
        while in_flight:
            result = _result(in_flight.popleft())
            if not in_flight:
                _stop(actors)
            yield result
    finally:
        _stop(actors)


def _start_actors(segment: Segment) -> list[Any]:
    """One actor per CPU of the Ray cluster, each holding one CPU while it lives."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    worker = ray.remote(num_cpus=1)(SegmentWorker)
    return [worker.remote(segment) for _ in range(max(1, cpus))]


def _unless_empty(source: Iterator[pa.Table]) -> Iterator[pa.Table] | None:
    """The batches of ``source``, or None when it has none (its first batch is read)."""
    first = next(source, None)
    return None if first is None else itertools.chain([first], source)


def _result(ref: Any) -> BatchResult:
    import ray

    result: BatchResult | CurataError = ray.get(ref)
    if isinstance(result, CurataError):
        raise result
    return result


def _stop(actors: list[Any]) -> None:
    """End the actors now rather than when their handles are collected, so that their CPUs
    are free for the next segment (``ray.kill`` of an ended actor does nothing)."""
    import ray

    for actor in actors:
        ray.kill(actor)
