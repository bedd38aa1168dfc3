"""PII detection: what each recognizer finds and rejects, scores, custom recognizers, NER, speed
guards and the batch API."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import curata.quality
import curata.quality.pii as pii
from curata.errors import InvalidInput, MissingDependency, NotFound
from curata.quality.pii import PiiSpan, detect_pii, detect_pii_batch, load_recognizers
from curata.quality.pii import detect as detect_module
from curata.quality.pii.detect import resolve_overlaps

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
    "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
RSA_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98vJt3Yc1x2Zk\nQ2x9c3Vm+/abc=\n"
    "-----END RSA PRIVATE KEY-----"
)


def found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    """(entity, value) of every span detect_pii reports."""
    return [(s.entity, text[s.start : s.end]) for s in detect_pii(text, **kwargs)]  # type: ignore[arg-type]


# --- true positives, in sentences a support ticket or chat log would hold ------------------------

POSITIVES = [
    (
        "EMAIL_ADDRESS",
        "Please write to jane.doe+billing@mail.example.co.uk today.",
        "jane.doe+billing@mail.example.co.uk",
    ),
    ("PHONE_NUMBER", "You can reach me on +1 415-555-2671 after 5pm.", "+1 415-555-2671"),
    ("PHONE_NUMBER", "Mein Handy: +49 151 23456789, bitte zurückrufen.", "+49 151 23456789"),
    ("PHONE_NUMBER", "call our London desk on 020 7946 0958 tomorrow", "020 7946 0958"),
    ("PHONE_NUMBER", "Office (415) 555-2671, ask for Sam.", "(415) 555-2671"),
    ("PHONE_NUMBER", "Appelez le 06 12 34 56 78 svp", "06 12 34 56 78"),
    ("PHONE_NUMBER", "from abroad dial 0044 20 7946 0958", "0044 20 7946 0958"),
    (
        "CREDIT_CARD",
        "I paid with 4111 1111 1111 1111 exp 12/26 and got charged twice.",
        "4111 1111 1111 1111",
    ),
    ("CREDIT_CARD", "card: 5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("CREDIT_CARD", "amex 378282246310005 on file", "378282246310005"),
    ("CREDIT_CARD", "card 4111111111111111 1226 123 (exp, cvv)", "4111111111111111"),
    (
        "IBAN_CODE",
        "Refund to IBAN DE89 3704 0044 0532 0130 00 please.",
        "DE89 3704 0044 0532 0130 00",
    ),
    ("IBAN_CODE", "GB82WEST12345698765432 is my account", "GB82WEST12345698765432"),
    ("IBAN_CODE", "iban GB82 WEST 1234 5698 7654 32 THANKS", "GB82 WEST 1234 5698 7654 32"),
    ("US_SSN", "For the W-9 my SSN is 536-22-1234.", "536-22-1234"),
    ("IP_ADDRESS", "Login failed from 203.0.113.77 twice.", "203.0.113.77"),
    ("IP_ADDRESS", "the server at 2001:db8::8a2e:370:7334.", "2001:db8::8a2e:370:7334"),
    ("IP_ADDRESS", "mapped ::ffff:192.0.2.1 in the log", "::ffff:192.0.2.1"),
    ("IP_ADDRESS", "from fe80::1: connection reset", "fe80::1"),
    ("MAC_ADDRESS", "my adapter 00:1A:2B:3C:4D:5E keeps dropping", "00:1A:2B:3C:4D:5E"),
    ("MAC_ADDRESS", "device 00-1a-2b-3c-4d-5e", "00-1a-2b-3c-4d-5e"),
    (
        "URL",
        "Screenshot: https://files.example.com/t/123?x=1).",
        "https://files.example.com/t/123?x=1",
    ),
    ("URL", "see www.example.org/help, then retry", "www.example.org/help"),
    ("URL", "visit status.example.io/incidents for updates", "status.example.io/incidents"),
    (
        "CRYPTO",
        "send it to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 please",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    ),
    ("CRYPTO", "P2SH 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy.", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
    (
        "CRYPTO",
        "wallet bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    ),
    (
        "CRYPTO",
        "taproot bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297 ok",
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
    ),
    ("AWS_ACCESS_KEY", "my key id is AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_ACCESS_KEY", "temporary ASIAY34FZKBOKMUTVV7A expired", "ASIAY34FZKBOKMUTVV7A"),
    (
        "AWS_SECRET_KEY",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (  # as ~/.aws/credentials and .env files write it
        "AWS_SECRET_KEY",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "AWS_SECRET_KEY",
        "AWS_SECRET_ACCESS_KEY=Xk3lrXUtnFEMI/K7MDENG/bPxRfiCYzq9aQ2Lm7p",
        "Xk3lrXUtnFEMI/K7MDENG/bPxRfiCYzq9aQ2Lm7p",
    ),
    ("PRIVATE_KEY", f"here is the key:\n{RSA_KEY}\nthanks", RSA_KEY),
    ("JWT", f"Authorization: Bearer {JWT}.", JWT),
    (
        "GENERIC_SECRET",
        "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc in the config",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    ("GENERIC_SECRET", "my password: Tr0ub4dor&3 (please reset it)", "Tr0ub4dor&3"),
]


@pytest.mark.parametrize(("entity", "text", "value"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_finds_each_entity_in_a_sentence(entity: str, text: str, value: str) -> None:
    assert (entity, value) in found(text)


def test_reports_offsets_and_no_value() -> None:
    text = "mail ada@example.org now"
    (span,) = detect_pii(text)
    assert span == PiiSpan("EMAIL_ADDRESS", 5, 20, 1.0)
    assert "ada" not in repr(span) and span.to_dict()["start"] == 5


# --- true negatives ------------------------------------------------------------------------------

NEGATIVES = [
    ("CREDIT_CARD", "card 4111 1111 1111 1112 (one digit off: fails Luhn)"),
    ("CREDIT_CARD", "tracking 1234567812345670 passes Luhn but no card network starts with 1"),
    # Luhn-valid with a card prefix, but grouped like the start of a UUID.
    ("CREDIT_CARD", "request id 38541539-5770-4982-a877-150771093451"),
    ("IBAN_CODE", "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum"),
    ("IBAN_CODE", "DE89 3704 0044 0532 0130 is too short for Germany"),
    ("US_SSN", "SSN 000-12-3456"),
    ("US_SSN", "SSN 666-12-3456"),
    ("US_SSN", "SSN 912-34-5678"),
    ("US_SSN", "SSN 123-00-4567 and 123-45-0000"),
    ("US_SSN", "the sample card number 078-05-1120 and 123-45-6789"),
    ("IP_ADDRESS", "999.999.1.1 and 256.1.1.1 are not addresses"),
    ("IP_ADDRESS", "release v1.2.3.4 and 1.2.3.4.5"),
    ("IP_ADDRESS", "meet at 12:30:45 tomorrow"),
    ("AWS_SECRET_KEY", "checksum wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in the manifest"),
    ("PHONE_NUMBER", "order 1234567890 shipped"),
    ("PHONE_NUMBER", "Invoice 0068649743 is attached"),
    ("PHONE_NUMBER", "shipped on 2026-11-25, ref 20261125, qty 12 34 56"),
    ("PHONE_NUMBER", "driver 31.0.101.4502 installed"),
    ("URL", "see readme.md and main.py and notes.txt"),
    ("URL", "contact ada@example.org"),
    ("GENERIC_SECRET", "my token expired yesterday, password reset link please"),
    ("GENERIC_SECRET", "the api key refresh_interval_seconds is documented"),
    ("JWT", "eyJzdWIiOiIxMjM0NTY3ODkwIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc (header has no alg)"),
    ("CRYPTO", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 has a wrong checksum"),
    ("CRYPTO", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr has a wrong checksum"),
    ("PRIVATE_KEY", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----"),
]


@pytest.mark.parametrize(("entity", "text"), NEGATIVES, ids=[n[0] for n in NEGATIVES])
def test_rejects_look_alikes(entity: str, text: str) -> None:
    assert [f for f in found(text) if f[0] == entity] == []


def test_a_four_part_version_number_is_reported_as_an_ip_address() -> None:
    # Decided and documented: "version 1.2.3.4" is a valid IPv4 address; redaction errs on the
    # side of privacy. "v1.2.3.4" and five-part versions are not addresses.
    assert found("upgraded to version 1.2.3.4") == [("IP_ADDRESS", "1.2.3.4")]


def test_phone_regions_decide_which_national_formats_count() -> None:
    text = "Festnetz 030 901820"
    assert ("PHONE_NUMBER", "030 901820") in found(text)
    assert found(text, phone_regions=("US",)) == []
    with pytest.raises(InvalidInput, match="ZZ"):
        detect_pii(text, phone_regions=("ZZ",))


def test_compiled_numbering_plans_agree_with_phonenumbers() -> None:
    # PhonePlans re-applies libphonenumber's metadata without parsing; it must say exactly what
    # phonenumbers.parse + is_valid_number say, for valid and invalid numbers alike.
    phonenumbers = pytest.importorskip("phonenumbers")
    from curata.quality.pii.phone_plans import UNKNOWN, PhonePlans

    plans = PhonePlans(phonenumbers)
    rng = random.Random(11)
    regions = ["US", "GB", "DE", "FR", "IN", "IT", "BR", "JP", "AU", "CA", "CH", "ES", "SG"]
    checked = valid = 0
    for region in regions:
        for number_type in (0, 1, 3, 4):  # fixed line, mobile, toll free, premium rate
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            for _ in range(60):
                digits = list(nsn)
                for _ in range(rng.randint(0, 2)):
                    digits[rng.randrange(len(digits))] = rng.choice("0123456789")
                national = rng.choice(["", "0", "1"]) + "".join(digits)
                mine = plans.national_type(national, region)
                try:
                    parsed = phonenumbers.parse(national, region)
                    theirs = phonenumbers.is_valid_number_for_region(parsed, region)
                except phonenumbers.NumberParseException:
                    theirs = False
                if mine is not None:
                    assert (mine != UNKNOWN) == theirs, (region, national)
                    checked += 1
                    valid += theirs
                international = f"{example.country_code}{''.join(digits)}"
                mine_international = plans.international_valid(international)
                try:
                    parsed = phonenumbers.parse("+" + international, None)
                    theirs = phonenumbers.is_valid_number(parsed)
                except phonenumbers.NumberParseException:
                    theirs = False
                if mine_international is not None:
                    assert mine_international == theirs, international
    assert checked > 2000 and 0.2 < valid / checked < 0.9


# --- scores, context, threshold, overlaps --------------------------------------------------------


def test_context_words_raise_a_score_above_the_threshold() -> None:
    bare = "4155552671 is the one"
    assert found(bare) == []  # digits alone score 0.4
    [span] = detect_pii("call me on 4155552671 is the one")
    assert (span.entity, span.score) == ("PHONE_NUMBER", 0.75)
    assert found("ssn 536221234") == [("US_SSN", "536221234")]
    assert found("id 536221234") == []


def test_context_must_precede_within_five_words() -> None:
    far = "call, then after one two three four five: 4155552671"
    assert found(far) == []


def test_threshold_filters_scores() -> None:
    text = "reach +1 415-555-2671 or ada@example.org"
    assert {e for e, _ in found(text, threshold=1.0)} == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    assert {e for e, _ in found("number +1 415-555-2671", threshold=0.9)} == set()
    with pytest.raises(InvalidInput, match="threshold"):
        detect_pii(text, threshold=1.5)


def test_overlapping_candidates_keep_the_better_one() -> None:
    # The e-mail's domain is also a bare domain; the JWT follows "token" (a secret keyword);
    # the AWS secret follows "secret".
    assert found("write ada@example.com") == [("EMAIL_ADDRESS", "ada@example.com")]
    assert found(f"token {JWT}") == [("JWT", JWT)]
    assert [e for e, _ in found("aws secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")] == [
        "AWS_SECRET_KEY"
    ]


def test_overlap_resolution_is_deterministic() -> None:
    spans = [
        PiiSpan("URL", 0, 10, 0.6),
        PiiSpan("EMAIL_ADDRESS", 2, 10, 0.6),
        PiiSpan("PHONE_NUMBER", 5, 20, 0.9),
        PiiSpan("IP_ADDRESS", 20, 25, 0.6),
        PiiSpan("MAC_ADDRESS", 0, 4, 0.6),
    ]
    expected = [PiiSpan("MAC_ADDRESS", 0, 4, 0.6), PiiSpan("PHONE_NUMBER", 5, 20, 0.9),
                PiiSpan("IP_ADDRESS", 20, 25, 0.6)]  # fmt: skip
    for seed in range(5):
        shuffled = spans[:]
        random.Random(seed).shuffle(shuffled)
        assert resolve_overlaps(shuffled) == expected


def test_pattern_matches_win_over_overlapping_model_guesses() -> None:
    # A model may call "acme.com/help" an organisation (score 0.85): the URL stays.
    url, org = PiiSpan("URL", 10, 23, 0.5), PiiSpan("ORGANIZATION", 10, 18, 0.85)
    person = PiiSpan("PERSON", 0, 9, 0.85)
    assert resolve_overlaps([url], [org, person]) == [person, url]
    # Without the pattern match, the guess is kept.
    assert resolve_overlaps([], [org]) == [org]


def _greedy(spans: list[PiiSpan], guesses: list[PiiSpan]) -> list[PiiSpan]:
    """The rule resolve_overlaps follows, spelt out: in rank order, keep what overlaps nothing
    kept before (pattern matches first, then guesses)."""

    def rank(found: list[PiiSpan]) -> list[PiiSpan]:
        return sorted(found, key=lambda s: (-s.score, s.start - s.end, s.start, s.entity))

    kept: list[PiiSpan] = []
    for span in [*rank(spans), *rank(guesses)]:
        if all(k.end <= span.start or span.end <= k.start for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def test_overlap_resolution_keeps_the_best_ranked_spans_that_fit() -> None:
    rng = random.Random(7)
    entities = ["URL", "EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"]

    def span() -> PiiSpan:
        start = rng.randint(0, 80)
        return PiiSpan(rng.choice(entities), start, start + rng.randint(1, 15),
                       rng.choice([0.4, 0.5, 0.75, 1.0]))  # fmt: skip

    for _ in range(2000):
        spans = [span() for _ in range(rng.randint(0, 25))]
        guesses = [span() for _ in range(rng.randint(0, 4))]
        assert resolve_overlaps(spans, guesses) == _greedy(spans, guesses)


def test_overlap_resolution_stays_linear_in_the_number_of_spans() -> None:
    # A 100 MB text dense with PII holds millions of spans; ranked here so that each would be
    # inserted at the front of the kept list, which took hours when it was a sorted list.
    finishes_in_time(
        "from curata.quality.pii import PiiSpan\n"
        "from curata.quality.pii.detect import resolve_overlaps\n"
        "n = 1_000_000\n"
        "spans = [PiiSpan('EMAIL_ADDRESS', 10 * i, 10 * i + 8, i / n) for i in range(n)]\n"
        "assert len(resolve_overlaps(spans)) == n\n",
        seconds=120,
    )


def test_entities_select_what_is_reported() -> None:
    text = "ada@example.org +1 415-555-2671"
    assert found(text, entities=["PHONE_NUMBER"]) == [("PHONE_NUMBER", "+1 415-555-2671")]
    with pytest.raises(InvalidInput, match="NOPE") as err:
        detect_pii(text, entities=["NOPE"])
    assert "EMAIL_ADDRESS" in str(err.value)


def test_supported_entities_lists_every_entity() -> None:
    entities = pii.supported_entities()
    assert {e for e, _, _ in POSITIVES} <= set(entities)
    assert {"PERSON", "LOCATION", "ORGANIZATION"} <= set(entities)


# --- NER -----------------------------------------------------------------------------------------


def test_names_are_not_detected_without_ner() -> None:
    assert found("Maria Keller from Lyon", entities=["PERSON", "LOCATION"]) == []


def test_ner_engine_must_be_spacy() -> None:
    with pytest.raises(InvalidInput, match="spacy:"):
        detect_pii("text", ner="flair:ner")


def test_missing_spacy_model_says_what_to_install() -> None:
    pytest.importorskip("spacy")
    assert not pii.ner_available("spacy:no_such_model_xyz")
    with pytest.raises(MissingDependency, match="python -m spacy download no_such_model_xyz"):
        detect_pii("Maria Keller", ner="spacy:no_such_model_xyz")


def test_missing_spacy_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from curata.quality.pii import ner

    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy raises ImportError
    ner.load_model.cache_clear()
    try:
        with pytest.raises(MissingDependency, match=r"curata\[ner\]"):
            detect_pii("Maria Keller", ner="spacy:en_core_web_sm")
    finally:
        ner.load_model.cache_clear()


def test_ner_with_a_spacy_model_folder(tmp_path: Path) -> None:
    # A real spaCy pipeline saved to disk and loaded by path: an entity ruler stands in for a
    # statistical model, which this test cannot download.
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([  # type: ignore[attr-defined]
        {"label": "PERSON", "pattern": "Maria Keller"},
        {"label": "GPE", "pattern": "Lyon"},
        {"label": "ORG", "pattern": "Acme Logistics"},
    ])  # fmt: skip
    nlp.to_disk(tmp_path / "model")
    ner = f"spacy:{tmp_path / 'model'}"
    assert pii.ner_available(ner)
    text = "Maria Keller from Lyon (maria@acme.example) works at Acme Logistics."
    assert found(text, ner=ner) == [
        ("PERSON", "Maria Keller"),
        ("LOCATION", "Lyon"),
        ("EMAIL_ADDRESS", "maria@acme.example"),
        ("ORGANIZATION", "Acme Logistics"),
    ]
    assert found(text, ner=ner, entities=["LOCATION"]) == [("LOCATION", "Lyon")]
    batch = detect_pii_batch([text, None, "Lyon"], ner=ner)
    assert batch[0] == detect_pii(text, ner=ner) and batch[1] == []
    assert [s.entity for s in batch[2]] == ["LOCATION"]


# --- custom recognizers --------------------------------------------------------------------------

RECOGNIZERS_YAML = r"""
recognizers:
  - entity: EMPLOYEE_ID
    patterns:
      - regex: "E-\\d{6}"
        score: 0.4
    context: [employee, staff]
  - entity: LOYALTY_CARD
    patterns:
      - regex: "\\b\\d{16}\\b"
        score: 0.7
    validator: luhn
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recognizers.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_custom_recognizers_from_yaml(tmp_path: Path) -> None:
    custom = load_recognizers(write(tmp_path, RECOGNIZERS_YAML))
    assert [r.entity for r in custom] == ["EMPLOYEE_ID", "LOYALTY_CARD"]
    text = (
        "employee E-123456 asked about the parking badge number E-654321; "
        "loyalty 1234567812345670 / 1234567812345678"
    )
    spans = detect_pii(text, recognizers=custom)
    assert [(s.entity, text[s.start : s.end], s.score) for s in spans] == [
        ("EMPLOYEE_ID", "E-123456", 0.75),  # 0.4 + context boost
        ("LOYALTY_CARD", "1234567812345670", 0.7),  # the other fails Luhn
    ]
    assert detect_pii(text, ["EMPLOYEE_ID"], recognizers=custom, threshold=0.3)[1].score == 0.4


