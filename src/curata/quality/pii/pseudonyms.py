"""Consistent fake values: the same value and salt always give the same realistic stand-in.

Every stand-in is drawn from a keyed hash (HMAC-SHA256) of the value, so nothing about the
value can be read from it without the salt, and joins and counts over pseudonymised data still
work. Stand-ins come from ranges reserved for examples or fiction, so none is a real person's:
example.com addresses, fictional phone ranges, a test card BIN, documentation IP ranges.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from curata.quality.pii.validators import (
    BECH32_CHARSET,
    BECH32_CONST,
    bech32_hrp_expand,
    bech32_polymod,
    convert_bits,
)

FIRST_NAMES = (
    "Alex", "Avery", "Blake", "Casey", "Charlie", "Dana", "Drew", "Eden", "Emery", "Finley",
    "Frankie", "Gray", "Harper", "Hayden", "Jamie", "Jordan", "Jules", "Kai", "Kendall", "Lane",
    "Logan", "Morgan", "Noel", "Parker", "Quinn", "Reese", "Riley", "River", "Robin", "Rowan",
    "Sage", "Sam", "Skyler", "Taylor", "Tatum", "Toni", "Val", "Wren",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Barlow", "Carver", "Dalton", "Ellery", "Fenwick", "Garner", "Hollis", "Ingram",
    "Jarvis", "Keane", "Lowell", "Marsh", "Nolan", "Oakley", "Pryor", "Quimby", "Rollins", "Sutton",
    "Thorne", "Upton", "Vance", "Whitlock", "Yardley",
)  # fmt: skip
PLACES = (
    "Springfield", "Riverton", "Fairview", "Lakeside", "Maplewood", "Brookhaven", "Ashford",
    "Pinecrest", "Millbrook", "Stonebridge", "Westfield", "Oakridge", "Greenhill", "Harborview",
    "Elmstead", "Cedar Falls",
)  # fmt: skip
ORGANIZATIONS = (
    "Acme Corp", "Globex", "Initech", "Hooli", "Vandelay Industries", "Soylent Co",
    "Umbrella Ltd", "Stark Labs", "Wonka Foods", "Tyrell Systems", "Cyberdyne", "Oscorp",
)  # fmt: skip
# US area codes for 555-01xx, the block set aside for fiction.
_US_AREAS = ("202", "212", "305", "312", "415", "512", "617", "702", "808", "907")
_DOCUMENTATION_NETWORKS = ("192.0.2", "198.51.100", "203.0.113")  # RFC 5737


def keyed_digest(value: str, salt: bytes, purpose: str) -> bytes:
    """HMAC-SHA256 of ``value`` under ``salt``, separated by ``purpose`` so uses don't link."""
    return hmac.new(salt, f"{purpose}\x1f{value}".encode(), hashlib.sha256).digest()


def normalized(entity: str, value: str) -> str:
    """The form of ``value`` that is hashed: one card, IBAN or address written two ways gives
    one hash and one stand-in."""
    if entity in ("CREDIT_CARD", "US_SSN"):
        return "".join(c for c in value if c.isdigit())
    if entity in ("IBAN_CODE", "MAC_ADDRESS"):
        return "".join(c for c in value if c.isalnum()).upper()
    if entity == "EMAIL_ADDRESS":
        return value.lower()
    return value


def pseudonym(entity: str, value: str, salt: bytes) -> str:
    """A realistic stand-in for ``value``, the same for the same value and salt.

    Entities without a realistic form (keys, tokens, custom ones) get ``<ENTITY_xxxxxxxx>``.

    >>> pseudonym("EMAIL_ADDRESS", "ada@example.org", b"salt")
    'user9c96f597@example.com'
    """
    digest = keyed_digest(normalized(entity, value), salt, "pseudonymize")
    number = int.from_bytes(digest, "big")
    make = _MAKERS.get(entity)
    if make is None:
        return f"<{entity}_{digest.hex()[:8]}>"
    return make(value, digest, number)


