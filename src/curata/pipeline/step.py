"""The step protocol and the registry of steps.

A step transforms Arrow record batches. It has a registry ``name``, validated ``params``
(pydantic), a code ``version``, and a **fingerprint** (name + version + params) that keys its
cached results: the same content through the same fingerprint is never computed twice.

A **row-wise** step computes each output row from one input row only, which is what lets the
executor cache results per row. The executor passes row-wise steps a ``_row`` column (the input
row's position); a row-wise step must return either as many rows as it got, in order (a map),
or keep ``_row`` on every output row (a filter, or an expansion such as chunking).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from curata.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

ROW_COLUMN = "_row"
ENTRY_POINT_GROUP = "curata.steps"


class NoParams(BaseModel):
    """Parameters of a step that takes none."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=BaseModel)


class Step(Generic[P]):
    """Base class of pipeline steps. Subclass it, set ``name`` and ``Params``, and implement
    :meth:`process`; register it with :func:`register_step` or the ``curata.steps`` entry point.

    >>> class Upper(Step):  # doctest: +SKIP
    ...     name = "upper"
    ...     class Params(BaseModel):
    ...         column: str
    ...     def process(self, batch):
    ...         ...
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Params: ClassVar[type[BaseModel]] = NoParams
    params: P
    #: whether output rows depend on one input row each (enables per-row caching)
    row_wise: ClassVar[bool] = True
    #: whether the step is worth running in worker processes (CPU-heavy per row)
    parallel: ClassVar[bool] = False
    #: the folder of the lake the pipeline runs on, set by the runner before anything else
    #: (None outside a pipeline); steps that keep per-lake state, such as a salt, read it there
    lake_uri: str | None = None

    def __init__(self, params: BaseModel | dict[str, Any] | None = None, *, id: str | None = None):
        try:
            validated = (
                params
                if isinstance(params, self.Params)
                else self.Params.model_validate(params or {})
            )
        except ValidationError as err:
            raise InvalidInput(f"Invalid params for step {self.name!r}: {_describe(err)}") from err
        self.params = validated  # type: ignore[assignment]  # Params is the class of P
        self.id = id or self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.fingerprint[:12]}>"

    @property
    def is_row_wise(self) -> bool:
        """Whether this instance is row-wise (some steps decide from their params)."""
        return self.row_wise

    def code_version(self) -> str:
        """Version of the step's code that its results depend on."""
        return self.version

    @property
    def fingerprint(self) -> str:
        """Hash of name, code version and params: equal fingerprints give equal results."""
        payload = json.dumps(
            {
                "step": self.name,
                "version": self.code_version(),
                "params": self.params.model_dump(mode="json"),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def prepare(self) -> None:
        """Load what :meth:`process` needs (a model, a compiled query); runs once per worker."""

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table:
        """Transform one batch."""
        raise NotImplementedError

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]] | None:
        """Output column -> the input columns it derives from, when the step knows."""
        return None


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "params"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


_REGISTRY: dict[str, type[Step[Any]]] = {}
_ENTRY_POINTS_LOADED = False


def register_step(cls: type[Step[Any]]) -> type[Step[Any]]:
    """Add a step class to the registry (usable as a decorator)."""
    if not cls.name:
        raise InvalidInput(f"Step class {cls.__name__} has no name.")
    _REGISTRY[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED  # noqa: PLW0603 - the registry is filled once per process
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    import curata.pipeline.builtin  # noqa: F401 - registers the built-in steps

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as err:  # a broken plug-in must not break curata
            raise InvalidInput(
                f"Step plug-in {ep.name!r} ({ep.value}) failed to load: {err}"
            ) from err
        if not (isinstance(cls, type) and issubclass(cls, Step)):
            raise InvalidInput(f"Step plug-in {ep.name!r} ({ep.value}) is not a Step subclass.")
        _REGISTRY.setdefault(cls.name or ep.name, cls)


def registered_steps() -> dict[str, type[Step[Any]]]:
    """Every registered step, built-in and from plug-ins, by name."""
    _load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def get_step(name: str) -> type[Step[Any]]:
    """The step class registered as ``name``.

    Raises:
        InvalidInput: no such step; the message lists the registered ones.
    """
    steps = registered_steps()
    if name not in steps:
        import difflib

        close = difflib.get_close_matches(name, list(steps), n=3)
        hint = f"Did you mean {', '.join(close)}? " if close else ""
        raise InvalidInput(
            f"Unknown step {name!r}.", hint=f"{hint}Registered steps: {', '.join(steps)}."
        )
    return steps[name]


def make_step(
    name: str, params: dict[str, Any] | None = None, *, id: str | None = None
) -> Step[Any]:
    """Instantiate a registered step with validated params."""
    return get_step(name)(params, id=id)