BAD_FILES = [
    ("recognizers: [\n  - entity: X\n    patterns: [", r"not valid YAML \(line \d+"),
    (
        "recognizers:\n  - entity: EMPLOYEE_ID\n    patterns:\n      - regex: 'E-(\\d{6}'\n",
        r"recognizers\[0\] \(EMPLOYEE_ID\)\.patterns\[0\]\.regex: invalid regular expression",
    ),
    (
        "recognizers:\n  - entity: employee id\n    patterns: [{regex: x}]\n",
        r"recognizers\[0\]\.entity",
    ),
    (
        "recognizers:\n  - entity: A\n    patterns: [{regex: x, score: 2}]\n",
        r"patterns\[0\]\.score",
    ),
    (
        "recognizers:\n  - entity: A\n    patterns: [{regex: x}]\n    validator: crc\n",
        "unknown validator 'crc'",
    ),
    ("recognizers:\n  - entity: A\n    patterns: [{regex: x}]\n    colour: red\n", "unknown field"),
    (
        "recognizers:\n  - entity: A\n    patterns: []\n",
        r"\(A\)\.patterns: expected a non-empty list",
    ),
    ("recognizers:\n  - entity: A\n    patterns: [{regex: 'a*'}]\n", "matches the empty string"),
    (
        "recognizers:\n  - entity: A\n    patterns: [{regex: x}]\n    requires_context: true\n",
        "no context words",
    ),
    ("- just a list item", r"recognizers\[0\]: expected a mapping"),
    ("something: else\n", "unknown top-level key"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_bad_recognizer_files_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InvalidInput, match=message) as err:
        load_recognizers(path)
    assert str(path) in str(err.value)


def test_missing_recognizer_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_recognizers(tmp_path / "nope.yaml")


# --- batch ---------------------------------------------------------------------------------------


def test_batch_equals_one_text_at_a_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pieces = [p[1] for p in POSITIVES] + [n[1] for n in NEGATIVES]
    rng = random.Random(7)
    texts: list[str | None] = [None, ""]
    for _ in range(60):
        texts.append(" ".join(rng.sample(pieces, rng.randint(1, 4))))
    # Values at the very start and end of texts, and a text holding the join character.
    texts += [
        "ada@example.org",
        "+1 415-555-2671",
        "4111 1111 1111 1111",
        "a\x00ada@example.org\x00b",
    ]
    texts += [
        RSA_KEY[:60],
        "-----END RSA PRIVATE KEY-----",
        "secret",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ]
    # A custom pattern that could run from one text into the next if texts were joined.
    custom = load_recognizers(
        write(
            tmp_path,
            "recognizers:\n  - entity: SPAN\n    patterns: [{regex: '(?s)X.*Y', score: 0.9}]\n",
        )
    )
    texts += ["X in one text", "and Y in the next"]
    monkeypatch.setattr(detect_module, "CHUNK_CHARS", 500)  # several chunks
    batch = detect_pii_batch(texts, recognizers=custom, threshold=0.3)
    assert batch == [detect_pii(t, recognizers=custom, threshold=0.3) if t else [] for t in texts]
    assert sum(len(b) for b in batch) > 60


def test_batch_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput, match=r"texts\[1\]"):
        detect_pii_batch(["ok", 42])  # type: ignore[list-item]


