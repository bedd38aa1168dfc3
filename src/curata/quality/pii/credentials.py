"""Recognizers for credentials: cloud keys, private keys, JSON web tokens, secrets after a keyword.

The same linear-time rules as in ``recognizers.py`` apply; see its docstring.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator

from curata.quality.pii import validators as v
from curata.quality.pii.model import (
    CONTEXT_LOOKBACK,
    SEPARATOR,
    Candidate,
    Pattern,
    Recognizer,
    lowered,
)

# IAM key id prefixes: access keys (AKIA), temporary keys (ASIA) and the ids AWS prints for
# groups, users, roles and policies, which leak the same way.
_AWS_KEY_PREFIXES = "AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA"
_BASE64 = "A-Za-z0-9/+"
_B64URL = r"A-Za-z0-9_\-"

AWS_ACCESS_KEY = Recognizer(
    "AWS_ACCESS_KEY",
    (
        Pattern(
            rf"(?:{_AWS_KEY_PREFIXES})(?<![{_BASE64}=]....)[A-Z0-9]{{16}}(?![{_BASE64}=])",
            0.95,
            "aws-access-key-id",
        ),
    ),
    context=("aws", "access", "key", "iam", "credential"),
    separator_safe=True,
)


def _looks_random_base64(value: str) -> bool:
    """A generated secret mixes lower, upper and digits; prose and paths rarely do all three."""
    return (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
        and v.shannon_entropy(value) >= 4.0
    )


class AwsSecretRecognizer(Recognizer):
    """40-character base64 strings, reported only after a context word (aws, secret).

    On their own such strings are too common (hashes, ids) to call secrets. Since a context
    word must come first, the pattern only runs in the stretch after each one.
    """

    CONTEXT_WORDS = ("aws", "secret")

    def __init__(self) -> None:
        super().__init__(
            "AWS_SECRET_KEY",
            (
                Pattern(
                    rf"[{_BASE64}](?<![{_BASE64}][{_BASE64}])[{_BASE64}]{{39}}(?![{_BASE64}=])",
                    0.5,
                    "aws-secret-access-key",
                ),
            ),
            context=self.CONTEXT_WORDS,
            validator=_looks_random_base64,
            requires_context=True,
            separator_safe=True,
        )

    def candidates(self, text: str) -> Iterator[Candidate]:
        low = lowered(text)
        if low is None:
            yield from super().candidates(text)
            return
        (pattern,) = self._compiled
        # A context word counts up to CONTEXT_LOOKBACK characters before a match; a match is
        # 40 characters and its lookahead reads one more.
        reach = CONTEXT_LOOKBACK + 48
        starts = sorted(m.start() for w in self.CONTEXT_WORDS for m in re.finditer(w, low))
        for low_end, high in _merge((start, start + reach) for start in starts):
            for match in pattern.regex.finditer(text, low_end, min(high, len(text))):
                if _looks_random_base64(match.group()):
                    yield Candidate(match.start(), match.end(), pattern.score)


def _merge(windows: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Overlapping (start, end) windows, in order of start, merged."""
    current: tuple[int, int] | None = None
    for start, end in windows:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


AWS_SECRET_KEY = AwsSecretRecognizer()


class PrivateKeyRecognizer(Recognizer):
    """PEM and OpenSSH private key blocks, from ``-----BEGIN`` to the matching ``-----END``.

    A block cut off before its END line (a truncated paste) is reported up to the end of its
    base64 body, with a lower score.
    """

    MAX_BLOCK = 65_536  # larger than any PEM private key, including 16k-bit RSA

    def __init__(self) -> None:
        super().__init__(
            "PRIVATE_KEY",
            (
                Pattern(
                    r"-----BEGIN (?P<kind>[A-Z0-9 ]{0,40}?)PRIVATE KEY(?: BLOCK)?-----", 1.0, "pem"
                ),
            ),
            context=("key", "private", "ssh", "pem", "rsa"),
            separator_safe=True,
        )
        self._end = re.compile(r"-----END [A-Z0-9 ]{0,40}?PRIVATE KEY(?: BLOCK)?-----")
        self._body = re.compile(rf"[A-Za-z0-9+/=\s]{{0,{self.MAX_BLOCK}}}")

    def candidates(self, text: str) -> Iterator[Candidate]:
        if "PRIVATE KEY" not in text:
            return
        (begin,) = self._compiled
        # Positions of every END line and every text separator, found once, so that pairing
        # each BEGIN with its END stays linear however many BEGINs there are.
        ends = [(m.start(), m.end()) for m in self._end.finditer(text)]
        end_starts = [start for start, _ in ends]
        separators = [m.start() for m in re.finditer(SEPARATOR, text)]
        for match in begin.finditer(text):
            limit = match.end() + self.MAX_BLOCK
            next_separator = bisect.bisect_left(separators, match.end())
            if next_separator < len(separators):
                limit = min(limit, separators[next_separator])
            index = bisect.bisect_left(end_starts, match.end())
            if index < len(ends) and ends[index][1] <= limit:
                yield Candidate(match.start(), ends[index][1], begin.score)
                continue
            body = self._body.match(text, match.end(), min(limit, len(text)))
            end = match.end() + len(body.group().rstrip()) if body else match.end()
            yield Candidate(match.start(), end, 0.9)


