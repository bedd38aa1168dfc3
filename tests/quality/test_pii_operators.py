"""Redaction operators: what replaces PII, consistency, reversible encryption and its keys, and
records that never hold the original value."""

from __future__ import annotations

import ipaddress
import re
import stat
from pathlib import Path

import pytest

from curata.errors import AlreadyExists, InvalidInput, NotFound
from curata.quality.pii import (
    OPERATORS,
    AppliedRedaction,
    PiiSpan,
    detect_pii,
    generate_key_file,
    load_key,
    redact_text,
    reveal_text,
)
from curata.quality.pii.pseudonyms import FIRST_NAMES, LAST_NAMES
from curata.quality.pii.validators import iban_valid, luhn_valid, segwit_address_valid

TICKET = (
    "Hi, I'm Maria. Mail maria.keller@example.org or call +1 415-555-2671. "
    "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, "
    "logged in from 203.0.113.77 and 2001:db8::1, "
    "wallet bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq."
)
SALT = "pipeline-salt"


def values_of(text: str, spans: list[PiiSpan]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


@pytest.fixture
def spans() -> list[PiiSpan]:
    found = detect_pii(TICKET)
    assert len(found) == 7
    return found


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_key(generate_key_file(tmp_path / "pii.key"))


def check_records(original: str, new: str, applied: list[AppliedRedaction]) -> None:
    """Records point at the value in the original and at its replacement in the new text, and
    everything between them is unchanged."""
    position = new_position = 0
    for record in applied:
        assert original[position : record.start] == new[new_position : record.new_start]
        position, new_position = record.end, record.new_end
    assert original[position:] == new[new_position:]


def test_replace(spans: list[PiiSpan]) -> None:
    new, applied = redact_text(TICKET, spans, "replace")
    assert new.startswith("Hi, I'm Maria. Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>. Card ")
    assert [new[r.new_start : r.new_end] for r in applied] == [f"<{s.entity}>" for s in spans]
    assert [(r.entity, r.start, r.end) for r in applied] == [
        (s.entity, s.start, s.end) for s in spans
    ]
    assert {r.operator for r in applied} == {"replace"}
    check_records(TICKET, new, applied)


def test_mask_keeps_length_and_the_last_four_digits_of_cards_and_phones(
    spans: list[PiiSpan],
) -> None:
    new, applied = redact_text(TICKET, spans, "mask")
    assert len(new) == len(TICKET)
    masked = {r.entity: new[r.new_start : r.new_end] for r in applied}
    assert masked["CREDIT_CARD"] == "**** **** **** 1111"
    assert masked["PHONE_NUMBER"] == "+* ***-***-2671"
    assert masked["EMAIL_ADDRESS"] == "*" * len("maria.keller@example.org")
    assert masked["IBAN_CODE"] == "**** **** **** **** **** **"
    check_records(TICKET, new, applied)


def test_redact_removes(spans: list[PiiSpan]) -> None:
    new, applied = redact_text(TICKET, spans, "redact")
    assert new.startswith("Hi, I'm Maria. Mail  or call . Card , IBAN , ")
    assert all(r.new_start == r.new_end for r in applied)
    check_records(TICKET, new, applied)


def test_hash_is_keyed_and_consistent(spans: list[PiiSpan]) -> None:
    new, applied = redact_text(TICKET, spans, "hash", salt=SALT)
    email_hash = new[applied[0].new_start : applied[0].new_end]
    assert re.fullmatch(r"<EMAIL_ADDRESS:[0-9a-f]{16}>", email_hash)
    other = "Second ticket from maria.keller@example.org."
    again, _ = redact_text(other, detect_pii(other), "hash", salt=SALT)
    assert again == f"Second ticket from {email_hash}."
    salted, _ = redact_text(other, detect_pii(other), "hash", salt="another salt")
    assert email_hash not in salted
    with pytest.raises(InvalidInput, match="salt"):
        redact_text(TICKET, spans, "hash")


def test_pseudonymize_gives_realistic_consistent_values(spans: list[PiiSpan]) -> None:
    new, applied = redact_text(TICKET, spans, "pseudonymize", salt=SALT)
    fake = {r.entity: new[r.new_start : r.new_end] for r in applied if r.entity != "IP_ADDRESS"}
    ips = [new[r.new_start : r.new_end] for r in applied if r.entity == "IP_ADDRESS"]
    assert re.fullmatch(r"user[0-9a-f]{8}@example\.com", fake["EMAIL_ADDRESS"])
    assert re.fullmatch(r"\+1 \d{3}-555-01\d{2}", fake["PHONE_NUMBER"])
    assert fake["CREDIT_CARD"].startswith("4000 00") and luhn_valid(fake["CREDIT_CARD"])
    assert iban_valid(fake["IBAN_CODE"]) and fake["IBAN_CODE"].startswith("GB")
    assert segwit_address_valid(fake["CRYPTO"])
    v4, v6 = (ipaddress.ip_address(ip) for ip in ips)
    assert any(
        v4 in ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
    )
    assert v6 in ipaddress.ip_network("2001:db8::/32")
    # The same value and salt give the same stand-in, in any text; another salt, another one.
    other = "card 4111-1111-1111-1111 again, mail maria.keller@example.org"
    again, _ = redact_text(other, detect_pii(other), "pseudonymize", salt=SALT)
    assert fake["EMAIL_ADDRESS"] in again
    assert fake["CREDIT_CARD"].replace(" ", "-") in again
    salted, _ = redact_text(other, detect_pii(other), "pseudonymize", salt="x")
    assert fake["EMAIL_ADDRESS"] not in salted
    with pytest.raises(InvalidInput, match="salt"):
        redact_text(TICKET, spans, "pseudonymize")


def test_pseudonymize_names_and_unknown_entities() -> None:
    text = "Maria Keller, EMP-1234"
    spans = [PiiSpan("PERSON", 0, 12, 0.85), PiiSpan("EMPLOYEE_ID", 14, 22, 0.6)]
    new, _ = redact_text(text, spans, "pseudonymize", salt=SALT)
    first, last, rest = new.split(" ", 2)
    assert first in FIRST_NAMES and last.rstrip(",") in LAST_NAMES
    assert re.fullmatch(r"<EMPLOYEE_ID_[0-9a-f]{8}>", rest)


def test_encrypt_and_reveal_round_trip(spans: list[PiiSpan], key: bytes, tmp_path: Path) -> None:
    new, applied = redact_text(TICKET, spans, "encrypt", key=key)
    for span in spans:
        assert TICKET[span.start : span.end] not in new
    tokens = [new[r.new_start : r.new_end] for r in applied]
    assert all(
        re.fullmatch(rf"⟦enc:{r.entity}:[A-Za-z0-9_\-]+⟧", t)
        for r, t in zip(applied, tokens, strict=True)
    )
    check_records(TICKET, new, applied)
    assert reveal_text(new, key) == TICKET
    assert reveal_text(new, tmp_path / "pii.key") == TICKET  # the key file's path works too
    # Encrypting twice gives different tokens (random nonces), both readable.
    second, _ = redact_text(TICKET, spans, "encrypt", key=tmp_path / "pii.key")
    assert second != new and reveal_text(second, key) == TICKET


def test_reveal_with_the_wrong_key_fails_clearly(
    spans: list[PiiSpan], key: bytes, tmp_path: Path
) -> None:
    new, _ = redact_text(TICKET, spans, "encrypt", key=key)
    other = load_key(generate_key_file(tmp_path / "other.key"))
    with pytest.raises(InvalidInput, match="does not decrypt with this key"):
        reveal_text(new, other)
    tampered = new.replace("⟦enc:EMAIL_ADDRESS:", "⟦enc:URL:", 1)  # the label is authenticated
    with pytest.raises(InvalidInput, match="URL"):
        reveal_text(tampered, key)
    assert reveal_text("nothing encrypted here", key) == "nothing encrypted here"


def test_key_files(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_key(path)) == 32
    with pytest.raises(AlreadyExists):
        generate_key_file(path)
    with pytest.raises(NotFound, match="does not exist"):
        load_key(tmp_path / "missing.key")
    (tmp_path / "bad.key").write_text("hello\n")
    with pytest.raises(InvalidInput, match="not a curata key file"):
        load_key(tmp_path / "bad.key")
    (tmp_path / "short.key").write_text("curata-pii-key-v1:AAAA\n")
    with pytest.raises(InvalidInput, match="32 bytes"):
        load_key(tmp_path / "short.key")
    with pytest.raises(InvalidInput, match="needs a key"):
        redact_text("ada@example.org", [PiiSpan("EMAIL_ADDRESS", 0, 15, 1.0)], "encrypt")
    with pytest.raises(InvalidInput, match="32 bytes"):
        redact_text(
            "ada@example.org", [PiiSpan("EMAIL_ADDRESS", 0, 15, 1.0)], "encrypt", key=b"short"
        )


def test_overlapping_spans_are_merged_so_nothing_leaks() -> None:
    text = "see https://ada@example.org/x now"
    spans = [PiiSpan("URL", 4, 29, 0.6), PiiSpan("EMAIL_ADDRESS", 12, 27, 1.0)]
    new, applied = redact_text(text, spans, "replace")
    assert new == "see <EMAIL_ADDRESS> now"
    assert [(r.entity, r.start, r.end) for r in applied] == [("EMAIL_ADDRESS", 4, 29)]
    chained = [PiiSpan("A", 0, 5, 0.5), PiiSpan("B", 3, 8, 0.9), PiiSpan("C", 7, 10, 0.5)]
    assert redact_text("0123456789xx", chained, "redact")[0] == "xx"
    adjacent = [PiiSpan("A", 0, 2, 0.5), PiiSpan("B", 2, 4, 0.5)]
    assert redact_text("abcd", adjacent, "replace")[0] == "<A><B>"


def test_operator_per_entity(spans: list[PiiSpan]) -> None:
    _, applied = redact_text(TICKET, spans, {"EMAIL_ADDRESS": "hash", "*": "mask"}, salt=SALT)
    assert {r.entity: r.operator for r in applied}["EMAIL_ADDRESS"] == "hash"
    assert {r.operator for r in applied if r.entity != "EMAIL_ADDRESS"} == {"mask"}
    _, applied = redact_text(TICKET, spans, {"URL": "redact"})
    assert {r.operator for r in applied} == {"replace"}


@pytest.mark.parametrize("operator", OPERATORS)
def test_records_never_hold_the_original_value(
    operator: str, spans: list[PiiSpan], key: bytes
) -> None:
    new, applied = redact_text(TICKET, spans, operator, salt=SALT, key=key)
    assert len(applied) == len(spans)
    for record, value in zip(applied, values_of(TICKET, spans), strict=True):
        assert value not in repr(record)
        assert value not in str(record.to_dict())
        assert set(record.to_dict()) == {
            "entity",
            "start",
            "end",
            "new_start",
            "new_end",
            "operator",
        }
        if operator != "mask":
            assert value not in new


def test_bad_input() -> None:
    with pytest.raises(InvalidInput, match="Unknown redaction operator 'blur'"):
        redact_text("x", [], "blur")
    with pytest.raises(InvalidInput, match="not inside the text"):
        redact_text("short", [PiiSpan("EMAIL_ADDRESS", 2, 50, 1.0)], "replace")
    assert redact_text("nothing", [], "replace") == ("nothing", [])
