"""Options shared by commands, and access to the lake they name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import curata

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AuthorOpt = Annotated[
    str | None,
    typer.Option(
        "--author",
        envvar="CURATA_AUTHOR",
        help="Author of the commit (default: git user.name, else the OS user).",
        show_envvar=True,
    ),
]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="Commit message.")]
BranchOpt = Annotated[str, typer.Option("--branch", "-b", help="Branch to write to.")]


class LakeContext:
    """What the root command collected: where the lake is. Opened on first use."""

    def __init__(self, lake_path: str | None) -> None:
        self.lake_path = lake_path
        self._lake: curata.Lake | None = None

    def lake(self, author: str | None = None) -> curata.Lake:
        """Open the lake (``--lake`` > ``CURATA_LAKE`` > nearest ``.curata``)."""
        import curata

        if self._lake is None:
            self._lake = curata.open(self.lake_path, author=author)
        return self._lake

    def close(self) -> None:
        """Release the catalog connection."""
        if self._lake is not None:
            self._lake.close()


def lake_of(ctx: typer.Context, author: str | None = None) -> curata.Lake:
    """The lake for this invocation."""
    state = ctx.find_root().obj
    assert isinstance(state, LakeContext)
    return state.lake(author)
