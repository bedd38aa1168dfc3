"""Checks that separate real identifiers from look-alikes: checksums, ranges, decodings.

Each takes the matched text and answers yes or no; none raises on odd input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import math
import re
from collections import Counter

# IBAN length per country (ISO 13616 registry); a checksum is only meaningful at the right length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Numbers printed on sample cards and in advertisements, which real people never hold.
FAKE_SSNS = frozenset({"123456789", "078051120", "219099999", "987654320", "987654321"})

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3


_NOT_ASCII_DIGIT = re.compile(r"[^0-9]+")


def digits_of(text: str) -> str:
    """The ASCII digits of ``text``, separators dropped."""
    return _NOT_ASCII_DIGIT.sub("", text)


def luhn_valid(text: str) -> bool:
    """True when the digits of ``text`` pass the Luhn check (card numbers, IMEIs).

    >>> luhn_valid("4111 1111 1111 1111")
    True
    """
    digits = digits_of(text)
    if len(digits) < 2:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_number_valid(text: str) -> bool:
    """True for a Luhn-valid number whose prefix and length match a card network."""
    digits = digits_of(text)
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    n, two, three, four = len(digits), int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if two in (36, 38, 39) or 300 <= three <= 305:  # Diners Club
        return 14 <= n <= 19
    if 3528 <= four <= 3589:  # JCB
        return n >= 16
    # Discover, UnionPay and Maestro share the 6 range; Maestro also uses 50 and 56-58.
    return (digits[0] == "6" or two in (50, 56, 57, 58)) and n >= 13


def iban_valid(text: str) -> bool:
    """True for an IBAN of its country's length whose mod-97 checksum is 1.

    >>> iban_valid("DE89 3704 0044 0532 0130 00")
    True
    """
    compact = "".join(text.split()).upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isascii():
        return False
    if not compact[2:4].isdigit() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def ssn_valid(text: str) -> bool:
    """True for a US social security number the SSA could have issued.

    Area 000, 666 and 900-999, group 00 and serial 0000 are never issued; numbers of one
    repeated digit and the well-known sample numbers are rejected too.
    """
    digits = digits_of(text)
    if len(digits) != 9 or digits in FAKE_SSNS or len(set(digits)) == 1:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ipv4_valid(text: str) -> bool:
    """True for a dotted-quad IPv4 address (each part 0-255, no leading zeros)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def ipv6_valid(text: str) -> bool:
    """True for an IPv6 address in any textual form (``::`` compression, embedded IPv4)."""
    if text.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def base58check_address_valid(text: str) -> bool:
    """True for a Bitcoin P2PKH (``1…``) or P2SH (``3…``) address with a valid checksum."""
    if not 25 <= len(text) <= 35:
        return False
    number = 0
    for char in text:
        index = _BASE58_INDEX.get(char)
        if index is None:
            return False
        number = number * 58 + index
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    raw = b"\x00" * leading_zeros + body
    if len(raw) != 25 or raw[0] not in (0x00, 0x05):
        return False
    checksum = hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4]
    return checksum == raw[-4:]


def bech32_polymod(values: list[int]) -> int:
    """The BIP 173 checksum polynomial over 5-bit values."""
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                check ^= generator
    return check


def bech32_hrp_expand(hrp: str) -> list[int]:
    """The human-readable part as it enters the checksum."""
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def convert_bits(data: list[int], from_bits: int, to_bits: int, pad: bool) -> list[int] | None:
    """Regroup a list of ``from_bits``-bit values into ``to_bits``-bit values."""
    accumulator, bits, result = 0, 0, []
    max_value = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & max_value)
    if pad and bits:
        result.append((accumulator << (to_bits - bits)) & max_value)
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & max_value):
        return None
    return result


def segwit_address_valid(text: str) -> bool:
    """True for a Bitcoin mainnet segwit address: bech32 for v0, bech32m for v1 and later."""
    if text.lower() != text and text.upper() != text:
        return False  # BIP 173 forbids mixed case
    address = text.lower()
    if not address.startswith("bc1") or not 14 <= len(address) <= 90:
        return False
    data = [_BECH32_INDEX.get(c, -1) for c in address[3:]]
    if -1 in data or len(data) < 7:
        return False
    constant = bech32_polymod([*bech32_hrp_expand("bc"), *data])
    version = data[0]
    if constant != (BECH32_CONST if version == 0 else BECH32M_CONST) or version > 16:
        return False
    program = convert_bits(data[1:-6], 5, 8, pad=False)
    if program is None or not 2 <= len(program) <= 40:
        return False
    return version != 0 or len(program) in (20, 32)


def b64url_decode(part: str) -> bytes | None:
    """Decode unpadded base64url, or None when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None


def jwt_valid(text: str) -> bool:
    """True for ``header.payload.signature`` whose header is a JSON object with ``alg``."""
    parts = text.split(".")
    if len(parts) != 3:
        return False
    header = b64url_decode(parts[0])
    if header is None:
        return False
    try:
        decoded = json.loads(header)
    except ValueError:
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("alg"), str)


def shannon_entropy(text: str) -> float:
    """Bits of Shannon entropy per character of ``text``."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def character_classes(text: str) -> int:
    """How many of lower-case, upper-case, digits and other symbols ``text`` mixes."""
    return (
        any(c.islower() for c in text)
        + any(c.isupper() for c in text)
        + any(c.isdigit() for c in text)
        + any(not c.isalnum() and c not in "_-." for c in text)
    )


VALIDATORS = {"luhn": luhn_valid, "mod97": iban_valid}
