"""The built-in recognizers for contact, financial, network and crypto identifiers.

Every expression is written to run in linear time on any input, because texts come from
users and logs, not from us:

- a pattern that starts with a repeated class checks, right after its first character, that
  the character before the match is not of that class (``x(?<![cls]x)``). Only the start of a
  run is tried, instead of every position inside it, which would make a long run quadratic.
  Checking after the first character (not before it) keeps ``re``'s fast scan for the first
  character;
- repetitions are bounded, and groups that repeat are separated by a character their body
  cannot contain, so a failing match backtracks a bounded number of steps;
- negated classes exclude :data:`SEPARATOR` so that no match crosses from one text into the
  next when the engine joins texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from curata.quality.pii import validators as v
from curata.quality.pii.model import Candidate, Pattern, Recognizer

_URL_CHARS = r"[^\s<>\"'`\x00]"
_TRAILING_PUNCTUATION = ".,;:!?'\")]}"
# Top-level domains accepted in URLs written without a scheme ("example.com/help"). Kept short
# and free of file extensions (md, py, sh, pl, rs, zip) so file names are not taken for sites;
# a full public-suffix list would need downloading and updating, which curata never does.
BARE_DOMAIN_TLDS = (
    "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "io", "co", "ai", "app", "dev",
    "me", "us", "uk", "de", "fr", "es", "it", "nl", "be", "ch", "at", "se", "no", "dk", "fi", "cz",
    "ie", "pt", "ru", "cn", "jp", "kr", "in", "au", "nz", "ca", "br", "mx", "ar", "za", "eu", "tv",
    "xyz", "online", "site", "tech", "store", "shop", "cloud", "email",
)  # fmt: skip

_LOCAL_CHAR = r"[A-Za-z0-9._%+\-]"


class EmailRecognizer(Recognizer):
    """E-mail addresses, found from their ``@``: the part before it is read backwards from it.

    The pattern as a whole (kept for documentation and custom copies) would try every word in
    the text as a possible local part; starting from the rare ``@`` is several times faster
    and finds the same addresses.
    """

    def __init__(self) -> None:
        super().__init__(
            "EMAIL_ADDRESS",
            (Pattern(_EMAIL_LOCAL + "@" + _EMAIL_DOMAIN, 1.0, "email"),),
            context=("email", "e-mail", "mail", "contact", "address"),
            separator_safe=True,
        )
        # Up to 64 characters before the @, starting where a run of such characters starts.
        self._local = re.compile(_EMAIL_LOCAL + r"\Z")
        self._domain = re.compile(_EMAIL_DOMAIN)

    def candidates(self, text: str) -> Iterator[Candidate]:
        previous_end = 0
        at = text.find("@")
        while at >= 0:
            local = self._local.search(text, max(previous_end, at - 64), at)
            domain = self._domain.match(text, at + 1) if local else None
            if local and domain:
                yield Candidate(local.start(), domain.end(), 1.0)
                previous_end = domain.end()
            at = text.find("@", max(at + 1, previous_end))


_EMAIL_LOCAL = _LOCAL_CHAR + rf"(?<!{_LOCAL_CHAR}{_LOCAL_CHAR}){_LOCAL_CHAR}{{0,63}}"
_EMAIL_DOMAIN = (
    r"[A-Za-z0-9][A-Za-z0-9\-]{0,62}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)


EMAIL = EmailRecognizer()


class CardRecognizer(Recognizer):
    """Card numbers of 13-19 digits, grouped by spaces or dashes or not at all.

    A number followed by more digits ("4111 1111 1111 1111 12/26") is also tried without its
    trailing groups, since an expiry date often follows the number.
    """

    def __init__(self) -> None:
        super().__init__(
            "CREDIT_CARD",
            (Pattern(r"\d(?<![\w.,]\d)(?:[ \-]?\d){12,22}(?![\w]|[.,]\d)", 0.8, "card"),),
            context=("card", "credit", "debit", "visa", "mastercard", "amex", "cc", "payment"),
            separator_safe=True,
        )

    def candidates(self, text: str) -> Iterator[Candidate]:
        (pattern,) = self._compiled
        for match in pattern.finditer(text):
            start, end = match.span()
            value = match.group()
            while True:
                if _card_grouping(value) and v.card_number_valid(value):
                    yield Candidate(start, end, pattern.score)
                    break
                cut = max(value.rfind(" "), value.rfind("-"))
                if cut <= 0:
                    break
                value = value[:cut]
                end = start + cut


_GROUP_SEPARATORS = re.compile(r"[ \-]")


def _card_grouping(value: str) -> bool:
    """Whether ``value`` is grouped as cards are printed: not at all, in fours (the last group
    may be shorter), or 4-6-5 and 4-6-4 (American Express, Diners Club).

    Other groupings are other numbers: "38541539-5770-4982" begins a UUID.
    """
    groups = [len(g) for g in _GROUP_SEPARATORS.split(value)]
    if len(groups) == 1 or groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(n == 4 for n in groups[:-1]) and 1 <= groups[-1] <= 4


class IbanRecognizer(Recognizer):
    """IBANs, compact or in groups of four; a match too long is cut to its country's length."""

    def __init__(self) -> None:
        super().__init__(
            "IBAN_CODE",
            (
                Pattern(
                    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}"
                    r"(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
                    0.95,
                    "iban",
                ),
            ),
            context=("iban", "account", "bank", "transfer", "sepa", "wire"),
            separator_safe=True,
        )

    def candidates(self, text: str) -> Iterator[Candidate]:
        (pattern,) = self._compiled
        for match in pattern.finditer(text):
            start, value = match.start(), match.group()
            length = v.IBAN_LENGTHS.get(value[:2])
            if length is None:
                continue
            # Walk to the character that completes the country's length, skipping spaces.
            seen, end = 0, start
            for offset, char in enumerate(value):
                if char != " ":
                    seen += 1
                if seen == length:
                    end = start + offset + 1
                    break
            if seen == length and v.iban_valid(text[start:end]):
                yield Candidate(start, end, pattern.score)


