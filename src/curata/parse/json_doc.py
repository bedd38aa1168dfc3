"""JSON documents: the string values, in document order, or one chosen field.

The registered parser joins every string value (one per paragraph); for records whose text
is in one field, register ``functools.partial(parse_json, text_field="body")`` instead, or
read a JSONL file as a source (one document per line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from curata.parse.document import ParsedDocument, ParseError, Section, build_document
from curata.parse.plain_text import decode_text

MIME = "application/json"
_TITLE_KEYS = ("title", "name", "subject")


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, depth first, without recursion (JSON nests deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item.strip():
                yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def parse_json(data: bytes, name: str = "", *, text_field: str | None = None) -> ParsedDocument:
    """A JSON document's text: its string values joined by blank lines, or one field's.

    Args:
        data: the JSON bytes (UTF-8, UTF-16 or UTF-32).
        name: for error messages.
        text_field: take only this top-level field (a string) as the text.

    Raises:
        ParseError: invalid JSON, a missing or non-string ``text_field``, or no text.
    """
    try:
        value = json.loads(decode_text(data, name=name))
    except json.JSONDecodeError as err:
        raise ParseError(
            name, f"invalid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from err
    except RecursionError as err:
        raise ParseError(name, "JSON nested too deeply to read") from err
    title = None
    if isinstance(value, dict):
        found = next((value[k] for k in _TITLE_KEYS if isinstance(value.get(k), str)), None)
        title = found
    if text_field is not None:
        text = value.get(text_field) if isinstance(value, dict) else None
        if not isinstance(text, str):
            raise ParseError(name, f"no string field {text_field!r} at the top level")
        sections = [Section(text)]
    else:
        sections = [Section("\n\n".join(_strings(value)))]
    return build_document(sections, title=title, mime=MIME, name=name)
