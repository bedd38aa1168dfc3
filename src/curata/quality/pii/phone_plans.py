"""libphonenumber's validity rules, evaluated on digit strings with precompiled patterns.

``phonenumbers.parse`` followed by ``is_valid_number`` costs tens of microseconds, most of it in
Python bookkeeping around a handful of regular expressions taken from the numbering-plan
metadata. This module applies the same metadata the same way (national prefix stripping, the
length test, the number-type cascade, the choice among regions sharing a calling code) on the
digits alone. Where the rules involve more (prefix transform rules, international dialling
prefixes, a number starting with its own country code, non-geographic codes) it answers None
and the caller falls back to ``phonenumbers`` itself; tests compare both on random numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UNKNOWN = 99  # phonenumbers.PhoneNumberType.UNKNOWN
_MIN_NSN, _MAX_NSN = 2, 17
# The order phonenumbers tests number types in (_number_type_helper), fixed line and mobile last.
_TYPES = (
    ("premium_rate", 4), ("toll_free", 3), ("shared_cost", 5), ("voip", 6),
    ("personal_number", 7), ("pager", 8), ("uan", 9), ("voicemail", 10),
)  # fmt: skip
FIXED_LINE, MOBILE, FIXED_LINE_OR_MOBILE = 0, 1, 2


@dataclass(frozen=True)
class _Desc:
    """A PhoneNumberDesc: possible lengths and the national number pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str] | None

    def matches(self, nsn: str) -> bool:
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern is not None and self.pattern.fullmatch(nsn) is not None


def _desc(desc: Any) -> _Desc | None:
    if desc is None:
        return None
    source = desc.national_number_pattern
    return _Desc(frozenset(desc.possible_length or ()), re.compile(source) if source else None)


class RegionPlan:
    """One region's numbering plan, compiled."""

    def __init__(self, metadata: Any) -> None:
        self.country_code = str(metadata.country_code)
        general = metadata.general_desc
        self.general = re.compile(general.national_number_pattern)
        self.lengths = tuple(sorted(general.possible_length or ()))
        self.local_lengths = frozenset(general.possible_length_local_only or ())
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        international = metadata.international_prefix
        self.international_prefix = re.compile(international) if international else None
        self.types = [(t, d) for name, t in _TYPES if (d := _desc(getattr(metadata, name)))]
        self.fixed_line = _desc(metadata.fixed_line)
        self.mobile = _desc(metadata.mobile)
        self.same_mobile_and_fixed = bool(metadata.same_mobile_and_fixed_line_pattern)
        leading = metadata.leading_digits
        self.leading_digits = re.compile(leading) if leading else None

    def number_type(self, nsn: str) -> int:
        """phonenumbers' number type of a national significant number (UNKNOWN: invalid)."""
        if self.lengths and len(nsn) not in self.lengths:
            return UNKNOWN
        if self.general.fullmatch(nsn) is None:
            return UNKNOWN
        for number_type, desc in self.types:
            if desc.matches(nsn):
                return number_type
        if self.fixed_line is not None and self.fixed_line.matches(nsn):
            mobile = self.mobile is not None and self.mobile.matches(nsn)
            return FIXED_LINE_OR_MOBILE if self.same_mobile_and_fixed or mobile else FIXED_LINE
        if not self.same_mobile_and_fixed and self.mobile is not None and self.mobile.matches(nsn):
            return MOBILE
        return UNKNOWN

    def national_number(self, digits: str) -> str:
        """``digits`` without the national (trunk) prefix, when phonenumbers would strip it."""
        if self.national_prefix is None:
            return digits
        match = self.national_prefix.match(digits)
        if match is None:
            return digits
        stripped = digits[match.end() :]
        if self.general.fullmatch(digits) and not self.general.fullmatch(stripped):
            return digits
        length = len(stripped)
        if length in self.local_lengths or not self.lengths or length < self.lengths[0]:
            return digits
        return stripped if length > self.lengths[-1] or length in self.lengths else digits


class PhonePlans:
    """Validity of phone numbers written as digits, per region or in international form.

    Args:
        phonenumbers: the ``phonenumbers`` module (imported by the caller, lazily).
    """

    def __init__(self, phonenumbers: Any) -> None:
        self._phonenumbers = phonenumbers
        self._plans: dict[str, RegionPlan | None] = {}

    def plan(self, region: str) -> RegionPlan | None:
        """The compiled plan of ``region``; None where this module does not apply its rules."""
        if region not in self._plans:
            metadata = self._phonenumbers.PhoneMetadata.metadata_for_region(region)
            simple = metadata is not None and not metadata.national_prefix_transform_rule
            self._plans[region] = RegionPlan(metadata) if simple else None
        return self._plans[region]

    def national_type(self, digits: str, region: str) -> int | None:
        """The number type of ``digits`` dialled nationally in ``region`` (UNKNOWN: invalid).

        None when phonenumbers must decide (the digits start with an international prefix or
        the region's own country code, or the region's plan transforms prefixes).
        """
        plan = self.plan(region)
        if plan is None or digits.startswith(plan.country_code):
            return None
        if plan.international_prefix is not None and plan.international_prefix.match(digits):
            return None
        nsn = plan.national_number(digits)
        if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
            return UNKNOWN
        return plan.number_type(nsn)

    def international_valid(self, digits: str) -> bool | None:
        """Whether ``+digits`` is a valid number; None when phonenumbers must decide."""
        regions_of = self._phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        if digits.startswith("0"):
            return False
        for size in range(1, min(len(digits), 3) + 1):
            regions = regions_of.get(int(digits[:size]))
            if regions:
                break
        else:
            return False
        main = self.plan(regions[0]) if regions[0] != "001" else None
        if main is None:
            return None
        nsn = main.national_number(digits[size:])
        if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
            return False
        if len(regions) == 1:
            return main.number_type(nsn) != UNKNOWN
        # As phonenumbers' region_code_for_number: the first region whose leading digits match,
        # else the first where the number is valid.
        for region in regions:
            plan = self.plan(region)
            if plan is None:
                return None
            if plan.leading_digits is not None:
                if plan.leading_digits.match(nsn):
                    return plan.number_type(nsn) != UNKNOWN
            elif plan.number_type(nsn) != UNKNOWN:
                return True
        return False
