"""The fast path for RSS and Atom: feedparser-rs, only where it reads a feed as feedparser does.

feedparser-rs reads the same structure several times faster, these checks
included (figures in docs/decisions/0005). tests/test_feed_parsers.py
compares the two on every feed fixture, tests/conformance/ on feeds from
other projects' test suites. It only sees the plain case, which
`parse_if_plain` checks on the bytes before and on its result after;
anything else goes to feedparser, the reference (feed_xml.py).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

try:
    import feedparser_rs
except ImportError:  # no wheel for this platform: feedparser alone is still correct
    feedparser_rs = None

ENTRY_TAG = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?(?:item|entry)[\s>/]")
MARKUP_FIRST = re.compile(rb"\s*<")  # the document starts with markup (no stripped copy of it made)
LINK_STARTS = (b'href="', b"href='", b'src="', b"src='", b'url="', b"url='", b"<link>")
GUID_OPEN = re.compile(rb"<guid([^>]*)>\s*", re.I)
XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)""")
# The elements each format may use for feedparser-rs to read it as feedparser does,
# checked on the conformance corpus (tests/conformance/): feedparser reads more of
# the others (an RSS <author>'s name, itunes:keywords as tags, dc:title over title,
# media:title inside an enclosure as the entry's title...). Markup inside CDATA,
# comments and escaped text is not an element.
FAST_ELEMENTS = {
    "rss20": frozenset({
        b"rss", b"channel", b"item", b"title", b"link", b"description", b"guid", b"pubDate", b"category",
        b"language", b"lastBuildDate", b"copyright", b"generator", b"docs", b"ttl", b"image", b"url", b"width",
        b"height", b"content:encoded", b"dc:creator", b"comments", b"sy:updatePeriod", b"sy:updateFrequency",
        b"wfw:commentRss", b"slash:comments", b"atom:link", b"enclosure", b"media:content", b"media:thumbnail",
        b"itunes:author", b"itunes:duration"}),
    "rss10": frozenset({
        b"rdf:RDF", b"channel", b"items", b"rdf:Seq", b"rdf:li", b"item", b"title", b"link", b"description",
        b"image", b"url", b"content:encoded", b"dc:creator", b"dc:date", b"dc:subject"}),
    "atom10": frozenset({
        b"feed", b"entry", b"id", b"title", b"link", b"updated", b"published", b"author", b"name", b"email",
        b"uri", b"category", b"summary", b"content", b"subtitle", b"media:thumbnail"}),
}
RSS10_NAMESPACES = (b'xmlns="http://purl.org/rss/1.0/"', b"xmlns='http://purl.org/rss/1.0/'")
ONCE_PER_ENTRY = {  # element, and how many the feed itself may have (per channel and image)
    "rss20": ((b"title", 1), (b"link", 1), (b"description", 1), (b"content:encoded", 0), (b"guid", 0)),
    "rss10": ((b"title", 1), (b"link", 1), (b"description", 1), (b"content:encoded", 0)),
    "atom10": ((b"title", 1), (b"summary", 0), (b"content", 0), (b"id", 1)),
}
UNMARKED = re.compile(rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.S)
ELEMENT_NAME = re.compile(rb"<([A-Za-z_][-\w.:]*)")
# feedparser repairs text that is UTF-8 read as Latin-1 and maps C1 controls as
# windows-1252 (the bytes of "PeÃ±a", of U+0092, &#146;); feedparser-rs keeps them.
REPAIRED_BY_FEEDPARSER = re.compile(rb"\xc2[\x80-\x9f]|\xc3[\x82-\xb4]\xc2[\x80-\xbf]|&#(?:1[2-5]\d|x[89][0-9a-fA-F]);")
DATE_VALUE = re.compile(rb"<(pubDate|lastBuildDate|dc:date|published|updated)>([^<]*)<")
# Date spellings both parsers read alike: RFC 822 with a numeric or UTC zone, and RFC 3339.
PLAIN_DATES = {
    b"pubDate": re.compile(rb"\s*(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} (?:[+-]\d{4}|GMT|UTC?)\s*"),
    b"dc:date": re.compile(rb"\s*\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})\s*"),
}
PLAIN_DATES[b"lastBuildDate"] = PLAIN_DATES[b"pubDate"]
PLAIN_DATES[b"published"] = PLAIN_DATES[b"updated"] = PLAIN_DATES[b"dc:date"]
ATOM_TEXT_TAG = re.compile(rb"<(title|summary|content)\b([^>]*)>")
TYPE_ATTRIBUTE = re.compile(rb"""\btype\s*=\s*["']([^"']*)["']""")


