"""Pipelines: steps over Arrow batches, incremental by row content, published atomically.

>>> from curata.pipeline import run_pipeline  # doctest: +SKIP
>>> run_pipeline(curata.open(), "clean-tickets.yaml").outputs  # doctest: +SKIP
['tickets_clean@3']
"""

from curata.pipeline.run import RunResult, run_pipeline
from curata.pipeline.spec import PipelineSpec, load_pipeline, parse_pipeline
from curata.pipeline.step import Step, get_step, make_step, register_step, registered_steps

__all__ = [
    "PipelineSpec",
    "RunResult",
    "Step",
    "get_step",
    "load_pipeline",
    "make_step",
    "parse_pipeline",
    "register_step",
    "registered_steps",
    "run_pipeline",
]