def _email(value: str, digest: bytes, number: int) -> str:
    return f"user{digest.hex()[:8]}@example.com"


def _phone(value: str, digest: bytes, number: int) -> str:
    # Ofcom's drama range 07700 900xxx for numbers that look British, 555-01xx otherwise.
    if value.startswith("+44"):
        return f"+44 7700 900{number % 1000:03d}"
    if value.startswith("0"):
        return f"07700 900{number % 1000:03d}"
    return f"+1 {_US_AREAS[number % len(_US_AREAS)]}-555-01{(number >> 8) % 100:02d}"


def _card(value: str, digest: bytes, number: int) -> str:
    body = "400000" + f"{number % 10**9:09d}"  # 400000: Visa's test range
    check = next(d for d in "0123456789" if _luhn_total(body + d) % 10 == 0)
    digits = body + check
    separator = next((c for c in value if c in " -"), "")
    return separator.join(digits[i : i + 4] for i in range(0, 16, 4))


def _luhn_total(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char) * (2 if position % 2 else 1)
        total += n - 9 if n > 9 else n
    return total


def _iban(value: str, digest: bytes, number: int) -> str:
    bban = "TEST" + f"{number % 10**14:014d}"  # GB layout: 4-letter bank, 14 digits
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "GB00")) % 97
    iban = f"GB{check:02d}{bban}"
    if " " in value:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ssn(value: str, digest: bytes, number: int) -> str:
    digits = f"9{number % 10**8:08d}"  # area 9xx is never issued
    separator = "-" if "-" in value else (" " if " " in value else "")
    return separator.join((digits[:3], digits[3:5], digits[5:]))


def _ip(value: str, digest: bytes, number: int) -> str:
    if ":" in value:
        groups = (int.from_bytes(digest[i : i + 2], "big") for i in (0, 2))
        return "2001:db8::" + ":".join(f"{g:x}" for g in groups)  # RFC 3849
    network = _DOCUMENTATION_NETWORKS[number % len(_DOCUMENTATION_NETWORKS)]
    return f"{network}.{1 + (number >> 8) % 254}"


def _mac(value: str, digest: bytes, number: int) -> str:
    separator = "-" if "-" in value else ":"
    return separator.join(["00", "00", "5e", "00", "53", f"{digest[0]:02x}"])  # RFC 7042


def _url(value: str, digest: bytes, number: int) -> str:
    return f"https://example.com/{digest.hex()[:10]}"


def _person(value: str, digest: bytes, number: int) -> str:
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return f"{first} {last}"


def _location(value: str, digest: bytes, number: int) -> str:
    return PLACES[number % len(PLACES)]


def _organization(value: str, digest: bytes, number: int) -> str:
    return ORGANIZATIONS[number % len(ORGANIZATIONS)]


def _bitcoin(value: str, digest: bytes, number: int) -> str:
    # A well-formed P2WPKH address (bech32, witness v0, 20-byte program) from the digest.
    data = [0, *(convert_bits(list(digest[:20]), 8, 5, pad=True) or [])]
    polymod = bech32_polymod([*bech32_hrp_expand("bc"), *data, 0, 0, 0, 0, 0, 0]) ^ BECH32_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return "bc1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


def _aws_access_key(value: str, digest: bytes, number: int) -> str:
    return value[:4] + base64.b32encode(digest).decode("ascii")[:16]


_MAKERS = {
    "EMAIL_ADDRESS": _email,
    "PHONE_NUMBER": _phone,
    "CREDIT_CARD": _card,
    "IBAN_CODE": _iban,
    "US_SSN": _ssn,
    "IP_ADDRESS": _ip,
    "MAC_ADDRESS": _mac,
    "URL": _url,
    "PERSON": _person,
    "LOCATION": _location,
    "ORGANIZATION": _organization,
    "CRYPTO": _bitcoin,
    "AWS_ACCESS_KEY": _aws_access_key,
}
