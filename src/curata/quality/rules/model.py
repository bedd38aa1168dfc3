"""The parsed form of a DQDL ruleset: rules, composite rules and their conditions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum


class ValueKind(Enum):
    """What a value in a condition is."""

    NUMBER = "number"
    STRING = "string"
    NOW = "now"  # now() plus or minus a duration; ``number`` is the offset in seconds
    DURATION = "duration"  # ``24 hours``; ``number`` is the length in seconds
    KEYWORD = "keyword"  # NULL, EMPTY or WHITESPACES_ONLY


@dataclass(frozen=True)
class Value:
    """One value of a condition, with the text it was written as."""

    kind: ValueKind
    text: str
    number: float = 0.0


@dataclass(frozen=True)
class Condition:
    """``op`` applied to ``values``; ``negated`` for ``!=``, ``not in``, ``not between``,
    ``not matches``.

    ``op`` is one of ``=``, ``>``, ``>=``, ``<``, ``<=``, ``between`` (two values), ``in`` (one or
    more) and ``matches`` (one regular expression). ``!=`` is ``=`` negated.
    """

    op: str
    values: tuple[Value, ...]
    negated: bool = False
    text: str = ""


@dataclass(frozen=True)
class Rule:
    """One rule: ``RuleType param... condition [where "..."] [with threshold condition]``."""

    type: str
    params: tuple[str, ...]
    condition: Condition | None
    where: str | None
    threshold: Condition | None
    text: str
    line: int
    column: int

    def leaves(self) -> Iterator[Rule]:
        """The rule itself (a composite yields its rules)."""
        yield self


@dataclass(frozen=True)
class Composite:
    """Rules joined by ``and`` or ``or``; each operand was written in parentheses."""

    op: str
    children: tuple[Rule | Composite, ...]
    text: str
    line: int
    column: int

    def leaves(self) -> Iterator[Rule]:
        """Every plain rule inside, in the order written."""
        for child in self.children:
            yield from child.leaves()


@dataclass(frozen=True)
class RuleSet:
    """The top-level rules of one ``Rules = [ ... ]`` document, in the order written."""

    rules: tuple[Rule | Composite, ...]
    source: str = "<rules>"
    text: str = field(default="", repr=False)

    def leaves(self) -> Iterator[Rule]:
        """Every plain rule, composites flattened."""
        for rule in self.rules:
            yield from rule.leaves()

    def __len__(self) -> int:
        return len(self.rules)