# --- adversarial input: every expression stays linear --------------------------------------------

ADVERSARIAL = {
    "at signs": "'a@' * 100_000",
    "long local part": "('a' * 60 + '@') * 3_000 + 'a' * 100_000",
    "digits": "'1' * 200_000",
    "digits and spaces": "'1 ' * 100_000",
    "digits and dashes": "'12-' * 70_000",
    "dots": "'.' * 200_000",
    "dotted digits": "'1.' * 100_000",
    "begin lines": "'-----BEGIN ' * 20_000",
    "unterminated keys": "'-----BEGIN RSA PRIVATE KEY-----\\nAAAA' * 10_000",
    "jwt prefixes": "'eyJ' * 100_000 + '.' + 'eyJ' * 1000",
    "colons": "'ab:' * 100_000",
    "base64": "'aB3/' * 100_000",
    "secret keywords": "'password token secret=' * 10_000",
    "aws context": "'aws ' * 50_000 + 'A' * 50_000",
    "domain labels": "'a.' * 100_000 + 'com'",
    "www": "'www.' * 100_000",
    "schemes": "'http://' * 30_000",
    "plus and parens": "'+1 (' * 60_000",
    "iban-like": "'DE89 ' * 60_000",
    "bech32": "'bc1' * 100_000",
}


