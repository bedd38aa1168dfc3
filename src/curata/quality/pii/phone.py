"""Phone numbers: a cheap regex finds number-shaped runs, libphonenumber decides.

libphonenumber (the ``phonenumbers`` package) knows each country's numbering plan, so an order
number or a date that merely has the right number of digits is rejected. Its own text matcher
is thorough but slow; parsing the few candidates our regex finds is much faster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curata.errors import InvalidInput, MissingDependency
from curata.quality.pii.model import Candidate, Pattern, Recognizer
from curata.quality.pii.phone_plans import FIXED_LINE_OR_MOBILE, MOBILE, UNKNOWN, PhonePlans
from curata.quality.pii.validators import digits_of

DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN")

INTERNATIONAL_SCORE = 0.7
FORMATTED_SCORE = 0.5
DIGITS_ONLY_SCORE = 0.4

# Groups of at most five digits (possessive, so a run splits one way only), optionally in
# parentheses, joined by up to two separators. A run that goes on into letters or more digits
# is not a phone number, and the possessive quantifiers let it fail without backtracking.
_PHONE_REGEX = (
    r"[+(0-9](?<![\w+(.\-/][+(0-9])"
    r"\d{0,4}+\)?(?:[ .\-/]{1,2}+\(?\d{1,5}+\)?|\d{1,5}+){0,7}+"
    r"(?![\w]|[.\-/]\d)"
)
# Dates, IPv4 addresses, and the 3-2-4 grouping of US social security numbers, which no
# numbering plan uses.
_NOT_A_PHONE = re.compile(
    r"\d{4}[\-./]\d{1,2}[\-./]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4}"
    r"|\d{1,3}(?:\.\d{1,3}){3}|\d{3}([\- ])\d{2}\1\d{4}"
)
_DIGIT_GROUP = re.compile(r"[0-9]+")
_MOBILE = (MOBILE, FIXED_LINE_OR_MOBILE)


def phonenumbers_module() -> Any:
    """The ``phonenumbers`` module, imported on first use (its metadata is large)."""
    try:
        import phonenumbers
    except ImportError as err:
        raise MissingDependency("phonenumbers", "pii", "Phone number detection") from err
    return phonenumbers


class PhoneRecognizer(Recognizer):
    """Phone numbers in international form (any country) or national form (``regions``).

    National numbers are read in each default region in turn. Where the national form starts
    with a trunk prefix (0 in GB, DE, FR, IN), a number without it is only taken when
    libphonenumber says it is a mobile number; otherwise dates and counts with the right number
    of digits would pass as landlines.

    Args:
        regions: ISO 3166 codes of the countries whose national formats are accepted.
    """

    def __init__(self, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> None:
        super().__init__(
            "PHONE_NUMBER",
            (Pattern(_PHONE_REGEX, INTERNATIONAL_SCORE, "phone"),),
            context=(
                "phone", "tel", "telephone", "mobile", "cell", "call", "fax", "whatsapp",
                "sms", "text me", "reach", "contact", "landline", "hotline", "dial",
            ),
            separator_safe=True,
        )  # fmt: skip
        phonenumbers = phonenumbers_module()
        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise InvalidInput(
                f"Unknown phone region(s): {', '.join(unknown)}.",
                hint="Use ISO 3166 two-letter country codes such as US, GB, DE, FR, IN.",
            )
        self.regions = tuple(regions)
        self._numbers = PhonePlans(phonenumbers)
        self._plans = {
            region: _Plan.of(phonenumbers.PhoneMetadata.metadata_for_region(region))
            for region in self.regions
        }

    def candidates(self, text: str) -> Iterator[Candidate]:
        (pattern,) = self._compiled
        # Texts repeat numbers (hotlines, signatures); libphonenumber is the costly part.
        scores: dict[str, float | None] = {}
        for match in pattern.finditer(text):
            value = match.group()
            if value in scores:
                score = scores[value]
            else:
                score = scores[value] = self._score(value)
            if score is not None:
                yield Candidate(match.start(), match.end(), score)

    def _score(self, value: str) -> float | None:
        """The base score of a number-shaped ``value``, or None when no plan accepts it."""
        digits = digits_of(value)
        if not 7 <= len(digits) <= 15 or _NOT_A_PHONE.fullmatch(value):
            return None
        # "00" starts an international number when it is written as one ("0044 20 …"); a bare
        # run of digits that starts with 00 is more likely an id ("Invoice 0068649743").
        if value[0] == "+" or (value.startswith("00") and len(digits) != len(value)):
            international = digits[2:] if value[0] == "0" else digits
            valid = self._numbers.international_valid(international)
            if valid is None:
                valid = self._parsed_valid("+" + international, None, mobile_only=False)
            return INTERNATIONAL_SCORE if valid else None
        formatted = len(digits) != len(value)
        groups = _DIGIT_GROUP.findall(value)
        # National formats never split off single digits twice ("1 2 3 4 5 6 7"), nor use dots
        # around a single digit, which version numbers do ("31.0.101.4502").
        singles = sum(len(g) == 1 for g in groups)
        if singles > 1 or (singles and "." in value):
            return None
        for region in self.regions:
            mobile_only = self._plans[region].screen(digits)
            if mobile_only is None:
                continue
            number_type = self._numbers.national_type(digits, region)
            if number_type is None:
                valid = self._parsed_valid(value, region, mobile_only)
            else:
                valid = number_type != UNKNOWN and (not mobile_only or number_type in _MOBILE)
            if valid:
                return FORMATTED_SCORE if formatted else DIGITS_ONLY_SCORE
        return None

    def _parsed_valid(self, value: str, region: str | None, mobile_only: bool) -> bool:
        """Validity by ``phonenumbers.parse`` itself, for what :class:`PhonePlans` leaves open."""
        phonenumbers = phonenumbers_module()
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            return False
        if region is None:
            return bool(phonenumbers.is_valid_number(number))
        if not phonenumbers.is_valid_number_for_region(number, region):
            return False
        return not mobile_only or phonenumbers.number_type(number) in _MOBILE


@dataclass(frozen=True)
class _Plan:
    """What a region's numbering plan says about a national number, checked before parsing.

    Parsing is the costly step, and most number-shaped text (order numbers, amounts) is not a
    phone number: the lengths and the plan's overall pattern reject it first. The patterns
    are only used where stripping the trunk prefix is all it takes to get the national number.
    """

    trunk: str
    lengths: frozenset[int]
    mobile_lengths: frozenset[int]
    general: re.Pattern[str] | None
    mobile: re.Pattern[str] | None

    @classmethod
    def of(cls, metadata: Any) -> _Plan:
        """The plan of a ``phonenumbers.PhoneMetadata``."""
        simple = metadata.national_prefix_transform_rule is None

        def pattern(desc: Any) -> re.Pattern[str] | None:
            source = desc.national_number_pattern if desc is not None else None
            return re.compile(source) if simple and source else None

        return cls(
            metadata.national_prefix or "",
            frozenset(metadata.general_desc.possible_length or ()),
            frozenset(metadata.mobile.possible_length or ()),
            pattern(metadata.general_desc),
            pattern(metadata.mobile),
        )

    def screen(self, digits: str) -> bool | None:
        """None when ``digits`` cannot be a number of this region (no need to parse them);
        True when it can only be a mobile number written without the trunk prefix.

        Where the trunk prefix is 0, a number written without it is only taken when it is a
        mobile number: dates and counts would pass for landlines otherwise.
        """
        if self.trunk and digits.startswith(self.trunk):
            national = digits[len(self.trunk) :]
            if len(national) in self.lengths and _may_match(self.general, national):
                return False
            if self.trunk != "1":
                return None
        if self.trunk in ("", "1"):
            fits = len(digits) in self.lengths and _may_match(self.general, digits)
            return False if fits else None
        if len(digits) >= 10 and len(digits) in self.mobile_lengths:
            return True if _may_match(self.mobile, digits) else None
        return None


def _may_match(pattern: re.Pattern[str] | None, national: str) -> bool:
    return pattern is None or pattern.fullmatch(national) is not None
