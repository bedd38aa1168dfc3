"""A recursive-descent parser for the DQDL subset curata evaluates.

Grammar (after AWS Glue's DQDL, ``Rules`` section only)::

    document  := 'Rules' '=' '[' [ expr (',' expr)* [','] ] ']'
    expr      := conj ('or' conj)*                 -- 'and' binds tighter than 'or'
    conj      := operand ('and' operand)*          -- operands of and/or are parenthesised
    operand   := '(' expr ')' | rule
    rule      := RuleType param* [condition] { 'where' STRING | 'with' 'threshold' condition }
    condition := ['not'] ( op value | 'between' value 'and' value | 'in' '[' value,... ']'
                 | 'matches' STRING )          op := = != > >= < <=
    value     := NUMBER | STRING | NULL | EMPTY | WHITESPACES_ONLY | now()
                 | '(' now() ('+'|'-') NUMBER unit ')' | NUMBER unit    unit := minutes|hours|days
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from curata.errors import InvalidInput
from curata.quality.rules.catalog import (
    DURATION,
    NONE,
    NUMBER,
    RULE_SPECS,
    STRING,
    UNSUPPORTED,
    VALUE,
    RuleSpec,
)
from curata.quality.rules.lexer import Kind, Lexer, Token
from curata.quality.rules.model import Composite, Condition, Rule, RuleSet, Value, ValueKind

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_KEYWORDS = {"NULL", "EMPTY", "WHITESPACES_ONLY"}
_RESERVED = {"and", "or", "between", "in", "not", "matches", "with", "where", "threshold"}
_COMPARISONS = {"=", "!=", ">", ">=", "<", "<="}
_VALUE_KINDS = {
    NUMBER: {ValueKind.NUMBER},
    VALUE: {ValueKind.NUMBER, ValueKind.STRING, ValueKind.NOW, ValueKind.KEYWORD},
    DURATION: {ValueKind.DURATION},
    STRING: {ValueKind.STRING},
}


def parse_rules(text: str, *, source: str = "<rules>") -> RuleSet:
    """Parse a DQDL document (``Rules = [ ... ]``).

    Args:
        text: the document.
        source: the file name used in error messages (``rules.dqdl:3:14: ...``).

    Returns:
        The rules, in the order written.

    Raises:
        InvalidInput: a syntax error, an unknown rule type (the message lists the known ones),
            or a rule whose parameters, condition, ``where`` or threshold do not fit its type.

    >>> parse_rules('Rules = [ RowCount > 0, IsComplete "id" ]').rules[1].type
    'IsComplete'
    """
    return _Parser(text, source).document()


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.lexer = Lexer(text, source)
        self.text = text
        self.tokens = self.lexer.tokens()
        self.i = 0

    # -- token helpers -------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def is_word(self, *words: str) -> bool:
        return self.tok.kind is Kind.WORD and self.tok.text.lower() in words

    def at_end(self) -> bool:
        return self.tokens[self.i].kind is Kind.END

    def is_punct(self, char: str) -> bool:
        return self.tok.kind is Kind.PUNCT and self.tok.text == char

    def error(
        self, message: str, token: Token | None = None, hint: str | None = None
    ) -> InvalidInput:
        return self.lexer.error((token or self.tok).start, message, hint)

    def expect_punct(self, char: str, context: str) -> Token:
        if not self.is_punct(char):
            raise self.error(f"expected '{char}' {context}, found {self.tok.describe()}.")
        return self.advance()

    def source_text(self, first: Token, last: Token) -> str:
        return " ".join(self.text[first.start : last.end].split())

    # -- document and composites -----------------------------------------------------------

    def document(self) -> RuleSet:
        first = self.tok
        if first.kind is Kind.WORD and first.text in ("Metadata", "DataSources", "Analyzers"):
            raise self.error(
                f"the {first.text} section is not supported; a document is one "
                "'Rules = [ ... ]' list."
            )
        if not (first.kind is Kind.WORD and first.text == "Rules"):
            raise self.error(
                f"expected 'Rules = [' at the start, found {first.describe()}.",
                hint='A ruleset looks like: Rules = [ RowCount > 0, IsComplete "id" ]',
            )
        self.advance()
        if not (self.tok.kind is Kind.OP and self.tok.text == "="):
            raise self.error(f"expected '=' after 'Rules', found {self.tok.describe()}.")
        self.advance()
        self.expect_punct("[", "after 'Rules ='")
        rules: list[Rule | Composite] = []
        while not self.is_punct("]"):
            if self.at_end():
                raise self.error("expected ']' to close the rules list, found the end.")
            rules.append(self.expr()[0])
            if self.is_punct(","):
                self.advance()
            elif not self.is_punct("]"):
                raise self.error(f"expected ',' or ']' after a rule, found {self.tok.describe()}.")
        self.advance()
        if not self.at_end():
            raise self.error(f"unexpected {self.tok.describe()} after the closing ']'.")
        return RuleSet(tuple(rules), self.lexer.source, self.text)

    def expr(self) -> tuple[Rule | Composite, bool]:
        """A rule or composite, and whether it was written in parentheses."""
        return self.chain("or", self.conj)

    def conj(self) -> tuple[Rule | Composite, bool]:
        return self.chain("and", self.operand)

    def chain(
        self, word: str, part: Callable[[], tuple[Rule | Composite, bool]]
    ) -> tuple[Rule | Composite, bool]:
        first_token = self.tok
        operands = [part()]
        while self.is_word(word):
            self.advance()
            operands.append(part())
        if len(operands) == 1:
            return operands[0]
        if not all(wrapped for _, wrapped in operands):
            raise self.lexer.error(
                first_token.start,
                f"each rule joined with '{word}' must be in parentheses.",
                hint='Write (IsComplete "id") and (IsUnique "id").',
            )
        composite = Composite(
            word,
            tuple(node for node, _ in operands),
            self.source_text(first_token, self.tokens[self.i - 1]),
            first_token.line,
            first_token.column,
        )
        return composite, True

    def operand(self) -> tuple[Rule | Composite, bool]:
        if self.is_punct("("):
            self.advance()
            inner, _ = self.expr()
            self.expect_punct(")", "to close the parenthesis")
            return inner, True
        return self.rule(), False

    # -- one rule ----------------------------------------------------------------------------

    def rule(self) -> Rule:
        first = self.tok
        if first.kind is not Kind.WORD:
            raise self.error(f"expected a rule type, found {first.describe()}.")
        spec = self.spec(first)
        self.advance()
        params: list[str] = []
        while self.tok.kind is Kind.STRING or (
            self.tok.kind is Kind.WORD
            and self.tok.text.lower() not in _RESERVED
            and self.tok.text not in _KEYWORDS
        ):
            params.append(self.advance().text)
        self.check_params(spec, params, first)
        condition = None
        if self.tok.kind is Kind.OP or self.is_word("between", "in", "not", "matches"):
            if spec.condition == NONE:
                raise self.error(f"{spec.name} takes no condition (example: {spec.example}).")
            condition = self.condition(spec.condition, spec)
        elif spec.condition != NONE:
            raise self.error(
                f"expected a condition for {spec.name}, found {self.tok.describe()}.",
                hint=f"Example: {spec.example}",
            )
        where, threshold = self.options(spec)
        return Rule(
            spec.name,
            tuple(params),
            condition,
            where,
            threshold,
            self.source_text(first, self.tokens[self.i - 1]),
            first.line,
            first.column,
        )

    def spec(self, token: Token) -> RuleSpec:
        spec = RULE_SPECS.get(token.text)
        if spec is not None:
            return spec
        if token.text in UNSUPPORTED:
            raise self.error(
                f"rule type {token.text} is not supported: {UNSUPPORTED[token.text]}.", token
            )
        known = sorted(RULE_SPECS)
        close = difflib.get_close_matches(token.text, known, n=1)
        suggestion = f" Did you mean {close[0]}?" if close else ""
        raise self.error(
            f"unknown rule type '{token.text}'.{suggestion}",
            token,
            hint="Known rule types: " + ", ".join(known),
        )

    def check_params(self, spec: RuleSpec, params: list[str], first: Token) -> None:
        count = len(params)
        if spec.min_params <= count and (spec.max_params is None or count <= spec.max_params):
            return
        if spec.max_params == spec.min_params:
            wanted = f"{spec.min_params}"
        elif spec.max_params is None:
            wanted = f"at least {spec.min_params}"
        else:
            wanted = f"{spec.min_params} to {spec.max_params}"
        plural = "" if wanted == "1" else "s"
        raise self.error(
            f"{spec.name} takes {wanted} quoted parameter{plural}, found {count}.",
            first,
            hint=f"Example: {spec.example}",
        )

    def options(self, spec: RuleSpec) -> tuple[str | None, Condition | None]:
        where: str | None = None
        threshold: Condition | None = None
        while self.is_word("where", "with"):
            word = self.advance()
            if word.text.lower() == "where":
                if not spec.where:
                    raise self.error(f"{spec.name} does not take a where clause.", word)
                if where is not None:
                    raise self.error("a rule takes one where clause.", word)
                if self.tok.kind is not Kind.STRING:
                    raise self.error(
                        f"expected a quoted SQL predicate after 'where', found "
                        f"{self.tok.describe()}."
                    )
                where = self.advance().text
            else:
                if not self.is_word("threshold"):
                    raise self.error(
                        f"expected 'threshold' after 'with', found {self.tok.describe()}."
                    )
                if not spec.threshold:
                    raise self.error(f"{spec.name} does not take 'with threshold'.", word)
                if threshold is not None:
                    raise self.error("a rule takes one threshold.", word)
                self.advance()
                threshold = self.condition(NUMBER, None)
        return where, threshold

    # -- conditions and values -------------------------------------------------------------

    def condition(self, kind: str, spec: RuleSpec | None) -> Condition:
        first = self.tok
        negated = False
        if self.is_word("not"):
            self.advance()
            negated = True
            if not self.is_word("between", "in", "matches"):
                raise self.error(
                    "expected 'between', 'in' or 'matches' after 'not', "
                    f"found {self.tok.describe()}."
                )
        if self.tok.kind is Kind.OP:
            op = self.advance().text
            if op == "!=":
                op, negated = "=", True
            if kind == STRING and op != "=":
                raise self.error(f"{_name(spec)} compares with = or in, not {op}.", first)
            values: tuple[Value, ...] = (self.value(kind, spec),)
        elif self.is_word("between"):
            self.advance()
            low = self.value(kind, spec)
            if not self.is_word("and"):
                raise self.error(
                    f"expected 'and' in 'between ... and ...', found {self.tok.describe()}."
                )
            self.advance()
            op, values = "between", (low, self.value(kind, spec))
        elif self.is_word("in"):
            self.advance()
            op, values = "in", self.value_list(kind, spec)
        elif self.is_word("matches"):
            self.advance()
            if kind != VALUE or self.tok.kind is not Kind.STRING:
                raise self.error("'matches' takes a quoted regular expression (ColumnValues only).")
            op, values = "matches", (Value(ValueKind.STRING, self.advance().text),)
        else:
            raise self.error(
                f"expected a condition (=, >, between, in, ...), found {self.tok.describe()}."
            )
        if kind == STRING and op not in ("=", "in"):
            raise self.error(f"{_name(spec)} compares with = or in.", first)
        for value in values:
            if value.kind is ValueKind.KEYWORD and op not in ("=", "in"):
                raise self.error(f"{value.text} can only be compared with =, != or in.", first)
        return Condition(op, values, negated, self.source_text(first, self.tokens[self.i - 1]))

    def value_list(self, kind: str, spec: RuleSpec | None) -> tuple[Value, ...]:
        self.expect_punct("[", "after 'in'")
        values = [self.value(kind, spec)]
        while self.is_punct(","):
            self.advance()
            values.append(self.value(kind, spec))
        self.expect_punct("]", "to close the list")
        return tuple(values)

    def value(self, kind: str, spec: RuleSpec | None) -> Value:
        token = self.tok
        wanted = {
            NUMBER: "a number",
            VALUE: "a number, a quoted string, NULL, EMPTY, WHITESPACES_ONLY or now()",
            DURATION: "a duration such as 24 hours or 7 days",
            STRING: "a quoted string",
        }[kind]
        value = self.raw_value()
        if value is None or value.kind not in _VALUE_KINDS[kind]:
            raise self.error(
                f"expected {wanted} for {_name(spec)}, found {token.describe()}.", token
            )
        return value

    def raw_value(self) -> Value | None:
        token = self.tok
        if token.kind is Kind.NUMBER:
            self.advance()
            if self.tok.kind is Kind.WORD and self.tok.text.lower() in _UNITS:
                unit = self.advance()
                seconds = float(token.text) * _UNITS[unit.text.lower()]
                return Value(ValueKind.DURATION, f"{token.text} {unit.text}", seconds)
            return Value(ValueKind.NUMBER, token.text, float(token.text))
        if token.kind is Kind.STRING:
            self.advance()
            return Value(ValueKind.STRING, token.text)
        if token.kind is Kind.NOW:
            self.advance()
            return Value(ValueKind.NOW, "now()", 0.0)
        if token.kind is Kind.WORD and token.text.upper() in _KEYWORDS:
            self.advance()
            return Value(ValueKind.KEYWORD, token.text.upper())
        if self.is_punct("(") and self.tokens[self.i + 1].kind is Kind.NOW:
            return self.now_offset()
        return None

    def now_offset(self) -> Value:
        first = self.advance()  # "("
        self.advance()  # now()
        sign = 1.0
        if self.is_punct("+") or self.is_punct("-"):
            sign = -1.0 if self.advance().text == "-" else 1.0
        amount = self.tok
        if amount.kind is not Kind.NUMBER:
            raise self.error(
                f"expected a number of days or hours after now(), found {amount.describe()}."
            )
        self.advance()
        if not (self.tok.kind is Kind.WORD and self.tok.text.lower() in _UNITS):
            raise self.error(f"expected minutes, hours or days, found {self.tok.describe()}.")
        seconds = sign * float(amount.text) * _UNITS[self.advance().text.lower()]
        last = self.expect_punct(")", "to close the date expression")
        return Value(ValueKind.NOW, self.source_text(first, last), seconds)


def _name(spec: RuleSpec | None) -> str:
    return spec.name if spec is not None else "the threshold"
