"""Pipeline files: YAML validated with pydantic, errors that name the file, line and field.

Minimal shape::

    name: clean-tickets
    input: tickets@prod
    steps:
      - step: sql
        params: {query: "SELECT id, lower(text) AS text FROM batch"}
    output: tickets_clean
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from curata.errors import InvalidInput
from curata.lake.models import KINDS
from curata.lake.refs import parse_ref, validate_name
from curata.textfiles import read_text_file

GateAction = Literal["fail", "quarantine", "warn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@contextmanager
def _field_error() -> Iterator[None]:
    """Re-raise curata's InvalidInput as the ValueError with which pydantic names the field."""
    try:
        yield
    except InvalidInput as err:
        raise ValueError(err.message) from err


class FilesInput(_Strict):
    """Files imported as the pipeline's input (Parquet, CSV or JSONL)."""

    files: str = Field(description="a file, a folder, or a glob such as data/*.jsonl")
    format: str | None = Field(None, description="parquet, csv or jsonl (default: by extension)")


class DatasetInput(_Strict):
    """A dataset version as the pipeline's input."""

    dataset: str = Field(description="a reference: tickets, tickets@prod, tickets@7")

    @field_validator("dataset")
    @classmethod
    def _ref(cls, value: str) -> str:
        with _field_error():
            parse_ref(value)
        return value


def _input_kind(value: Any) -> str:
    files = isinstance(value, FilesInput) or (isinstance(value, dict) and "files" in value)
    return "files" if files else "dataset"


# Tagged by the keys given, so a mistake in one form is not reported as the other form's.
InputSpec = Annotated[
    Annotated[DatasetInput, Tag("dataset")] | Annotated[FilesInput, Tag("files")],
    Discriminator(_input_kind),
]


class StepSpec(_Strict):
    """One step of a pipeline."""

    step: str = Field(description="registered step name: sql, python, rename, select, cast, ...")
    id: str | None = Field(None, description="unique id within the pipeline (default: the name)")
    params: dict[str, Any] = Field(default_factory=dict)
    on_error: GateAction = Field(
        "fail",
        description="what a row that makes the step raise does: fail the run, "
        "quarantine the row, or warn and drop it",
    )
    cache: bool = Field(True, description="reuse per-row results of earlier runs (row-wise steps)")


class OutputSpec(_Strict):
    """A dataset the pipeline publishes."""

    dataset: str
    after: str | None = Field(
        None, description="id of the step whose result to publish (default: last)"
    )
    mode: Literal["overwrite", "append", "upsert"] = "overwrite"
    key: str | None = None
    kind: str = "records"

    @field_validator("dataset")
    @classmethod
    def _name(cls, value: str) -> str:
        with _field_error():
            return validate_name(value)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        with _field_error():
            return None if value is None else validate_name(value, "key column")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"Unknown dataset kind {value!r}. Kinds: {', '.join(KINDS)}.")
        return value


class GateSpec(_Strict):
    """A check on rows: rows matching ``where`` fail it, and ``action`` says what happens."""

    name: str
    where: str = Field(description="SQL predicate over the rows; matching rows fail the gate")
    action: GateAction = "fail"
    after: str | None = Field(None, description="step id to check after (default: the final rows)")


class PipelineSpec(_Strict):
    """A pipeline: input, steps, outputs, gates."""

    name: str
    description: str = ""
    input: InputSpec
    steps: list[StepSpec] = Field(default_factory=list)
    outputs: list[OutputSpec] = Field(default_factory=list)
    gates: list[GateSpec] = Field(default_factory=list)
    quarantine: str | None = Field(None, description="dataset for quarantined rows")

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("input"), str):
            data["input"] = {"dataset": data["input"]}
        if "output" in data:
            if "outputs" in data:
                raise ValueError("give either `output` or `outputs`, not both")
            out = data.pop("output")
            data["outputs"] = [{"dataset": out} if isinstance(out, str) else out]
        return data

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        if not self.outputs:
            raise ValueError("a pipeline needs at least one output (`output: NAME`)")
        ids: list[str] = []
        for spec in self.steps:
            sid = spec.id or spec.step
            if sid in ids and spec.id is not None:  # --recompute and `after:` name one step
                raise ValueError(f"step id {sid!r} is used twice")
            if sid in ids:
                sid = f"{sid}-{len(ids) + 1}"
            ids.append(sid)
            spec.id = sid
        names = [out.dataset for out in self.outputs]
        for out in self.outputs:
            if names.count(out.dataset) > 1:
                raise ValueError(f"output {out.dataset!r} is listed twice")
            if out.after is not None and out.after not in ids:
                raise ValueError(f"output {out.dataset!r}: no step with id {out.after!r}")
            if out.mode == "upsert" and not out.key:
                raise ValueError(f"output {out.dataset!r}: mode upsert needs a key")
        for gate in self.gates:
            if gate.after is not None and gate.after not in ids:
                raise ValueError(f"gate {gate.name!r}: no step with id {gate.after!r}")
        if self.quarantine is not None:
            with _field_error():
                validate_name(self.quarantine, "quarantine dataset name")
        if self.quarantine_dataset in names:  # its rows would replace the output's
            raise ValueError(
                f"the quarantine dataset {self.quarantine_dataset!r} is also an output; "
                "name another with `quarantine:`"
            )
        return self

    @property
    def quarantine_dataset(self) -> str:
        """Where quarantined rows go."""
        return self.quarantine or f"{self.outputs[0].dataset}_quarantine"


