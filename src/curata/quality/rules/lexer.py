"""Tokens of a DQDL document, each with the line and column where it starts.

The lexer follows the token rules of AWS Glue's DQDL grammar: double-quoted strings with ``\\"``
and ``\\\\`` escapes, numbers with an optional leading ``-``, ``now()``, comparison operators
(``!=`` is DQDL's negation ``!`` followed by ``=``), brackets, and ``#`` comments to the end of
the line. Everything else that is made of letters, digits, ``_`` and ``.`` is a word (a rule type,
a keyword such as ``between``, or an unquoted column name).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from enum import Enum

from curata.errors import InvalidInput


class Kind(Enum):
    """What a token is."""

    STRING = "string"
    NUMBER = "number"
    WORD = "word"
    NOW = "now()"
    OP = "operator"
    PUNCT = "punctuation"
    END = "end of input"


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text (strings unescaped), and where it starts and ends."""

    kind: Kind
    text: str
    line: int
    column: int
    start: int
    end: int

    def describe(self) -> str:
        """The token as an error message names it."""
        if self.kind is Kind.END:
            return "the end of the rules"
        if self.kind is Kind.STRING:
            return f'"{self.text}"'
        return f"'{self.text}'"


_WORD = re.compile(r"[A-Za-z0-9_.]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?![A-Za-z_.\d])")
_OPERATORS = (">=", "<=", "!=", "=", ">", "<")
_PUNCTUATION = "[](),+-{}:"


class Lexer:
    """Splits DQDL text into tokens; errors carry ``source:line:column``."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def error(self, offset: int, message: str, hint: str | None = None) -> InvalidInput:
        """An InvalidInput pointing at ``offset``."""
        line, column = self.position(offset)
        return InvalidInput(f"{self.source}:{line}:{column}: {message}", hint=hint)

    def tokens(self) -> list[Token]:
        """All tokens, ending with one END token.

        Raises:
            InvalidInput: an unterminated string, a variable (``$name``) or a character that
                is not part of DQDL.
        """
        result: list[Token] = []
        text, i = self.text, 0
        while i < len(text):
            char = text[i]
            if char.isspace():
                i += 1
            elif char == "#":
                newline = text.find("\n", i)
                i = len(text) if newline < 0 else newline + 1
            elif char == '"':
                i = self._string(i, result)
            elif text.startswith("now()", i):
                result.append(self._token(Kind.NOW, "now()", i, i + 5))
                i += 5
            elif number := _NUMBER.match(text, i):
                result.append(self._token(Kind.NUMBER, number.group(), i, number.end()))
                i = number.end()
            elif word := _WORD.match(text, i):
                result.append(self._token(Kind.WORD, word.group(), i, word.end()))
                i = word.end()
            elif op := next((o for o in _OPERATORS if text.startswith(o, i)), None):
                result.append(self._token(Kind.OP, op, i, i + len(op)))
                i += len(op)
            elif char in _PUNCTUATION:
                result.append(self._token(Kind.PUNCT, char, i, i + 1))
                i += 1
            elif char == "$":
                raise self.error(i, "variables ($name) are not supported; write the value.")
            else:
                raise self.error(i, f"unexpected character {char!r}.")
        result.append(self._token(Kind.END, "", len(text), len(text)))
        return result

    def _token(self, kind: Kind, value: str, start: int, end: int) -> Token:
        line, column = self.position(start)
        return Token(kind, value, line, column, start, end)

    def _string(self, start: int, out: list[Token]) -> int:
        chars: list[str] = []
        i = start + 1
        while i < len(self.text):
            char = self.text[i]
            if char == "\\" and self.text[i + 1 : i + 2] in ('"', "\\"):
                chars.append(self.text[i + 1])
                i += 2
            elif char == '"':
                out.append(self._token(Kind.STRING, "".join(chars), start, i + 1))
                return i + 1
            else:
                chars.append(char)
                i += 1
        raise self.error(start, "this string has no closing double quote.")