def parse_if_plain(data: bytes, content_type: str | None) -> Any:
    """feedparser-rs's result when the case is plain, else None so feedparser (the reference) runs.

    The plain case: XML (never a string it could mistake for a URL and fetch
    itself), UTF-8 or ASCII bytes with no other declared encoding (it trusts
    declarations that lie) and nothing feedparser would repair, only absolute
    links and no xml:base (feedparser resolves against the document URL, which
    feedparser-rs does not know), only the elements of FAST_ELEMENTS, dates in
    the spellings both read alike, and Atom text only as HTML (feedparser reads
    type="text" as plain text, feedparser-rs as HTML). Its result must also be
    clean: no bozo flag, a version, and as many entries as <item>/<entry> start
    tags in the bytes.
    """
    if not MARKUP_FIRST.match(data) or not _plain_utf8(data, content_type) or _has_relative_refs(data):
        return None
    if feedparser_rs is None or REPAIRED_BY_FEEDPARSER.search(data) or not _plain_dates(data):
        return None
    try:
        parsed = feedparser_rs.parse(data, sanitize_html=False, resolve_relative_uris=False)
    except Exception:  # any failure of the fast path just means "use the reference parser"
        return None
    version = parsed.get("version") or ""
    entries = len(ENTRY_TAG.findall(data))
    if parsed.get("bozo") or version not in FAST_ELEMENTS or len(parsed.entries) != entries:
        return None
    if not _plain_shape(data, version, entries):
        return None
    return parsed


def _one_each(elements: Counter[bytes], version: str, entries: int) -> bool:
    """At most one title, description, summary or content per entry (and the feed's own).

    Given two, feedparser keeps the first and feedparser-rs the last.
    """
    extra = 1 + elements[b"image"]  # the channel's own, and its image's title and link
    return all(elements[name] <= entries + allowed * extra for name, allowed in ONCE_PER_ENTRY[version])


def _plain_shape(data: bytes, version: str, entries: int) -> bool:
    """Only elements both parsers read alike, no more of them per entry than both keep;
    RSS 1.0 in its own namespace; Atom text as HTML."""
    elements = Counter(ELEMENT_NAME.findall(UNMARKED.sub(b"", data)))
    if not elements.keys() <= FAST_ELEMENTS[version] or not _one_each(elements, version, entries):
        return False
    if version == "rss10":
        return any(namespace in data for namespace in RSS10_NAMESPACES)
    if version == "atom10":
        return _plain_atom_text(data, entries)
    return b"<link " not in data  # feedparser reads attributes of an RSS <link> (uri="at://...")


def _plain_atom_text(data: bytes, entries: int) -> bool:
    """Titles as text or HTML, content as HTML; a plain-text summary only where every entry has content.

    The two parsers disagree on type="text" (feedparser: plain text, feedparser-rs:
    HTML), which matters only where we show that text as the entry's body.
    """
    tags = ATOM_TEXT_TAG.findall(data)
    if any(name == b"content" and b"src" in attributes for name, attributes in tags):
        return False  # content elsewhere (src=...): feedparser reads the summary instead
    texts = [(name, _atom_text_type(attributes)) for name, attributes in tags]
    every_entry_has_content = sum(name == b"content" for name, _ in texts) == entries
    allowed = {b"title": (b"text", b"html"), b"content": (b"html",),
               b"summary": (b"html", b"text") if every_entry_has_content else (b"html",)}
    return all(kind in allowed[name] for name, kind in texts)


def _atom_text_type(attributes: bytes) -> bytes:
    match = TYPE_ATTRIBUTE.search(attributes)
    return match.group(1).strip().lower() if match else b"text"


def _plain_dates(data: bytes) -> bool:
    return all(PLAIN_DATES[name].fullmatch(value) for name, value in DATE_VALUE.findall(data))


def _has_relative_refs(data: bytes) -> bool:
    """A relative link, a guid that is not a URL (feedparser resolves both), or xml:base.

    bytes.find per attribute rather than one regex: a large alternation scans
    every byte in Python's regex engine and cost more than the parse itself.
    """
    if b"xml:base" in data:
        return True
    for start in LINK_STARTS:
        position = data.find(start)
        while position != -1:
            value = data[position + len(start):position + len(start) + 8].lstrip()
            if not value.lower().startswith((b"http://", b"https://")):
                return True
            position = data.find(start, position + 1)
    position = data.find(b"<guid")
    while position != -1:
        match = GUID_OPEN.match(data, position)
        if match and b"ispermalink=\"false\"" not in match.group(1).lower().replace(b"'", b'"'):
            value = data[match.end():match.end() + 8]
            if not value.lower().startswith((b"http://", b"https://")):
                return True
        position = data.find(b"<guid", position + 1)
    return False


def _plain_utf8(data: bytes, content_type: str | None) -> bool:
    declared = [m.group(1).decode("ascii").lower() for m in [XML_ENCODING.match(data[:200])] if m]
    charset = re.search(r"charset=([\w.-]+)", content_type or "", re.I)
    declared += [charset.group(1).lower()] if charset else []
    if any(d.replace("_", "-") not in ("utf-8", "utf8", "us-ascii", "ascii") for d in declared):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
