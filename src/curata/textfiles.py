"""Text files users write for curata (pipelines, rules, term groups, recognizers), read with
errors that name the file and say what to do."""

from __future__ import annotations

from pathlib import Path

from curata.errors import InvalidInput, NotFound


def read_text_file(path: str | Path, what: str, *, example: str | None = None) -> str:
    """The UTF-8 text of the ``what`` file at ``path`` (e.g. ``what="rules"``).

    Args:
        path: the file.
        what: what the file holds, for messages ("Pipeline file x.yaml does not exist.").
        example: a short example of such a file, shown as the hint when it is missing.

    Raises:
        NotFound: nothing is at ``path``.
        InvalidInput: ``path`` is a folder, cannot be read, or is not UTF-8 text (the message
            gives the line of the first bad byte).

    >>> read_text_file("no-such.dqdl", "rules")
    Traceback (most recent call last):
    ...
    curata.errors.NotFound: Rules file no-such.dqdl does not exist.
    """
    p = Path(path)
    label = f"{what[:1].upper()}{what[1:]} file"
    if p.is_dir():
        raise InvalidInput(f"{p} is a folder, not a {what} file.", hint=example)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as err:
        raise NotFound(f"{label} {p} does not exist.", hint=example) from err
    except OSError as err:
        raise InvalidInput(f"Cannot read the {what} file {p}: {err.strerror or err}.") from err
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InvalidInput(
            f"{p}:{line}: not UTF-8 text (byte {raw[err.start]:#x}).",
            hint=f"Save the {what} file as UTF-8.",
        ) from err
