"""curata's text rules that work in Python on streamed batches: PiiCount, TokenCount with a
tokenizer, Language, ValidChatFormat and TermGroupRatio. (DuplicateRatio and TokenCount without
a tokenizer are plain aggregates; see :mod:`curata.quality.rules.aggregates`.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa

from curata.quality.bias import TermCounter, check_groups, load_groups
from curata.quality.rules import aggregates
from curata.quality.rules.catalog import CHAT_FORMATS
from curata.quality.rules.chat_format import chat_problem
from curata.quality.rules.conditions import check_number, check_string
from curata.quality.rules.language import detect_languages
from curata.quality.rules.model import Condition, Rule
from curata.quality.rules.plan import (
    Check,
    Context,
    RuleError,
    ScanCheck,
    StaticCheck,
    TextCounter,
    Verdict,
    compliance_verdict,
    metric_key,
    metric_verdict,
    quoted,
)
from curata.quality.rules.result import ERROR


def _texts(batch: pa.RecordBatch) -> list[str | None]:
    values: list[str | None] = batch.column(0).to_pylist()
    return values


def _counts(counter: TextCounter, texts: list[str | None], what: str) -> list[int]:
    counts = list(counter(texts))
    if len(counts) != len(texts):
        raise RuleError(f"the {what} returned {len(counts)} counts for {len(texts)} texts.")
    return [int(c) for c in counts]


class _PiiCount:
    def __init__(self, name: str, counter: TextCounter, condition: Condition) -> None:
        self.name, self.counter, self.condition = name, counter, condition
        self.spans = self.rows_with = 0

    def update(self, batch: pa.RecordBatch) -> None:
        counts = _counts(self.counter, _texts(batch), "PII detector")
        self.spans += sum(counts)
        self.rows_with += sum(1 for c in counts if c)

    def finish(self) -> Verdict:
        verdict = metric_verdict(
            f"PiiCount of {self.name}",
            metric_key([self.name], "PiiCount"),
            self.spans,
            self.condition,
        )
        metrics = {**verdict.metrics, metric_key([self.name], "PiiRows"): float(self.rows_with)}
        return Verdict(verdict.status, metrics, verdict.message)


class _TokenCount:
    def __init__(self, name: str, counter: TextCounter, rule: Rule) -> None:
        assert rule.condition is not None
        self.name, self.counter, self.condition, self.threshold = (
            name,
            counter,
            rule.condition,
            rule.threshold,
        )
        self.rows = self.passing = 0
        self.low: int | None = None
        self.high: int | None = None

    def update(self, batch: pa.RecordBatch) -> None:
        counts = _counts(self.counter, _texts(batch), "tokenizer")
        self.rows += len(counts)
        self.passing += sum(1 for c in counts if check_number(self.condition, c))
        if counts:
            self.low = min(counts) if self.low is None else min(self.low, *counts)
            self.high = max(counts) if self.high is None else max(self.high, *counts)

    def finish(self) -> Verdict:
        extra = {}
        if self.low is not None and self.high is not None:
            extra = {
                metric_key([self.name], "MinimumTokens"): float(self.low),
                metric_key([self.name], "MaximumTokens"): float(self.high),
            }
        what = f"token count of {self.name} {self.condition.text}"
        key = metric_key([self.name], "TokenCount")
        return compliance_verdict(what, key, self.passing, self.rows, self.threshold, metrics=extra)


class _Language:
    def __init__(self, name: str, rule: Rule) -> None:
        assert rule.condition is not None
        self.name, self.condition, self.threshold = name, rule.condition, rule.threshold
        self.seen: Counter[str] = Counter()
        self.passing = 0

    def update(self, batch: pa.RecordBatch) -> None:
        for code in detect_languages(_texts(batch)):
            self.seen[code] += 1
            self.passing += check_string(self.condition, code)

    def finish(self) -> Verdict:
        rows = sum(self.seen.values())
        top = self.seen.most_common(5)
        extra = {metric_key([self.name], f"Language.{code}"): n / rows for code, n in top}
        verdict = compliance_verdict(
            f"language of {self.name} {self.condition.text}",
            metric_key([self.name], "Language"),
            self.passing,
            rows,
            self.threshold,
            metrics=extra,
        )
        found = ", ".join(f"{code} {n}" for code, n in top)
        message = f"{verdict.message} Detected: {found}." if top else verdict.message
        return Verdict(verdict.status, verdict.metrics, message)


class _ChatFormat:
    def __init__(self, name: str, rule: Rule) -> None:
        assert rule.condition is not None
        self.name, self.condition, self.threshold = name, rule.condition, rule.threshold
        self.formats = [v.text.lower() for v in rule.condition.values]
        self.rows = self.passing = 0
        self.example = ""

    def update(self, batch: pa.RecordBatch) -> None:
        for record in batch.column(0).to_pylist():
            problems = [chat_problem(record, f) for f in self.formats]
            valid = any(p is None for p in problems)
            if valid != self.condition.negated:
                self.passing += 1
            elif not self.example:
                reason = next((p for p in problems if p), "it is valid")
                self.example = f" First failing row (#{self.rows} of those checked): {reason}."
            self.rows += 1

    def finish(self) -> Verdict:
        verdict = compliance_verdict(
            f"{self.name} is a valid {' or '.join(self.formats)} chat record",
            metric_key([self.name], "ValidChatFormat"),
            self.passing,
            self.rows,
            self.threshold,
        )
        if verdict.status == ERROR:
            return verdict
        return Verdict(verdict.status, verdict.metrics, verdict.message + self.example)


class _TermGroups:
    def __init__(self, name: str, counter: TermCounter, condition: Condition) -> None:
        self.name, self.counter, self.condition = name, counter, condition

    def update(self, batch: pa.RecordBatch) -> None:
        self.counter.update(_texts(batch))

    def finish(self) -> Verdict:
        result = self.counter.result()
        if result.ratio is None:
            groups = ", ".join(self.counter.groups)
            return Verdict(ERROR, {}, f"No term of any group ({groups}) occurs in {self.name}.")
        verdict = metric_verdict(
            f"TermGroupRatio of {self.name}",
            metric_key([self.name], "TermGroupRatio"),
            result.ratio,
            self.condition,
        )
        shares = {
            metric_key([self.name], f"TermGroup.{g.group}.MentionShare"): g.mention_share
            for g in result.groups
        }
        detail = ", ".join(f"{g.group} {g.mentions}" for g in result.groups)
        return Verdict(
            verdict.status, {**verdict.metrics, **shares}, f"{verdict.message} Mentions: {detail}."
        )


def _text_column(rule: Rule, ctx: Context) -> str:
    name, _ = quoted(ctx, rule.params[0])
    if ctx.family(name) != "string":
        raise RuleError(f"{rule.type} needs a text column; {name} is {ctx.family(name)}.")
    return name


def pii_count(rule: Rule, ctx: Context) -> Check:
    """``PiiCount "text" = 0``: PII spans found by the caller's detector, over all rows."""
    assert rule.condition is not None
    name = _text_column(rule, ctx)
    if ctx.pii_counter is None:
        return StaticCheck(
            Verdict(
                ERROR,
                {},
                "PII detection not available: pass evaluate_rules(..., pii_counter=...) to "
                "count PII spans.",
            )
        )
    return ScanCheck((name,), ctx.where(rule), _PiiCount(name, ctx.pii_counter, rule.condition))


