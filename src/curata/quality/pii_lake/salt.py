"""The lake's PII salt: one secret per lake, so ``hash`` and ``pseudonymize`` stay consistent.

The same value hashes to the same output in every redaction of a lake — joins and counts
across datasets and runs keep working — because every redaction uses the salt kept in
``<lake>/secrets/pii_salt`` (created on first use, readable by its owner only). Losing or
replacing the file changes every hash and pseudonym made afterwards; those made before stay
as they are.
"""

from __future__ import annotations

import binascii
import contextlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from curata.config import is_remote
from curata.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from curata.lake import Lake

SALT_PREFIX = "curata-pii-salt-v1:"
SALT_BYTES = 32
SALT_FOLDER = "secrets"
SALT_FILE = "pii_salt"


def lake_salt_path(lake_uri: str) -> Path:
    """Where the salt of the lake at ``lake_uri`` is kept."""
    return Path(lake_uri) / SALT_FOLDER / SALT_FILE


def lake_salt(lake: Lake | str) -> bytes:
    """The lake's salt, created (32 random bytes, mode 0600) if the lake has none yet.

    Two processes creating it at once agree on one salt: the file appears whole, once.

    Args:
        lake: the lake, or its root folder.

    Raises:
        InvalidInput: the lake is in object storage (pass a salt explicitly), or the salt
            file is damaged.
    """
    uri = lake if isinstance(lake, str) else lake.uri
    if is_remote(uri):
        raise InvalidInput(
            f"The lake {uri} is in object storage, where curata keeps no secrets.",
            hint="Pass a salt explicitly: salt=... in Python, --salt-file FILE on the command "
            "line (keep the same salt for every redaction of this lake).",
        )
    path = lake_salt_path(uri)
    if not path.is_file():
        _create(path)
    return read_salt_file(path)


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{SALT_PREFIX}{os.urandom(SALT_BYTES).hex()}\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: keep it
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_salt_file(path: str | os.PathLike[str]) -> bytes:
    """A salt from a file: a lake salt file, or any file whose content (stripped) is the salt.

    Raises:
        NotFound: no such file.
        InvalidInput: the file is empty, unreadable, or a damaged lake salt file.
    """
    path = Path(path)
    try:
        content = path.read_bytes().strip()
    except FileNotFoundError as err:
        raise NotFound(f"Salt file {path} does not exist.") from err
    except OSError as err:
        raise InvalidInput(f"Salt file {path} cannot be read: {err.strerror}.") from err
    prefix = SALT_PREFIX.encode("ascii")
    if content.startswith(prefix):
        try:
            salt = bytes.fromhex(content[len(prefix) :].decode("ascii"))
        except (ValueError, binascii.Error) as err:
            raise InvalidInput(f"Salt file {path} is damaged: its salt is not hex.") from err
        if len(salt) != SALT_BYTES:
            raise InvalidInput(f"Salt file {path} is damaged: its salt is not {SALT_BYTES} bytes.")
        return salt
    if not content:
        raise InvalidInput(f"Salt file {path} is empty.")
    return content
