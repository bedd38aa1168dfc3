"""Recognizers a team defines in YAML for its own identifiers (employee ids, ticket numbers).

The format::

    recognizers:
      - entity: EMPLOYEE_ID
        patterns:
          - regex: "E-\\d{6}"
            score: 0.6
        context: [employee, staff]
        validator: none            # luhn | mod97 | none
        requires_context: false    # optional
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from curata.errors import InvalidInput
from curata.quality.pii.model import Pattern, Recognizer
from curata.quality.pii.validators import VALIDATORS
from curata.textfiles import read_text_file

_ENTITY_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_RECOGNIZER_KEYS = {"entity", "patterns", "context", "validator", "requires_context"}
_PATTERN_KEYS = {"regex", "score", "name"}


def load_recognizers(path: str | Path) -> list[Recognizer]:
    """Read custom recognizers from a YAML file (format in this module's docstring).

    Args:
        path: the YAML file.

    Returns:
        The recognizers, to pass as ``detect_pii(..., recognizers=...)``.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: the YAML is malformed, or an entry is wrong; the message names the
            file, the entry and the field.
    """
    import yaml  # here, not at module level: most callers never read a file

    path = Path(path)
    text = read_text_file(path, "recognizer")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        problem = getattr(err, "problem", None) or str(err)
        raise InvalidInput(f"{path}: not valid YAML{where}: {problem}") from err
    return parse_recognizers(data, source=str(path))


def parse_recognizers(data: object, source: str = "<recognizers>") -> list[Recognizer]:
    """Build recognizers from already parsed YAML or JSON, e.g. a section of a pipeline file.

    Args:
        data: a mapping with a ``recognizers`` list, or the list itself.
        source: where ``data`` comes from, for error messages.

    Raises:
        InvalidInput: an entry is wrong; the message names ``source``, the entry and the field.
    """
    if isinstance(data, Mapping):
        extra = set(data) - {"recognizers"}
        if extra:
            raise InvalidInput(
                f"{source}: unknown top-level key(s) {sorted(extra)}.",
                hint="The file holds one key, 'recognizers', with a list.",
            )
        data = data.get("recognizers")
    if not isinstance(data, list):
        raise InvalidInput(
            f"{source}: expected a 'recognizers' list.",
            hint="See docs/quality.md, 'Custom recognizers', for the format.",
        )
    return [_recognizer(entry, f"{source}: recognizers[{i}]") for i, entry in enumerate(data)]


def _recognizer(entry: object, where: str) -> Recognizer:
    """One recognizer from one entry of the list."""
    if not isinstance(entry, Mapping):
        raise InvalidInput(f"{where}: expected a mapping with entity and patterns.")
    _no_unknown_keys(entry, _RECOGNIZER_KEYS, where)
    entity = entry.get("entity")
    if not isinstance(entity, str) or not _ENTITY_NAME.fullmatch(entity):
        raise InvalidInput(
            f"{where}.entity: {entity!r} is not an entity name.",
            hint="Use upper-case letters, digits and underscores, e.g. EMPLOYEE_ID.",
        )
    where = f"{where} ({entity})"
    patterns = entry.get("patterns")
    if not isinstance(patterns, list) or not patterns:
        raise InvalidInput(f"{where}.patterns: expected a non-empty list of {{regex, score}}.")
    context = entry.get("context", [])
    if not isinstance(context, list) or not all(isinstance(w, str) for w in context):
        raise InvalidInput(f"{where}.context: expected a list of words.")
    validator_name = entry.get("validator", "none")
    if validator_name is None:
        validator_name = "none"
    if validator_name != "none" and validator_name not in VALIDATORS:
        raise InvalidInput(
            f"{where}.validator: unknown validator {validator_name!r}.",
            hint=f"Use one of: {', '.join([*VALIDATORS, 'none'])}.",
        )
    requires_context = entry.get("requires_context", False)
    if not isinstance(requires_context, bool):
        raise InvalidInput(f"{where}.requires_context: expected true or false.")
    if requires_context and not context:
        raise InvalidInput(f"{where}: requires_context is true but no context words are given.")
    return Recognizer(
        entity,
        tuple(_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(patterns)),
        context=tuple(context),
        validator=VALIDATORS.get(validator_name),
        requires_context=requires_context,
    )


def _pattern(entry: object, where: str) -> Pattern:
    """One pattern of a recognizer, its regex compiled to report errors now, not at run time."""
    if not isinstance(entry, Mapping):
        raise InvalidInput(f"{where}: expected a mapping with regex and score.")
    _no_unknown_keys(entry, _PATTERN_KEYS, where)
    regex = entry.get("regex")
    if not isinstance(regex, str) or not regex:
        raise InvalidInput(f"{where}.regex: expected a regular expression string.")
    try:
        compiled = re.compile(regex)
    except re.error as err:
        raise InvalidInput(f"{where}.regex: invalid regular expression {regex!r}: {err}") from err
    if compiled.match(""):
        raise InvalidInput(f"{where}.regex: {regex!r} matches the empty string.")
    score = entry.get("score", 0.5)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise InvalidInput(f"{where}.score: expected a number between 0 and 1, got {score!r}.")
    name = entry.get("name", "")
    return Pattern(regex, float(score), str(name))


def _no_unknown_keys(entry: Mapping[object, object], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown field(s) {', '.join(unknown)}.",
            hint=f"Allowed fields: {', '.join(sorted(allowed))}.",
        )
