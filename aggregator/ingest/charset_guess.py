"""The last resort for bytes in no encoding we can prove: a guess.

Loaded only when a BOM, strict UTF-8 and any declared charset have all
failed (encoding.py), as charset-normalizer is slow to import. Short
Western text is where guessers are weakest, so a guess in the Latin family
is replaced by cp1252, the superset of latin-1 that Windows editors
actually write, and Western prose with a few accents is recognised first.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

LATIN_FAMILY = {"latin_1", "iso8859_1", "iso8859_15", "cp1252", "mac_roman", "cp850",
                "cp437", "ascii"}


def guess(data: bytes) -> str | None:
    """The text the bytes most likely are; None when they are text in no encoding we recognise."""
    if (text := _western(data)) is not None:
        return text
    best = from_bytes(data).best()
    if best is None:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return None
    name = codecs.lookup(best.encoding).name
    if name in LATIN_FAMILY:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return str(best)


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
