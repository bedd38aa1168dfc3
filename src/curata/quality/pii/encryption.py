"""Reversible redaction: AES-256-GCM tokens in the text, a key file to read them back.

A value is replaced by ``⟦enc:ENTITY:TOKEN⟧``, where TOKEN is base64url of a random 96-bit
nonce followed by the ciphertext and its tag. The entity name is authenticated with the value
(GCM's associated data), so a token moved to another label does not decrypt. Whoever holds
the key file can restore the originals with :func:`reveal_text`; nobody else can.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Any

from curata.errors import AlreadyExists, InvalidInput, MissingDependency, NotFound

KEY_PREFIX = "curata-pii-key-v1:"
_MAKE_KEY = "Create one with `curata pii keygen FILE` (generate_key_file(path) in Python)."
KEY_BYTES = 32
NONCE_BYTES = 12
TOKEN = re.compile(r"⟦enc:([A-Z][A-Z0-9_]{0,63}):([A-Za-z0-9_\-]{1,65536})⟧")

KeySource = bytes | str | os.PathLike[str]


def _aesgcm(key: bytes) -> Any:
    """An AES-GCM cipher for ``key``, importing ``cryptography`` on first use."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as err:
        raise MissingDependency("cryptography", "pii", "The encrypt operator") from err
    return AESGCM(key)


def generate_key_file(path: str | os.PathLike[str]) -> Path:
    """Create a new random key file for the ``encrypt`` operator, readable by its owner only.

    Args:
        path: where to write it; it must not exist (a key is never overwritten, since the
            texts encrypted with it could not be read back).

    Returns:
        The path written.

    Raises:
        AlreadyExists: a file exists at ``path``.
    """
    path = Path(path)
    secret = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as err:
        raise AlreadyExists(
            f"Key file {path} exists already.",
            hint="Keep it (texts encrypted with it need it) or choose another path.",
        ) from err
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{KEY_PREFIX}{secret}\n")
    return path


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read a key file written by :func:`generate_key_file`.

    Raises:
        NotFound: there is no file at ``path``.
        InvalidInput: the file is not a curata key file.
    """
    path = Path(path)
    try:
        content = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as err:
        raise NotFound(
            f"Key file {path} does not exist.",
            hint=_MAKE_KEY,
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"Key file {path} cannot be read as a curata key: {err}") from err
    if not content.startswith(KEY_PREFIX):
        raise InvalidInput(
            f"{path} is not a curata key file (it should start with {KEY_PREFIX!r}).",
            hint=_MAKE_KEY,
        )
    try:
        key = base64.urlsafe_b64decode(content[len(KEY_PREFIX) :])
    except (binascii.Error, ValueError) as err:
        raise InvalidInput(f"Key file {path} is damaged: its key is not base64.") from err
    if len(key) != KEY_BYTES:
        raise InvalidInput(f"Key file {path} is damaged: its key is not {KEY_BYTES} bytes.")
    return key


def resolve_key(key: KeySource | None) -> bytes:
    """The key bytes from raw bytes or a key file path."""
    if key is None:
        raise InvalidInput(
            "The encrypt operator needs a key.",
            hint="Pass key=load_key(path) or key=path, after generate_key_file(path) once.",
        )
    if isinstance(key, bytes):
        if len(key) != KEY_BYTES:
            raise InvalidInput(f"An encryption key is {KEY_BYTES} bytes, got {len(key)}.")
        return key
    return load_key(key)


def encrypt_value(value: str, entity: str, key: bytes) -> str:
    """The token that replaces ``value`` in the text."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aesgcm(key).encrypt(nonce, value.encode("utf-8"), entity.encode("ascii"))
    token = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"⟦enc:{entity}:{token}⟧"


def reveal_text(text: str, key: KeySource) -> str:
    """Put back the values that the ``encrypt`` operator replaced with tokens.

    Args:
        text: a text produced by ``redact_text(..., "encrypt", key=...)`` (other redactions
            in it stay as they are).
        key: the key used to encrypt: bytes from :func:`load_key`, or the key file's path.

    Returns:
        The text with every token replaced by its original value.

    Raises:
        InvalidInput: a token does not decrypt with this key (another key, or an altered token).
        NotFound: the key file does not exist.
    """
    cipher = _aesgcm(resolve_key(key))
    from cryptography.exceptions import InvalidTag

    def decrypt(match: re.Match[str]) -> str:
        entity, token = match.group(1), match.group(2)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        try:
            plain: bytes = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], entity.encode())
        except (InvalidTag, ValueError) as err:  # ValueError: too short to hold a nonce and tag
            raise InvalidInput(
                f"An encrypted {entity} value at offset {match.start()} does not decrypt with "
                "this key.",
                hint="Use the key file the text was encrypted with; the token may also be damaged.",
            ) from err
        return plain.decode("utf-8")

    return TOKEN.sub(decrypt, text)
