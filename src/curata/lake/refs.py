"""The one parser for dataset references, used by every command and API.

Forms:

* ``name``                 the head of the ``main`` branch
* ``name@7``               version 7
* ``name@prod``            the version tagged ``prod`` (failing a tag, the head of branch ``prod``)
* ``name@branch:exp``      the head of branch ``exp``
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curata.errors import InvalidInput

MAIN = "main"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}$")


def validate_name(name: str, what: str = "dataset name") -> str:
    """Check a dataset name; returns it unchanged.

    Raises:
        InvalidInput: empty, too long, containing path separators, ``..``, spaces,
            ``@`` or ``:``, or not starting with a letter or digit.
    """
    if not name or not _NAME.match(name) or ".." in name:
        rules = (
            "Use 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit; "
            "no spaces, '/', '..', '@' or ':'."
        )
        base, at, _ = name.partition("@")
        if at and "dataset" in what and _NAME.match(base) and ".." not in base:  # a reference
            raise InvalidInput(
                f"Invalid {what} {name!r}: it names a version of {base!r}.",
                hint=f"Give the name ({base}). {rules}",
            )
        raise InvalidInput(f"Invalid {what} {name!r}.", hint=rules)
    return name


def validate_label(label: str, what: str) -> str:
    """Check a tag or branch name (may contain ``/``, must not read as a version: ``7``, ``v7``)."""
    # "NAME@v7" means version 7, so a tag "v7" could be set but never read back.
    as_version = label.isdigit() or (label[:1] == "v" and label[1:].isdigit())
    if not label or not _LABEL.match(label) or ".." in label or as_version:
        raise InvalidInput(
            f"Invalid {what} {label!r}.",
            hint="Use letters, digits, '_', '-', '.' or '/', starting with a letter or digit; "
            "not a version number such as 7 or v7 (write v7.0 or release-7).",
        )
    return label


@dataclass(frozen=True)
class Ref:
    """A parsed reference to one version of a dataset.

    Exactly one of ``version``, ``tag`` and ``branch`` is set; a bare name means branch main.
    """

    name: str
    version: int | None = None
    tag: str | None = None
    branch: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.tag is not None:
            return f"{self.name}@{self.tag}"
        if self.branch is not None and self.branch != MAIN:
            return f"{self.name}@branch:{self.branch}"
        return self.name


def parse_ref(text: str) -> Ref:
    """Parse ``name``, ``name@7``, ``name@TAG`` or ``name@branch:NAME``.

    >>> parse_ref("tickets@branch:fix")
    Ref(name='tickets', version=None, tag=None, branch='fix')

    Raises:
        InvalidInput: the text is not a reference.
    """
    text = text.strip()
    name, sep, at = text.partition("@")
    validate_name(name)
    if not sep:
        return Ref(name=name, branch=MAIN)
    if not at:
        raise InvalidInput(f"Reference {text!r} ends with '@'.", hint=_FORMS)
    if at.startswith("branch:"):
        return Ref(name=name, branch=validate_label(at[len("branch:") :], "branch name"))
    if at.isdigit():
        return Ref(name=name, version=int(at))
    if at.startswith("v") and at[1:].isdigit():
        return Ref(name=name, version=int(at[1:]))
    return Ref(name=name, tag=validate_label(at, "tag"))


def coerce_ref(name: str, ref: Ref | str | int | None) -> Ref:
    """Turn the ``ref`` argument of a Dataset method into a :class:`Ref` of dataset ``name``.

    ``None`` (or ``name`` itself) is the head of main; an int a version; a string anything
    after the ``@`` (``"prod"``, ``"7"``, ``"branch:exp"``) or a full reference
    (``"docs@prod"``); or a parsed :class:`Ref`.
    """
    if ref is None or ref == name:
        return Ref(name=name, branch=MAIN)
    if isinstance(ref, int):
        return Ref(name=name, version=ref)
    if isinstance(ref, Ref) or "@" in ref:
        parsed = ref if isinstance(ref, Ref) else parse_ref(ref)
        if parsed.name != name:
            raise InvalidInput(f"Reference {ref!r} names dataset {parsed.name!r}, not {name!r}.")
        return parsed
    return parse_ref(f"{name}@{ref}")


_FORMS = "References look like NAME, NAME@7, NAME@TAG or NAME@branch:BRANCH."
