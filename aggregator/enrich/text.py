"""Text as we publish it, and as rules, dedup and hashes compare it.

Published text keeps what the site wrote (non-breaking spaces, curly
quotes) with control characters out and blank runs folded; matching text
is folded further (lowercase, no accents, plain quotes, single spaces) so
"Iraq’s" meets the keyword "iraq" and "Zürich" meets "zurich". Text that
XML 1.0 cannot carry never reaches the store, so no stored title can make
a later publish fail. Plain text only: HTML is html_text.py's.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from typing import Iterator

_SPACES = r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]"
# Runs of spaces, or one unusual space; a lone " " needs no change and is not matched (speed).
_SPACE_RE = re.compile(_SPACES + r"{2,}|[\t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C1 too: \x9b is a terminal CSI


_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (C0 controls, lone surrogates, U+FFFE/FFFF).

    One stored title with a BEL in it would make every later publish fail in
    feedgen, for every topic; this is the last gate before the store.
    """
    return text if is_xml_safe(text) else _XML_INVALID_RE.sub("", text)


def is_xml_safe(text: str) -> bool:
    return _XML_INVALID_RE.search(text) is None


def clean_text(text: str) -> str:
    """Published text: control characters out, whitespace runs folded.

    Non-breaking spaces and typographic quotes are kept; they are part of the
    text the site published. Matching uses fold_for_matching instead.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)  # ASCII is NFC already
    text = _CONTROL_RE.sub("", text)
    if "  " in text or "\t" in text:  # a search for space runs costs more than these two scans
        text = _BLANK_RUN_RE.sub(" ", text)
    return text.strip()


# Runs of spaces and tabs, or a lone tab: a lone space needs no change and is not matched (speed).
_BLANK_RUN_RE = re.compile(r"[ \t]{2,}|\t")


def fold_for_matching(text: str) -> str:
    """Lowercase, accent-free, plain-quote, single-space text for rules and hashes.

    Runs on every article several times (tags, dedup, hashes), so ASCII text
    takes a fast path and accents are stripped by one regex, not a Python loop.
    Most English news is ASCII but for its curly quotes and dashes, so those
    are replaced first and such text takes the fast path too (none of them
    changes under NFKD, so the result is the same either way). The last few
    hundred article-sized texts are remembered: tagging and dedup fold the
    same title and body one after the other.
    """
    if len(text) > FOLD_CACHE_MAX_CHARS:
        return _fold(text)
    return _fold_remembered(text)


FOLD_CACHE_MAX_CHARS = 20_000  # at most 256 of these are kept: a few MB


def _fold(text: str) -> str:
    if not text.isascii():
        text = _plain_quotes(text)
    if text.isascii():
        return _fold_spaces(text.lower()).strip()
    text = _plain_quotes(_COMBINING_RE.sub("", unicodedata.normalize("NFKD", text)))
    if not text.isascii():  # rarer combining marks, outside the ranges above
        text = _NON_ASCII_RUN_RE.sub(_without_combining, text)
    return _fold_spaces(text.lower()).strip()


def _without_combining(run: re.Match) -> str:
    """A run of non-ASCII text without its combining marks. Runs are at most 4,096 characters:
    one character object each for the whole of a 10 MB text would take 500 MB (CJK) or more."""
    return "".join(c for c in run.group() if not unicodedata.combining(c))


_NON_ASCII_RUN_RE = re.compile(r"[^\x00-\x7f]{1,4096}")


def _fold_spaces(text: str) -> str:
    """_SPACE_RE.sub(" ", text), skipped when ASCII text holds nothing it matches.

    The search costs some thirty times what these scans do on an article's text.
    """
    if text.isascii() and "  " not in text and "\t" not in text and "\r" not in text \
            and "\f" not in text and "\v" not in text:
        return text
    return _SPACE_RE.sub(" ", text)


_fold_remembered = functools.lru_cache(maxsize=256)(_fold)
_COMBINING_RE = re.compile("[\u0300-\u034e\u0350-\u036f]+")  # accents of Latin, Greek, Cyrillic letters


# Only characters that NFKD leaves alone: U+2033 (double prime) is not here, NFKD makes it two primes.
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'",
           "\u201c": '"', "\u201d": '"', "\u201e": '"',
           "\u2013": "-", "\u2014": "-", "\u2212": "-"}
_QUOTE_RE = re.compile("[" + "".join(_QUOTES) + "]")


def _plain_quotes(text: str) -> str:
    """Typographic quotes and dashes -> ASCII (a regex: str.translate with a dict is slow)."""
    return _QUOTE_RE.sub(lambda m: _QUOTES[m.group()], text)


def word_tokens(text: str) -> tuple[str, ...]:
    """The text's \\w+ tokens, in order.

    Dedup, tags and salient words each split the same folded title and body,
    one after the other, so the last few hundred article-sized texts' tokens
    are remembered (a tuple, so that no caller can change what another gets).
    """
    if len(text) > FOLD_CACHE_MAX_CHARS:
        return _split_words(text)
    return _split_words_remembered(text)


def word_token_chunks(text: str) -> Iterator[tuple[str, ...]]:
    """word_tokens(text), a chunk of about TOKEN_CHUNK_CHARS characters at a time.

    A word is a small object of its own (about 56 bytes): all the words of a
    10 MB text at once would take 100 MB. Chunks end at whitespace, which no word
    holds, so no word is cut in two; an article-sized text is one chunk.
    """
    if len(text) <= TOKEN_CHUNK_CHARS:
        yield word_tokens(text)
        return
    start = 0
    while start < len(text):
        cut = _WHITESPACE_RE.search(text, min(start + TOKEN_CHUNK_CHARS, len(text)))
        end = cut.start() if cut else len(text)
        yield _split_words(text[start:end])
        start = end + 1


TOKEN_CHUNK_CHARS = 256 * 1024  # the words of 256 KB of text are about 2.5 MB
_WHITESPACE_RE = re.compile(r"\s")


def _split_words(text: str) -> tuple[str, ...]:
    """Folded text is nearly always ASCII, where \\w is [A-Za-z0-9_] and
    translate + split gives the same tokens as findall in a sixth of the time."""
    if text.isascii():
        return tuple(text.translate(_ASCII_NON_WORD).split())
    return tuple(_WORD_RE.findall(text))


_split_words_remembered = functools.lru_cache(maxsize=256)(_split_words)


_WORD_RE = re.compile(r"\w+")
_ASCII_NON_WORD = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_")})


def content_hash(*parts: str) -> str:
    """A hash of the folded text, so whitespace and quote styles do not matter.

    The hash of the folded parts joined by \x1f, fed part by part (no joined copy of a long text).
    """
    digest = hashlib.sha256()
    for index, part in enumerate(parts):
        digest.update((("\x1f" if index else "") + fold_for_matching(part)).encode("utf-8"))
    return digest.hexdigest()


def stable_id(*parts: str) -> str:
    """A short, stable article id from the things that identify it."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def paragraphs_to_html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


def summarize(text: str, limit: int = 400) -> str:
    """The first paragraph, cut at a word boundary: what a reader sees in a list."""
    first = text.strip().split("\n\n", 1)[0].strip()
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "\u2026"