@pytest.mark.parametrize("expression", ADVERSARIAL.values(), ids=list(ADVERSARIAL))
def test_adversarial_input_does_not_hang(expression: str) -> None:
    # Linear scans take well under a second here; a quadratic one takes hours.
    finishes_in_time(
        "from curata.quality.pii import detect_pii\n"
        f"text = {expression}\n"
        "assert len(text) >= 100_000\n"
        "detect_pii(text)\n",
        seconds=60,
    )


def finishes_in_time(code: str, *, seconds: float) -> None:
    """Run ``code`` in a subprocess, so that a regex stuck in C (which no signal interrupts)
    is killed by the timeout, and check that it ran to its end."""
    done = subprocess.run(
        [sys.executable, "-c", code + "print('ok')\n"],
        capture_output=True,
        text=True,
        timeout=seconds,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- the package ---------------------------------------------------------------------------------


def test_public_api() -> None:
    assert set(pii.__all__) == {
        "DEFAULT_PHONE_REGIONS", "OPERATORS", "AppliedRedaction", "Pattern", "PiiSpan",
        "Recognizer", "detect_pii", "detect_pii_batch", "generate_key_file", "load_key",
        "load_recognizers", "ner_available", "parse_recognizers", "redact_text", "reveal_text",
        "supported_entities",
    }  # fmt: skip
    assert set(curata.quality.__all__) >= {
        "PiiSpan", "detect_pii", "detect_pii_batch", "redact_text", "reveal_text",
    }  # fmt: skip
    assert curata.quality.detect_pii is detect_pii


def test_importing_quality_stays_light() -> None:
    code = (
        "import sys, curata.quality, curata.quality.pii; "
        "print(','.join(m for m in ('phonenumbers', 'spacy', 'cryptography', 'presidio_analyzer') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