class LoadedPipeline(BaseModel):
    """A validated pipeline and where it came from."""

    spec: PipelineSpec
    path: str | None = None
    digest: str


def load_pipeline(path: str | Path) -> LoadedPipeline:
    """Read and validate a pipeline file.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: YAML syntax or a field is wrong; the message gives file, line and field.
    """
    import yaml

    p = Path(path)
    text = read_text_file(p, "pipeline")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise InvalidInput(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from err
    if not isinstance(data, dict):
        raise InvalidInput(f"{p}: a pipeline file is a mapping with name, input, steps, output.")
    spec = parse_pipeline(data, source=str(p), node=node)
    return LoadedPipeline(spec=spec, path=str(p), digest=hashlib.sha256(text.encode()).hexdigest())


def parse_pipeline(
    data: dict[str, Any], *, source: str = "<pipeline>", node: Any = None
) -> PipelineSpec:
    """Validate a pipeline given as a dict (from YAML or Python), including each step's params.

    Raises:
        InvalidInput: naming ``source``, the line (when ``node`` is the YAML tree) and the field.
    """
    from curata.pipeline.step import get_step

    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        if loc[:1] == ("input",) and len(loc) > 2:
            loc = (loc[0], *loc[2:])  # drop the tag of the input's form
        raise InvalidInput(f"{_where(source, node, loc)}: {_field(loc)}: {first['msg']}") from err
    for index, step in enumerate(spec.steps):
        loc = ("steps", index)
        try:
            cls = get_step(step.step)
        except InvalidInput as err:
            raise InvalidInput(
                f"{_where(source, node, (*loc, 'step'))}: {err.message}", hint=err.hint
            ) from err
        try:
            cls.Params.model_validate(step.params)
        except ValidationError as err:
            first = err.errors()[0]
            ploc = (*loc, "params", *first["loc"])
            raise InvalidInput(
                f"{_where(source, node, ploc)}: {_field(ploc)}: {first['msg']}"
            ) from err
    return spec


def _field(loc: tuple[Any, ...]) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not parts:
            parts.append(str(item))
        else:
            parts.append(f".{item}")
    return "".join(parts) or "pipeline"


def _where(source: str, node: Any, loc: tuple[Any, ...]) -> str:
    """``file:line`` of the deepest YAML node along ``loc`` that exists."""
    line = _line(node, loc)
    return f"{source}:{line}" if line else source


def _line(node: Any, loc: tuple[Any, ...]) -> int | None:
    import yaml

    if node is None:
        return None
    best: int = node.start_mark.line + 1
    current = node
    for key in loc:
        if isinstance(current, yaml.MappingNode) and isinstance(key, int):
            continue  # `output: {dataset: ...}`, a mapping standing for a list of one
        if isinstance(current, yaml.MappingNode):
            match = next((v for k, v in current.value if k.value == key), None)
            if match is None and key == "outputs":  # the short form `output: NAME`
                match = next((v for k, v in current.value if k.value == "output"), None)
            if match is None:
                key_node = next((k for k, _ in current.value if k.value == key), None)
                return int(key_node.start_mark.line) + 1 if key_node else best
            current = match
        elif isinstance(current, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(current.value):
                return best
            current = current.value[key]
        else:
            return best
        best = int(current.start_mark.line) + 1
    return best
