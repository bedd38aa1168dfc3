"""Errors raised by curata.

Every error curata raises is a :class:`CurataError`. Its families say what kind of thing went
wrong, so callers can catch what they can handle; errors from libraries underneath (Lance,
SQLAlchemy, DuckDB, pyarrow) are translated at the boundary and never leak out.
"""

from __future__ import annotations


class CurataError(Exception):
    """Root of every error curata raises.

    Attributes:
        message: what happened and what to do about it.
        transient: True when retrying the same call may succeed (a busy database, a lost
            connection); False when it cannot without a change of input.
    """

    exit_code = 1
    transient = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n{hint}")

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt without __init__, whose arguments differ by family, so that an error raised
        # in a worker process reaches the run's process whole, message, hint and all.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(
    cls: type[CurataError], args: tuple[object, ...], state: dict[str, object]
) -> Exception:
    err = cls.__new__(cls, *args)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class InvalidInput(CurataError):
    """The input (a file, a table, a name, a predicate, an option) cannot be used as given."""

    exit_code = 2


class NotFound(CurataError):
    """A lake, dataset, version, tag, branch or file does not exist."""

    exit_code = 2


class AlreadyExists(CurataError):
    """Something with that name exists already."""

    exit_code = 2


class Conflict(CurataError):
    """A concurrent writer won, or the operation contradicts the current state."""

    transient = True


class CatalogUnavailable(CurataError):
    """The catalog database could not be reached or is locked for too long."""

    transient = True


class StorageError(CurataError):
    """Reading or writing the lake's data files failed."""


class MissingDependency(CurataError):
    """An optional dependency needed for this feature is not installed."""

    exit_code = 2

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed.",
            hint=f'Install it with: pip install "curata[{extra}]"',
        )
        self.package = package
        self.extra = extra


class QualityGateFailed(CurataError):
    """A quality gate with action `fail` stopped a run."""
