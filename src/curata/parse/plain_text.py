"""Plain text: decode the bytes (whatever the encoding), refuse binary data, keep paragraphs.

Decoding tries, in order: a byte-order mark (UTF-8, UTF-16, UTF-32), strict UTF-8, UTF-16
without a mark (NUL bytes at every other position), Windows-1252 when the result reads like
Western European text, and charset-normalizer's detection for anything else (Cyrillic, CJK,
Central European code pages). Windows-1252 comes before the detector because the detector
takes short French or German texts for Central European code pages (``crème`` -> ``crčme``).
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from curata.parse.document import ParsedDocument, ParseError, Section, build_document

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# C0 and C1 control characters (Unicode category Cc) but tab, newlines and form feed, and the
# replacement character a lossy decoding leaves.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
# More than this share of control characters (or undecodable ones) means binary data.
_MAX_CONTROL_SHARE = 0.02
# Western European text is mostly ASCII letters; a text decoded as Windows-1252 whose letters
# are mostly accented is another code page (Cyrillic, Greek) read wrongly.
_MAX_ACCENTED_SHARE = 0.3
_SAMPLE = 1 << 16


def _looks_binary(text: str) -> bool:
    """Whether decoded text holds too many control or replacement characters to be text."""
    sample = text[:_SAMPLE]
    if not sample:
        return False
    return len(_CONTROLS.findall(sample)) / len(sample) > _MAX_CONTROL_SHARE


def _reads_as_western(text: str) -> bool:
    letters = [ch for ch in text[:_SAMPLE] if ch.isalpha()]
    if not letters:
        return True
    accented = sum(1 for ch in letters if not ch.isascii())
    return accented / len(letters) <= _MAX_ACCENTED_SHARE


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:_SAMPLE] if len(data) % 2 == 0 else data[: _SAMPLE - 1]
    evens, odds = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) / 2
    # ASCII-range text in UTF-16 has a NUL in (nearly) every high byte.
    encoding = "utf-16-le" if odds > 0.6 * half else "utf-16-be" if evens > 0.6 * half else None
    if encoding is None or len(data) % 2:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode_text(data: bytes, *, name: str = "") -> str:
    """Decode text bytes in whatever encoding they are in.

    Raises:
        ParseError: the bytes are binary data, not text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data.decode(encoding), name)
            except UnicodeDecodeError:
                break
    try:
        return _checked(data.decode("utf-8"), name)
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:_SAMPLE]:
        text = _utf16_without_bom(data)
        if text is None:
            raise ParseError(name, "binary data, not text (it contains NUL bytes)")
        return _checked(text, name)
    try:
        text = data.decode("cp1252")
        if _reads_as_western(text) and not _looks_binary(text):
            return text
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise ParseError(name, "binary data, not text (no text encoding fits it)")
    return _checked(str(best), name)


def _checked(text: str, name: str) -> str:
    if _looks_binary(text):
        raise ParseError(name, "binary data, not text (mostly control characters)")
    return text


def parse_text(data: bytes, name: str = "") -> ParsedDocument:
    """Plain text: one section, paragraphs (blank-line separated) kept as they are.

    Raises:
        ParseError: binary data, or only whitespace.
    """
    text = unicodedata.normalize("NFC", decode_text(data, name=name))
    return build_document([Section(text)], title=None, mime="text/plain", name=name)
