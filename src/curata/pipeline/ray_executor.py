"""The ``ray`` executor: the same per-batch work, run by Ray Data's ``map_batches``.

Each batch's result (captured outputs, stats, rejected rows) travels back as one pickled
value, so the outputs are exactly what the local executor gives. Ray is an optional extra
(``pip install "curata[ray]"``); a local Ray is started when none is running, with as many
CPUs as this machine has (``RAY_ADDRESS`` points at a cluster instead).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from curata.errors import CurataError, MissingDependency

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.pipeline.executor import BatchResult, Segment

RESULT_COLUMN = "result"


class _ApplySegment:
    """Ray actor-style callable: prepares the steps once per worker, then applies them."""

    def __init__(self, segment: Segment) -> None:
        segment.prepare()
        self.segment = segment

    def __call__(self, batch: pa.Table) -> dict[str, Any]:
        import numpy as np

        result: BatchResult | CurataError
        try:
            result = self.segment.apply(batch.drop_columns(["__seq"]))
        except CurataError as err:  # raised by the driver as it is, not wrapped by Ray
            result = err
        seq = batch.column("__seq")[0].as_py()
        return {
            "__seq": np.array([seq]),
            RESULT_COLUMN: np.array([pickle.dumps(result)], dtype=object),
        }


def require_ray() -> None:
    """Import Ray, or say how to install it.

    Raises:
        MissingDependency: Ray is not installed.
    """
    try:
        import ray.data  # noqa: F401
    except ImportError as err:
        raise MissingDependency("ray", "ray", "The ray executor") from err


def ray_map_batches(segment: Segment, source: Iterator[pa.Table]) -> Iterator[BatchResult]:
    """Apply the segment to every batch with Ray Data, yielding results in input order."""
    require_ray()
    import pyarrow as pa
    import ray
    import ray.data

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    tables = [
        t.append_column("__seq", pa.array([n] * t.num_rows, pa.int64()))
        for n, t in enumerate(source)
    ]
    if not tables:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    dataset = ray.data.from_arrow(tables).map_batches(
        _ApplySegment,
        fn_constructor_args=(segment,),
        batch_format="pyarrow",
        batch_size=None,
        compute=ray.data.ActorPoolStrategy(
            size=max(1, int(ray.available_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        ),
    )
    results: dict[int, BatchResult] = {}
    for row in dataset.iter_rows():
        result = pickle.loads(row[RESULT_COLUMN])
        if isinstance(result, CurataError):
            raise result
        results[int(row["__seq"])] = result
    for seq in sorted(results):
        yield results[seq]
