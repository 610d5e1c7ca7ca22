"""Bytes -> text for files and feeds whose encoding we cannot trust.

Order matters: a BOM is proof; strict UTF-8 almost never decodes text that
is not UTF-8; after that charset-normalizer guesses. Short Western text is
where guessers are weakest, so a guess in the Latin family is replaced by
cp1252, the superset of latin-1 that Windows editors actually write.
"""

from __future__ import annotations

import codecs

LATIN_FAMILY = {"latin_1", "iso8859_1", "iso8859_15", "cp1252", "mac_roman", "cp850",
                "cp437", "ascii"}
BOMS = [(codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16")]


class UndecodableError(ValueError):
    """The bytes are not text in any encoding we can recognise."""


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters in the first 8 KiB mean binary.

    UTF-16 text is full of NULs, so a BOM-marked or evenly NUL-interleaved
    head is checked by the caller first (see decode_text).
    """
    head = data[:8192]
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return bool(head) and controls / len(head) > 0.05


def _utf16_without_bom(data: bytes) -> str | None:
    head = data[:4096]
    if len(head) < 4:
        return None
    odd_nuls = head[1::2].count(0) / (len(head) // 2)
    even_nuls = head[0::2].count(0) / ((len(head) + 1) // 2)
    if odd_nuls > 0.4 and even_nuls < 0.05:
        encoding = "utf-16-le"
    elif even_nuls > 0.4 and odd_nuls < 0.05:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    printable = sum(1 for c in text[:2048] if c.isprintable() or c in "\r\n\t")
    return text if printable >= 0.95 * min(len(text), 2048) else None


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Decode bytes to str or raise UndecodableError with a reason.

    `declared` (an HTTP charset or XML declaration) is tried only after the
    BOM and strict UTF-8, because servers lie about it more often than bytes do.
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise UndecodableError(f"starts with a {encoding} byte-order mark but is not valid {encoding}") from None
    if (text := _utf16_without_bom(data)) is not None:
        return text
    if looks_binary(data):
        raise UndecodableError("binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            codec = codecs.lookup(declared).name
            if codec not in ("utf-8",):
                return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            pass
    return _guess(data)


def _western(data: bytes) -> str | None:
    """cp1252 text when the bytes look like Western prose with a few accents or curly quotes.

    In English, French or German text, non-ASCII letters are a small share of
    all letters; Cyrillic or Greek in a single-byte code page decodes to runs
    of them. Guessers misjudge short Western texts (latin-1 read as cp775),
    so this cheap test comes first.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = sum(1 for c in text if c.isalpha())
    foreign = sum(1 for c in text if c.isalpha() and ord(c) > 127)
    return text if letters and foreign / letters < 0.2 else None


def _guess(data: bytes) -> str:
    from charset_normalizer import from_bytes  # imported lazily: slow to import

    if (text := _western(data)) is not None:
        return text

    best = from_bytes(data).best()
    if best is None:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise UndecodableError("not valid text in any encoding we recognise") from None
    name = codecs.lookup(best.encoding).name
    if name in LATIN_FAMILY:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return str(best)
