"""Settings: where the lake lives, which catalog it uses, who is writing.

Everything configurable flows through one :class:`Settings` object, filled from arguments
first, then environment variables (``CURATA_LAKE``, ``CURATA_CATALOG_URL``,
``CURATA_AUTHOR``), then discovery (the nearest ``.curata`` folder, git's ``user.name``).
"""

from __future__ import annotations

import getpass
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from curata.errors import NotFound

LAKE_DIRNAME = ".curata"
LAKE_MARKER = "lake.json"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one lake.

    Attributes:
        lake_uri: the lake's root (a local folder path or a URI such as ``s3://bucket/prefix``).
        catalog_url: SQLAlchemy URL of the catalog, or None for the lake's default
            (the catalog URL the lake was created with, else SQLite inside the lake).
        author: default author of commits.
    """

    lake_uri: str
    catalog_url: str | None = None
    author: str | None = None


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names object storage rather than a local path."""
    return "://" in uri and not uri.startswith("file://")


def find_lake(start: Path | None = None) -> Path | None:
    """Walk up from ``start`` (default: the working directory) to the nearest lake, like git."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / LAKE_DIRNAME
        if (candidate / LAKE_MARKER).is_file():
            return candidate
    return None


def normalise_lake_path(path: str) -> str:
    """Accept a lake folder or a folder that holds one (``project/`` for ``project/.curata``)."""
    if is_remote(path):
        return path.rstrip("/")
    p = Path(path).expanduser()
    if not (p / LAKE_MARKER).is_file() and (p / LAKE_DIRNAME / LAKE_MARKER).is_file():
        p = p / LAKE_DIRNAME
    return str(p.resolve())


def resolve_lake_uri(explicit: str | None = None) -> str:
    """Find the lake: ``explicit`` > ``CURATA_LAKE`` > nearest ``.curata`` walking up.

    Raises:
        NotFound: no lake was given and none was found.
    """
    given = explicit or os.environ.get("CURATA_LAKE")
    if given:
        return normalise_lake_path(given)
    found = find_lake()
    if found is None:
        raise NotFound(
            f"No curata lake here: no {LAKE_DIRNAME}/ folder in {Path.cwd()} or any parent.",
            hint="Create one with `curata init`, or point at one with --lake PATH "
            "or the CURATA_LAKE environment variable.",
        )
    return str(found)


def resolve_author(explicit: str | None = None, *, git_user: str | None = None) -> str:
    """Author of a commit: ``explicit`` > ``CURATA_AUTHOR`` > git ``user.name`` > OS user.

    ``git_user`` is git's answer when the caller already asked (asking costs milliseconds).
    """
    if explicit:
        return explicit
    env = os.environ.get("CURATA_AUTHOR")
    if env:
        return env
    return git_user or git_user_name() or _os_user()


def git_user_name() -> str | None:
    """git's ``user.name``, or None."""
    try:
        out = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    name = out.stdout.strip()
    return name if out.returncode == 0 and name else None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def load_settings(lake: str | None = None, author: str | None = None) -> Settings:
    """Resolve settings from arguments, then the environment, then discovery."""
    return Settings(
        lake_uri=resolve_lake_uri(lake),
        catalog_url=os.environ.get("CURATA_CATALOG_URL") or None,
        author=author,
    )