JWT = Recognizer(
    "JWT",
    (
        Pattern(
            rf"eyJ(?<![{_B64URL}]...)[{_B64URL}]{{2,}}+\.[{_B64URL}]{{2,}}+\.[{_B64URL}]*+",
            0.9,
            "jwt",
        ),
    ),
    context=("token", "jwt", "bearer", "authorization", "auth"),
    validator=v.jwt_valid,
    separator_safe=True,
)

_PASSWORD_WORDS = ("passw", "pwd", "passphrase")
_SECRET_WORDS = (
    r"api[_\- ]?key|apikey|secret|token|passw(?:or)?d|passphrase|pwd|bearer|auth[_\-]?key|"
    r"credential|access[_\-]?key|private[_\-]?key"
)
_ASCII_ALNUM = re.compile(r"[a-z0-9]")


class GenericSecretRecognizer(Recognizer):
    """A high-entropy token right after a word such as key, token, secret or password.

    The keyword is part of what is matched, so the score is fixed (no context boost: a JWT or
    an AWS key after "token" or "key" is reported as such); only the token is reported.
    Tokens after password words may be shorter and less random than generated keys.

    Args:
        min_entropy: bits of Shannon entropy per character a key or token must reach.
        min_password_entropy: the same for values after password words.
    """

    def __init__(self, min_entropy: float = 3.0, min_password_entropy: float = 2.5) -> None:
        super().__init__(
            "GENERIC_SECRET",
            (Pattern(rf"(?<![A-Za-z0-9])(?i:{_SECRET_WORDS})", 0.75, "keyword"),),
            separator_safe=True,
        )
        # The same words in lower-cased text, without the lookbehind: ``re`` scans a
        # case-sensitive expression that starts with a letter several times faster.
        self._lower_keywords = re.compile(_SECRET_WORDS)
        self.min_entropy = min_entropy
        self.min_password_entropy = min_password_entropy
        # After the keyword: more of the name (api_key_prod), an optional quote, an optional
        # ':', '=', '=>' or 'is', then the value. Every part is bounded and possessive.
        self._value = re.compile(
            r"[\w\-]{0,24}+[\"']?[^\S\n]{0,3}+(?::|=>?|is\b)?[^\S\n]{0,3}+[\"']?"
            r"(?P<value>[A-Za-z0-9_\-+/=.~!@#$%^&*]{8,256}+)"
        )

    def candidates(self, text: str) -> Iterator[Candidate]:
        (pattern,) = self._compiled
        low = lowered(text)
        if low is None:
            keywords = pattern.regex.finditer(text)
        else:
            keywords = (
                m
                for m in self._lower_keywords.finditer(low)
                if m.start() == 0 or not _ASCII_ALNUM.match(low, m.start() - 1)
            )
        for keyword in keywords:
            match = self._value.match(text, keyword.end())
            if match is None:
                continue
            value = match.group("value").rstrip(".")
            password = keyword.group().lower().startswith(_PASSWORD_WORDS)
            if password:
                if len(value) < 8 or v.shannon_entropy(value) < self.min_password_entropy:
                    continue
            elif len(value) < 16 or v.shannon_entropy(value) < self.min_entropy:
                continue
            if v.character_classes(value) >= 2:
                start = match.start("value")
                yield Candidate(start, start + len(value), pattern.score)