# "123-45-6789" is how SSNs are written; nine bare digits are often something else.
_SSN_SCORES = {"-": 0.6, " ": 0.4, "": 0.3}


class SsnRecognizer(Recognizer):
    """US social security numbers; the score depends on how the number is written."""

    def __init__(self) -> None:
        super().__init__(
            "US_SSN",
            (
                Pattern(
                    r"\d(?<![\w.\-]\d)\d{2}(?P<sep>[\- ]?)\d{2}(?P=sep)\d{4}(?![\w]|[.\-]\d)",
                    0.6,
                    "ssn",
                ),
            ),
            context=("ssn", "social security", "social sec", "ss#", "ssa", "tax id"),
            separator_safe=True,
        )

    def candidates(self, text: str) -> Iterator[Candidate]:
        (pattern,) = self._compiled
        for match in pattern.finditer(text):
            if v.ssn_valid(match.group()):
                yield Candidate(match.start(), match.end(), _SSN_SCORES[match.group("sep")])


def _strip_trailing(value: str, characters: str) -> str:
    """``value`` without trailing ``characters``; a ``)`` stays when it closes a ``(``."""
    while value and value[-1] in characters:
        if value[-1] == ")" and value.count("(") >= value.count(")"):
            break
        value = value[:-1]
    return value


_IP_CONTEXT = ("ip", "address", "server", "host", "client", "connect", "from", "login")

IPV4 = Recognizer(
    "IP_ADDRESS",
    (
        Pattern(
            r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w]|\.\d)",
            0.6,
            "ipv4",
            # The first dot: three digits before it, eleven after and two read by the lookahead.
            anchor=r"\.(?=\d{1,3}\.\d{1,3}\.\d)",
            reach=(3, 14),
        ),
    ),
    context=_IP_CONTEXT,
    validator=v.ipv4_valid,
    separator_safe=True,
)


class Ipv6Recognizer(Recognizer):
    """IPv6 addresses in any textual form; a sentence's full stop after one is not part of it."""

    def __init__(self) -> None:
        super().__init__(
            "IP_ADDRESS",
            (
                Pattern(
                    r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])[0-9A-Fa-f]{0,3}:[0-9A-Fa-f:.]{1,41}"
                    r"(?![\w:.])",
                    0.6,
                    "ipv6",
                    # Groups have at most four digits: two colons are at most 5 characters apart.
                    anchor=r":(?=[0-9A-Fa-f]{0,4}:)",
                    reach=(50, 50),
                ),
            ),
            context=_IP_CONTEXT,
            separator_safe=True,
        )

    def candidates(self, text: str) -> Iterator[Candidate]:
        (pattern,) = self._compiled
        for match in pattern.finditer(text):
            value = match.group().rstrip(".")
            if value.endswith(":") and not value.endswith("::"):
                value = value[:-1]  # "from fe80::1: timeout"
            if v.ipv6_valid(value):
                yield Candidate(match.start(), match.start() + len(value), pattern.score)


IPV6 = Ipv6Recognizer()

_HEX = "[0-9A-Fa-f]"
MAC = Recognizer(
    "MAC_ADDRESS",
    (
        Pattern(
            rf"{_HEX}(?<![\w:\-.]{_HEX}){_HEX}(?P<sep>[:\-])(?:{_HEX}{{2}}(?P=sep)){{4}}{_HEX}{{2}}"
            r"(?![\w:\-])",
            0.6,
            "mac",
            anchor=r":(?=[0-9A-Fa-f]{2}:)|-(?=[0-9A-Fa-f]{2}-)",
            reach=(20, 20),
        ),
        # Cisco's dotted form; all-digit groups also look like part numbers, hence the lower score.
        Pattern(
            rf"{_HEX}(?<![\w.]{_HEX}){_HEX}{{3}}\.{_HEX}{{4}}\.{_HEX}{{4}}(?![\w]|\.\w)",
            0.4,
            "mac",
            anchor=rf"\.(?={_HEX}{{4}}\.)",
            reach=(20, 20),
        ),
    ),
    context=("mac", "ethernet", "device", "hardware", "wifi", "wi-fi", "bluetooth", "nic"),
    separator_safe=True,
)

