"""Whether a record is a valid fine-tuning example for OpenAI's or Amazon Bedrock's chat format.

* ``openai``: ``{"messages": [{"role": "system"|"developer"|"user"|"assistant"|"tool",
  "content": ...}, ...]}`` with at least one assistant message; content is text or a list of
  content parts; an assistant message may carry ``tool_calls`` instead of content, and
  ``weight`` (0 or 1); a tool message needs ``tool_call_id``.
* ``bedrock``: either ``{"prompt": "...", "completion": "..."}``, or the conversation shape
  ``{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": ...}],
  "messages": [{"role": "user"|"assistant", "content": [{"text": ...}]}, ...]}`` whose roles
  alternate from user to a final assistant (``system`` and ``content`` may also be plain text,
  as in the Claude 3 Haiku single-turn shape; ``schemaVersion`` and ``system`` are optional).

A record is a JSON string or an already decoded object (a struct column).
"""

from __future__ import annotations

import json
from typing import Any

_OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_OPENAI_KEYS = {
    "role",
    "content",
    "name",
    "weight",
    "tool_calls",
    "tool_call_id",
    "function_call",
    "refusal",
}
_BEDROCK_SCHEMA = "bedrock-conversation-2024"


def chat_problem(record: Any, chat_format: str) -> str | None:
    """The first reason ``record`` is not a valid example of ``chat_format``, or None.

    Args:
        record: a JSON string, bytes, or a dict (None is invalid).
        chat_format: ``openai`` or ``bedrock``.
    """
    if record is None:
        return "the value is NULL"
    if isinstance(record, bytes | str):
        try:
            record = json.loads(record)
        except (ValueError, UnicodeDecodeError) as err:
            return f"not valid JSON ({err})"
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    if chat_format == "openai":
        return _openai(record)
    return _bedrock(record)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _openai(record: dict[str, Any]) -> str | None:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            return f"{where} is not an object"
        role = message.get("role")
        if role not in _OPENAI_ROLES:
            return f"{where}.role {role!r} is not one of {', '.join(sorted(_OPENAI_ROLES))}"
        unknown = sorted(set(message) - _OPENAI_KEYS)
        if unknown:
            return f"{where} has an unknown key {unknown[0]!r}"
        calls = message.get("tool_calls") or message.get("function_call")
        content = message.get("content")
        if role == "assistant" and calls and content is None:
            pass
        elif isinstance(content, list):
            if not content or not all(isinstance(p, dict) and "type" in p for p in content):
                return f"{where}.content parts must be objects with a 'type'"
        elif not _text(content):
            return f"{where} ({role}) has no text content"
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            return f"{where}.weight must be 0 or 1, on assistant messages only"
        if role == "tool" and not message.get("tool_call_id"):
            return f"{where} (tool) has no tool_call_id"
    if not any(m.get("role") == "assistant" for m in messages):
        return "there is no assistant message"
    return None


def _bedrock(record: dict[str, Any]) -> str | None:
    if "prompt" in record or "completion" in record:
        if set(record) != {"prompt", "completion"}:
            extra = sorted(set(record) - {"prompt", "completion"})
            return f"unexpected key {extra[0]!r}" if extra else "needs both prompt and completion"
        if not _text(record["prompt"]) or not _text(record["completion"]):
            return "prompt and completion must be non-empty text"
        return None
    unknown = sorted(set(record) - {"schemaVersion", "system", "messages"})
    if unknown:
        return f"unexpected key {unknown[0]!r}"
    if "schemaVersion" in record and record["schemaVersion"] != _BEDROCK_SCHEMA:
        return f"schemaVersion must be {_BEDROCK_SCHEMA!r}"
    if "system" in record and not _content(record["system"]):
        return "system must be text or a list of {'text': ...} blocks"
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            found = message.get("role") if isinstance(message, dict) else message
            return f"messages[{i}].role must be {expected!r} (roles alternate), found {found!r}"
        if not _content(message.get("content")):
            return f"messages[{i}].content must be text or a list of {{'text': ...}} blocks"
    if messages[-1].get("role") != "assistant":
        return "the last message must be from the assistant"
    return None


def _content(value: Any) -> bool:
    if isinstance(value, str):
        return _text(value)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(block, dict) and _text(block.get("text")) for block in value)
    )
