"""An XML document's bytes before a parser sees them: refused, repaired, or found cut off.

feedparser is always handed bytes we read ourselves, and before it sees
them any document that declares XML entities is refused: feedparser's own
filter lets a quadratic-blowup feed through (to gigabytes of memory). Any other DOCTYPE is
dropped, so nothing is fetched or expanded. Character references to UTF-16
surrogates, which XML has no characters for, are joined into the one
character a pair stands for.

Real feeds are often ill-formed but complete, and those are read the way
feedparser recovers them. Only a document cut off before its root element
closes is refused (`is_cut_off`): what it lacks may be anything, and the next
fetch will likely be whole. That check runs on the text feedparser will
parse, as its own encoding detection decodes it, so an EBCDIC or other
exotic encoding cannot hide "<!ENTITY" from it either.
"""

from __future__ import annotations

import re

from feedparser.encodings import convert_to_utf8

from aggregator.ingest.feed_entries import FeedError

ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.I)
DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\]\s*)?>", re.I | re.S)
ROOT_START = re.compile(rb"""<([^\s<>/!?]+)(?:[^<>"']|"[^"]*"|'[^']*')*?(/?)>""")
END_TAG_AT_END = re.compile(rb"</\s*([^\s<>/]+)\s*>\Z")
FEED_ROOTS = {b"rss", b"feed", b"rdf"}  # local names, lowercased


def neutralize_dtd(data: bytes) -> bytes:
    """Refuse entity declarations; drop any other DOCTYPE so nothing is fetched or expanded."""
    _refuse_entities(data)  # UTF-16 documents too: their zero bytes are taken out for the check
    return DOCTYPE.sub(b"", data, count=1) if b"\x00" not in data[:200] else data


_HIGH_REF = rb"&#(?:[xX]0*[dD][89abAB][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56[0-2]\d\d|563[01]\d));"
_LOW_REF = rb"&#(?:[xX]0*[dD][c-fC-F][0-9a-fA-F]{2}|0*(?:563[2-9]\d|56[4-9]\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
SURROGATE_REFS = re.compile(rb"(" + _HIGH_REF + rb")(" + _LOW_REF + rb")?|" + _LOW_REF)


def joined_surrogate_refs(data: bytes) -> bytes:
    """Character references to UTF-16 surrogates, as some publishers write an emoji
    (&#55357;&#56832;), as the one character a pair stands for; a lone one as U+FFFD.

    XML has no such characters: the feed is ill-formed, and feedparser's lenient
    parser raises on the first one, which would fail the whole feed.
    """
    if b"&#" not in data or not SURROGATE_REFS.search(data):
        return data
    return SURROGATE_REFS.sub(_joined_pair, data)


def _joined_pair(match: re.Match[bytes]) -> bytes:
    if not match.group(2):
        return b"&#xFFFD;"
    high, low = (_ref_value(match.group(n)) for n in (1, 2))
    return b"&#x%X;" % (0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def _ref_value(reference: bytes) -> int:
    digits = reference[2:-1]
    return int(digits[1:], 16) if digits[:1] in (b"x", b"X") else int(digits)


def _refuse_entities(probe: bytes) -> None:
    if ENTITY_DECLARATION.search(probe.replace(b"\x00", b"")):
        raise FeedError("the feed declares XML entities (a DTD internal subset), which we refuse "
                        "for safety (XXE and entity-expansion attacks); ask the publisher to remove it")


def is_cut_off(data: bytes, headers: dict[str, str]) -> bool:
    """Whether the document, as feedparser will decode it, is cut off (_truncated); one that
    declares entities there is refused. The decoded copy goes before the document is parsed."""
    as_parsed = _as_feedparser_decodes(data, headers)
    _refuse_entities(as_parsed)
    return _truncated(as_parsed)


def _as_feedparser_decodes(data: bytes, headers: dict[str, str]) -> bytes:
    """The UTF-8 text feedparser will parse: an EBCDIC (cp037) or other exotic
    encoding hides "<!ENTITY" from a byte-level check, so check this too."""
    return convert_to_utf8(dict(headers), data, {})


def has_xml_declaration(data: bytes) -> bool:
    """Whether the document starts with an XML declaration (past a byte-order mark; UTF-16 too)."""
    return data[:200].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xfe\xff").startswith(b"<?xml")


def _truncated(document: bytes) -> bool:
    """Whether the document stops before its root element closes: the one thing refused.

    The root is the first element; the document is whole when its last tag, past
    trailing whitespace, comments, processing instructions and stray text, is the
    root's end tag (compared by local name, so namespace prefixes do not matter).
    A feed root's end tag (rss, feed, RDF) also counts, so junk before the root,
    such as a PHP warning's <b>, does not make a whole feed look cut off.
    """
    document = document.replace(b"\x00", b"")  # UTF-16 and UTF-32 markup reads as ASCII this way
    root = _root_start(document)
    if root is None:
        return False  # no element at all: "not a feed" is the better answer
    if root.group(2):
        return False  # <rss/>: a root that closes itself
    last = _last_end_tag(document)
    return last is None or _local_name(last) not in {_local_name(root.group(1))} | FEED_ROOTS


def _root_start(document: bytes) -> re.Match[bytes] | None:
    """The first element's start tag, past the prolog (declaration, comments, PIs, DOCTYPE) and stray text."""
    position = document.find(b"<")
    while position != -1:
        if document.startswith((b"<?", b"<!--"), position):
            closer = b"?>" if document.startswith(b"<?", position) else b"-->"
            end = document.find(closer, position + 2)
            position = -1 if end == -1 else document.find(b"<", end + len(closer))
        elif document.startswith(b"<!", position):
            doctype = DOCTYPE.match(document, position)
            end = doctype.end() if doctype else document.find(b">", position) + 1
            position = -1 if end <= 0 else document.find(b"<", end)
        else:
            return ROOT_START.match(document, position)
    return None


def _last_end_tag(document: bytes) -> bytes | None:
    """The name in the document's last tag when that is an end tag, else None.

    Trailing whitespace, comments, processing instructions and text after the
    last tag are passed over; a `<` with no `>` after it is a tag cut off.
    """
    end = len(document)
    while True:
        while end and document[end - 1] in b" \t\r\n":
            end -= 1
        if document.endswith(b"-->", 0, end) and (start := document.rfind(b"<!--", 0, end)) != -1:
            end = start
        elif document.endswith(b"?>", 0, end) and (start := document.rfind(b"<?", 0, end)) != -1:
            end = start
        elif not document.endswith(b">", 0, end):
            close = document.rfind(b">", 0, end)
            if close == -1 or document.find(b"<", close, end) != -1:
                return None
            end = close + 1
        else:
            break
    match = END_TAG_AT_END.search(document[max(0, end - 512):end])
    return match.group(1) if match else None


def _local_name(name: bytes) -> bytes:
    return name.rsplit(b":", 1)[-1].lower()