_TLD = r"\.(?i:" + "|".join(BARE_DOMAIN_TLDS) + r")(?![\w\-]|\.[A-Za-z0-9])"
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_DOMAIN = (
    r"[A-Za-z0-9](?<![\w.@/\-:][A-Za-z0-9])[A-Za-z0-9\-]{0,62}(?:\.[A-Za-z0-9\-]{1,63}){0,4}" + _TLD
)


class UrlRecognizer(Recognizer):
    """URLs with a scheme, starting with ``www.``, or a domain under a common TLD.

    Each kind is found from a literal anchor (``://``, ``www.``, ``.com``-like) and read from
    there: the host part backwards, the path forwards. Anchors are rare, so the text between
    them is never looked at by the slower expressions.
    """

    def __init__(self) -> None:
        super().__init__(
            "URL",
            (
                Pattern(r"(?:https?|ftps?|sftp|wss?)://" + _URL_CHARS + "{1,2048}", 0.6, "scheme"),
                Pattern(r"w(?<![\w./@\-]w)ww\." + _URL_CHARS + "{2,2048}", 0.6, "www"),
                Pattern(_DOMAIN + "(?:/" + _URL_CHARS + "{0,2048})?", 0.5, "domain"),
            ),
            context=("url", "link", "website", "site", "visit", "page", "domain", "go to", "open"),
            separator_safe=True,
        )
        self._scheme = re.compile(r"(?<![A-Za-z0-9])(?:https?|ftps?|sftp|wss?)\Z")
        self._rest = re.compile(_URL_CHARS + "{1,2048}")
        self._www_start = re.compile(r"(?<![\w./@\-])www\.")
        self._tld = re.compile(_TLD)
        self._domain = re.compile(_DOMAIN + r"\Z")
        self._path = re.compile("/" + _URL_CHARS + "{0,2048}")

    def candidates(self, text: str) -> Iterator[Candidate]:
        for found in (self._with_scheme(text), self._www(text), self._bare(text)):
            for start, end, score in found:
                value = _strip_trailing(text[start:end], _TRAILING_PUNCTUATION)
                if value:
                    yield Candidate(start, start + len(value), score)

    def _with_scheme(self, text: str) -> Iterator[tuple[int, int, float]]:
        at = text.find("://")
        while at >= 0:
            scheme = self._scheme.search(text, max(0, at - 5), at)
            rest = self._rest.match(text, at + 3) if scheme else None
            if scheme and rest:
                yield scheme.start(), rest.end(), 0.6
                at = rest.end()
            at = text.find("://", at + 1)

    def _www(self, text: str) -> Iterator[tuple[int, int, float]]:
        at = text.find("www.")
        while at >= 0:
            rest = self._rest.match(text, at + 4) if self._www_start.match(text, at) else None
            if rest is not None and rest.end() - at >= 6:
                yield at, rest.end(), 0.6
            at = text.find("www.", at + 1)

    def _bare(self, text: str) -> Iterator[tuple[int, int, float]]:
        for tld in self._tld.finditer(text):
            # Walk back over the host's characters (a host is short; 330 bounds it), then check
            # that they form a domain starting where the run starts.
            start, lowest = tld.start(), max(0, tld.start() - 330)
            while start > lowest and text[start - 1] in _HOST_CHARACTERS:
                start -= 1
            host = self._domain.match(text, start, tld.end())
            if host is None:
                continue
            path = self._path.match(text, tld.end())
            yield host.start(), path.end() if path else tld.end(), 0.5


URL = UrlRecognizer()

CRYPTO = Recognizer(
    "CRYPTO",
    (
        Pattern(r"[13](?<![\w][13])[1-9A-HJ-NP-Za-km-z]{24,33}(?![\w])", 1.0, "bitcoin-base58"),
        Pattern(
            r"[bB](?<![\w][bB])[cC]1[02-9ac-hj-np-zAC-HJ-NP-Z]{11,87}(?![\w])",
            1.0,
            "bech32",
            anchor="bc1|BC1",
            reach=(0, 90),
        ),
    ),
    context=("bitcoin", "btc", "wallet", "crypto", "address", "send", "pay"),
    validator=lambda value: (
        v.segwit_address_valid(value)
        if value[:3].lower() == "bc1"
        else v.base58check_address_valid(value)
    ),
    separator_safe=True,
)
