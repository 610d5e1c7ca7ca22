"""Bytes -> text for files and feeds whose encoding we cannot trust.

Order matters: a BOM is proof; strict UTF-8 almost never decodes text that
is not UTF-8; then the charset the document declares; after that
charset-normalizer guesses (charset_guess.py, loaded only then).
"""

from __future__ import annotations

import codecs
import re

from aggregator import ingest

BOMS = [(codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16")]
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


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
    text = ingest.charset_guess.guess(data)
    if text is None:
        raise UndecodableError("not valid text in any encoding we recognise")
    return text


def declared_charset(data: bytes) -> str | None:
    """The <meta charset> of a page's head, tried by decode_text after BOM and UTF-8."""
    match = META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None