def token_count(rule: Rule, ctx: Context) -> Check:
    """``TokenCount "text" between 1 and 4096``: the caller's tokenizer, else an SQL estimate."""
    if ctx.token_counter is None:
        return aggregates.token_count_sql(rule, ctx)
    name = _text_column(rule, ctx)
    return ScanCheck((name,), ctx.where(rule), _TokenCount(name, ctx.token_counter, rule))


def language(rule: Rule, ctx: Context) -> Check:
    """``Language "text" in ["en", "de"]``: each row's detected language (ISO 639-1)."""
    name = _text_column(rule, ctx)
    return ScanCheck((name,), ctx.where(rule), _Language(name, rule))


def valid_chat_format(rule: Rule, ctx: Context) -> Check:
    """``ValidChatFormat "record" = "openai"``: each row is a valid fine-tuning record."""
    assert rule.condition is not None
    name, _ = quoted(ctx, rule.params[0])
    unknown = [v.text for v in rule.condition.values if v.text.lower() not in CHAT_FORMATS]
    if unknown:
        raise RuleError(f"unknown chat format '{unknown[0]}'; use {' or '.join(CHAT_FORMATS)}.")
    if ctx.family(name) not in ("string", "binary", "nested"):
        raise RuleError(
            f"ValidChatFormat needs JSON text or a struct column; {name} is {ctx.family(name)}."
        )
    return ScanCheck((name,), ctx.where(rule), _ChatFormat(name, rule))


def term_group_ratio(rule: Rule, ctx: Context) -> Check:
    """``TermGroupRatio "text" ["groups.yaml"] > 0.5``: least / most mentioned term group."""
    assert rule.condition is not None
    name = _text_column(rule, ctx)
    groups: dict[str, tuple[str, ...]] | None = None
    if len(rule.params) > 1:
        groups = load_groups(Path(rule.params[1]))
    elif ctx.term_groups is not None:
        groups = check_groups(ctx.term_groups)
    return ScanCheck(
        (name,), ctx.where(rule), _TermGroups(name, TermCounter(groups), rule.condition)
    )
