"""Feed bytes (RSS, Atom, JSON Feed) -> Articles.

The only module that imports feedparser. It is always handed bytes we read
ourselves (given a string that is not a URL, feedparser opens it as a
file). Before it sees them, any document that declares XML entities is
refused: feedparser's own filter let a quadratic-blowup feed reach 2.3 GB.
feedparser does not read JSON Feed, so that format is parsed here with json.
Its HTML sanitizer is turned off: normalize.sanitize_html (nh3) is faster
and stricter, and it is applied to every format alike.

Real feeds are often ill-formed but complete (a bare `&`, `&nbsp;` in XML,
a CDATA section left open, a declared encoding that lies, served as
text/html): those are read the way feedparser recovers them, as the readers
people like do, with one warning. Only a document cut off before its root
element closes is refused: what it lacks may be anything, and the next
fetch will likely be whole.

Failure is bounded by its unit. An exception while reading the document
(feedparser's or ours) fails that feed, as ParseResult.error; one while
turning an entry into an Article skips that entry, as one Skipped line
naming it, and the feed's other entries are read. Either way the traceback
rides along in ParseResult.tracebacks for the debug log (a parse worker has
no log of its own). Entries past `max_entries` are not read, and one
warning says so.
"""

from __future__ import annotations

import calendar
import json
import re
import traceback
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable

from aggregator.config import IngestConfig
from aggregator.models import Article, ParseResult, Skipped
from aggregator.enrich.dates import clamp_date
from aggregator.enrich.html_text import clean_html_to_text, html_to_text
from aggregator.enrich.sanitize import sanitize_html
from aggregator.enrich.text import clean_text, content_hash, stable_id, summarize
from aggregator.enrich.urls import safe_url

ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.I)
DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\]\s*)?>", re.I | re.S)
ROOT_START = re.compile(rb"""<([^\s<>/!?]+)(?:[^<>"']|"[^"]*"|'[^']*')*?(/?)>""")
END_TAG_AT_END = re.compile(rb"</\s*([^\s<>/]+)\s*>\Z")
FEED_ROOTS = {b"rss", b"feed", b"rdf"}  # local names, lowercased
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.1)?/?$")
BARE_JSON_FEED_VERSIONS = ("1", "1.0", "1.1")
MAX_ENTRIES = IngestConfig.max_entries  # entries read per feed unless [ingest] max_entries says otherwise
SUMMARY_SOURCE_CHARS = 64 * 1024  # a summary is 400 characters of a first paragraph: this much is read for it
SHOWN_CHARS = 80  # of an entry's id, link or title, in the line that names it


class FeedError(ValueError):
    """The bytes are not a feed we can use; the message says why, for the source's owner."""


def parse_feed(data: bytes, *, source: str, url: str | None = None,
               content_type: str | None = None, max_entries: int = MAX_ENTRIES) -> ParseResult:
    """Parse a whole feed document. Errors come back as ParseResult.error, not exceptions.

    The content decides the format, never the Content-Type: feeds are commonly
    served as text/html, text/plain or application/octet-stream. What was read
    in spite of a problem comes back as one line in ParseResult.warnings; an
    entry that could not be read, as one Skipped in ParseResult.skipped.
    """
    is_json = _looks_like_json(data)
    try:
        if is_json:
            result, problems = parse_json_feed(data, source=source, url=url, max_entries=max_entries), []
        else:
            result, problems = parse_xml_feed(data, source=source, url=url, content_type=content_type,
                                              max_entries=max_entries)
    except FeedError as exc:
        return ParseResult(error=str(exc))
    except Exception as exc:  # noqa: BLE001 - feedparser or our reading choked on this document: this feed only
        return ParseResult(error=f"could not be read as a feed ({_cause(exc)}); nothing from it was stored, "
                                 "it is read again at the next fetch", tracebacks=[traceback.format_exc()])
    problems = [p for p in [_served_as(content_type, is_json), *problems] if p]
    if problems:
        result.warnings.insert(0, f"read leniently: {'; '.join(problems)}; the feed's publisher can fix this")
    return result


def _cause(exc: BaseException) -> str:
    """'ValueError: Invalid IPv6 URL': an exception in one line, for the line that names its unit."""
    message = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {_shown(message, 200)}" if message else type(exc).__name__


def _shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """Input text as it may appear in a log line: one printable line, clipped."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit + 1])
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def entry_name(position: int, entry_id: Any, link: Any, title: Any, noun: str = "entry") -> str:
    """'entry 3 (id "tag:example.com,2024:3", "Council meets")': how a skipped entry is named.

    Its id, else its link, and its title: whichever it has, made printable and clipped.
    """
    parts = [f'id "{_shown(entry_id)}"' if _present(entry_id) else "",
             f'link "{_shown(link)}"' if _present(link) and not _present(entry_id) else "",
             f'"{_shown(title)}"' if _present(title) else ""]
    named = ", ".join(p for p in parts if p)
    return f"{noun} {position} ({named})" if named else f"{noun} {position}"


def _present(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip() != ""


def read_entries(entries: list, max_entries: int, article_of: Callable[[Any], Article | None],
                 name_of: Callable[[int, Any], str], what: str = "entries", whole: str = "the feed") -> ParseResult:
    """One Article per entry, a repeated id keeping its first; the first `max_entries` only.

    An entry whose reading raises is skipped, one Skipped naming it (`name_of`,
    its 1-based position and the entry) and the cause, with its traceback in
    `tracebacks`; the other entries are read. Past the cap, one warning.
    """
    result = ParseResult()
    articles: dict[str, Article] = {}
    for position, entry in enumerate(entries[:max_entries], 1):
        try:
            article = article_of(entry)
        except Exception as exc:  # noqa: BLE001 - this entry's content choked our reading: it alone is skipped
            result.skipped.append(Skipped(name_of(position, entry), f"could not be read ({_cause(exc)}); "
                                          f"the other {what} are stored"))
            result.tracebacks.append(traceback.format_exc())
            continue
        if article is not None:
            articles.setdefault(article.id, article)
    result.articles = list(articles.values())
    if len(entries) > max_entries:
        result.warnings.append(capped(len(entries), max_entries, what, whole))
    return result


def capped(total: int, max_entries: int, what: str = "entries", whole: str = "the feed") -> str:
    """The one line that says a feed or file was cut at the entry cap, and how to read the rest."""
    return (f"{whole} has {total:,} {what}; only the first {max_entries:,} were read "
            "(raise [ingest] max_entries to read more)")


def _looks_like_json(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def _served_as(content_type: str | None, is_json: bool) -> str | None:
    """A note when the Content-Type names no type of the format the content turned out to be."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not kind or kind.endswith(("/json", "+json") if is_json else ("/xml", "+xml")):
        return None
    return f"served as {kind}, which is not {'a JSON' if is_json else 'an XML'} type"


# --- RSS and Atom through feedparser ---


def neutralize_dtd(data: bytes) -> bytes:
    """Refuse entity declarations; drop any other DOCTYPE so nothing is fetched or expanded."""
    probe = data.replace(b"\x00", b"")  # so UTF-16 documents are checked too
    if ENTITY_DECLARATION.search(probe):
        raise FeedError("the feed declares XML entities (a DTD internal subset), which we refuse "
                        "for safety (XXE and entity-expansion attacks); ask the publisher to remove it")
    return DOCTYPE.sub(b"", data, count=1) if b"\x00" not in data[:200] else data


_HIGH_REF = rb"&#(?:[xX]0*[dD][89abAB][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|56[0-2]\d\d|563[01]\d));"
_LOW_REF = rb"&#(?:[xX]0*[dD][c-fC-F][0-9a-fA-F]{2}|0*(?:563[2-9]\d|56[4-9]\d\d|57[0-2]\d\d|573[0-3]\d|5734[0-3]));"
SURROGATE_REFS = re.compile(rb"(" + _HIGH_REF + rb")(" + _LOW_REF + rb")?|" + _LOW_REF)


def joined_surrogate_refs(data: bytes) -> bytes:
    """Character references to UTF-16 surrogates, as some publishers write an emoji
    (&#55357;&#56832;), as the one character a pair stands for; a lone one as U+FFFD.

    XML has no such characters: the feed is ill-formed, and feedparser's lenient
    parser then raised on the first one, failing the whole feed.
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


def parse_xml_feed(data: bytes, *, source: str, url: str | None = None, content_type: str | None = None,
                   max_entries: int = MAX_ENTRIES) -> tuple[ParseResult, list[str]]:
    """The articles of an RSS or Atom document, and what it was read in spite of."""
    import feedparser  # imported here: about 0.1 s, and only feed sources need it

    if not data or data.isspace():
        raise FeedError("empty response: no feed in it")
    data = joined_surrogate_refs(neutralize_dtd(data))
    headers = {"content-location": url or "", "content-type": content_type or "application/xml"}
    cut_off = _cut_off(data, headers)
    parsed = _fast_parse(data, content_type) or feedparser.parse(data, response_headers=headers, sanitize_html=False,
                                                   resolve_relative_uris=True)
    if not parsed.get("version") and not parsed.entries:
        raise FeedError("not a feed: no RSS, Atom or JSON Feed in the response "
                        "(an HTML page or an error page?); check the source's URL")
    if cut_off:
        raise FeedError("the feed is cut off before its end (truncated download?); "
                        "nothing from it was stored, it will be retried")
    return _articles_of(parsed, source=source, url=url, max_entries=max_entries), \
        [p for p in [_recovered(parsed, data)] if p]


def _articles_of(parsed: Any, *, source: str, url: str | None, max_entries: int) -> ParseResult:
    """One Article per entry with a title or text (read_entries)."""
    site = clean_text(parsed.feed.get("title", "")) or source
    feed_link = safe_url(parsed.feed.get("link"), url) or url
    feed_authors = _names(parsed.feed.get("authors", []))
    # Relative links resolve against the document's own URL (RFC 3986), not the
    # channel's home link; a saved file has no URL, so the home link stands in.
    return read_entries(
        parsed.entries, max_entries,
        lambda entry: _article_from_entry(entry, source=source, site=site, base=url or feed_link,
                                          feed_authors=feed_authors),
        lambda position, entry: entry_name(position, entry.get("id"), entry.get("link"), entry.get("title")))


def _recovered(parsed: Any, data: bytes) -> str | None:
    """What feedparser read past, in words for the source's owner, or None for a clean parse.

    A Content-Type that is not XML is left to _served_as, which says it whichever
    parser ran. feedparser puts an XML declaration line before a document that
    has none, so its line numbers are one too high there.
    """
    import feedparser
    from xml.sax import SAXParseException

    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if problem is None or isinstance(problem, feedparser.NonXMLContentType):
        return None
    if isinstance(problem, SAXParseException):
        line = problem.getLineNumber() - (0 if _declared(data) else 1)
        return (f"not well-formed XML at line {max(line, 1)} ({problem.getMessage()}), "
                "recovered as feed readers do (some text may be lost or garbled)")
    return str(problem) or type(problem).__name__


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


def _fast_parse(data: bytes, content_type: str | None):
    """feedparser-rs's result when the case is plain, else None so feedparser (the reference) runs.

    feedparser-rs reads the same structure about 20x faster (8x with these checks, on
    bench/corpus.py's 500 KB feeds: 7-10 ms against 80 ms); tests/test_feed_parsers.py
    compares the two on every feed fixture, tests/conformance/ on feeds from other
    projects' test suites. It only sees the plain case: XML (never a string it could
    mistake for a URL and fetch itself), UTF-8 or ASCII bytes with no other declared
    encoding (it trusts declarations that lie) and nothing feedparser would repair,
    only absolute links and no xml:base (feedparser resolves against the document
    URL, which feedparser-rs does not know), only the elements of FAST_ELEMENTS,
    dates in the spellings both read alike, and Atom text only as HTML (feedparser
    reads type="text" as plain text, feedparser-rs as HTML). Its result must also
    be clean: no bozo flag, a version, and as many entries as <item>/<entry> start
    tags in the bytes.
    """
    if not MARKUP_FIRST.match(data) or not _plain_utf8(data, content_type) or _has_relative_refs(data):
        return None
    if REPAIRED_BY_FEEDPARSER.search(data) or not _plain_dates(data):
        return None
    try:
        import feedparser_rs
    except ImportError:  # no wheel for this platform: feedparser alone is still correct
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


def _refuse_entities(probe: bytes) -> None:
    if ENTITY_DECLARATION.search(probe.replace(b"\x00", b"")):
        raise FeedError("the feed declares XML entities (a DTD internal subset), which we refuse "
                        "for safety (XXE and entity-expansion attacks); ask the publisher to remove it")


def _cut_off(data: bytes, headers: dict[str, str]) -> bool:
    """Whether the document, as feedparser will decode it, is cut off (_truncated); one that
    declares entities there is refused. The decoded copy goes before the document is parsed."""
    as_parsed = _as_feedparser_decodes(data, headers)
    _refuse_entities(as_parsed)
    return _truncated(as_parsed)


def _as_feedparser_decodes(data: bytes, headers: dict[str, str]) -> bytes:
    """The UTF-8 text feedparser will parse: an EBCDIC (cp037) or other exotic
    encoding hides "<!ENTITY" from a byte-level check, so check this too."""
    from feedparser.encodings import convert_to_utf8

    return convert_to_utf8(dict(headers), data, {})


def _declared(data: bytes) -> bool:
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


def _names(people: Any) -> list[str]:
    return [clean_text(p.get("name", "")) for p in _dicts(people) if p.get("name")]


def _dicts(value: Any) -> list:
    """The mappings in a list feedparser gives (ill-formed markup can leave a bare string among them)."""
    return [item for item in value if hasattr(item, "get")] if isinstance(value, list) else []


def _article_from_entry(entry: Any, *, source: str, site: str, base: str | None,
                        feed_authors: list[str]) -> Article | None:
    link = safe_url(entry.get("link"), base)
    content_html, summary_html = _content_and_summary(entry, _content_base(entry, link or base))
    text = clean_html_to_text(content_html)
    title = html_to_text(entry.get("title", "")) or summarize(text, 80)
    if not title and not text:
        return None
    summary = summarize(_summary_text(summary_html) if summary_html else text)
    return _feed_article(
        source=source, site=site, base=base, title=title, link=link, guid=clean_text(entry.get("id", "")),
        text=text, content_html=content_html, summary=summary,
        published=_date(entry.get("published_parsed")), updated=_date(entry.get("updated_parsed")),
        authors=_names(entry.get("authors")) or feed_authors,  # Atom: entries inherit the feed's author
        categories=_unique(clean_text(t.get("term") or t.get("label") or "") for t in _dicts(entry.get("tags"))),
        image=_image(entry, link or base))


def _content_and_summary(entry: Any, base: str | None) -> tuple[str, str]:
    """The entry's content as safe HTML, and its summary's HTML when the content is not the
    summary itself (its first SUMMARY_SOURCE_CHARS: a summary shows 400 characters of it).

    The summary is read once, and let go here: feedparser-rs makes a new copy at every get,
    and of a 10 MB entry those copies were most of what reading it held.
    """
    summary = entry.get("summary", "")
    content = _best_content(entry, summary)
    own_summary = "" if content is summary else summary[:SUMMARY_SOURCE_CHARS]
    return sanitize_html(content, base), own_summary


def _summary_text(summary_html: str) -> str:
    return clean_html_to_text(sanitize_html(summary_html))


def _feed_article(*, source: str, site: str, base: str | None, title: str, link: str | None, guid: str,
                  text: str, content_html: str, summary: str, published: datetime | None,
                  updated: datetime | None, authors: list[str], categories: list[str],
                  image: str | None) -> Article:
    """The rules every feed format shares: the id from guid (else link, else a content hash),
    published falling back to updated, `updated` kept only when it is later, and the content hash."""
    guid = guid or link or content_hash(title, text)[:32]
    return Article(
        id=feed_article_id(source, guid),
        source=source,
        title=title,
        site=site,
        url=link,
        guid=guid,
        published=published or updated,
        updated=updated if updated and published and updated > published else None,
        authors=authors,
        categories=categories,
        summary=summary,
        text=text,
        content_html=content_html,
        image=image,
        origin=base or "",
        content_hash=content_hash(title, text, link or ""),
    )


def feed_article_id(source: str, guid: str) -> str:
    """Keyed by source and guid: guids are only unique within one feed."""
    return stable_id("feed", source, guid)


def _best_content(entry: Any, summary: str) -> str:
    """The entry's HTML content (or text made HTML); else its summary (`summary`, already read)."""
    contents = _dicts(entry.get("content"))
    html_parts = [c for c in contents if "html" in (c.get("type") or "")]
    chosen = (html_parts or contents or [None])[0]
    if chosen is not None and chosen.get("value"):
        value = chosen["value"]
        return value if "html" in (chosen.get("type") or "") else _escape_text(value)
    detail = entry.get("summary_detail") or {}
    return summary if "html" in (detail.get("type") or "text/html") else _escape_text(summary)


def _escape_text(value: str) -> str:
    from html import escape

    return "".join(f"<p>{escape(p.strip())}</p>" for p in re.split(r"\n\s*\n", value) if p.strip())


def _content_base(entry: Any, fallback: str | None) -> str | None:
    for detail in _dicts(entry.get("content")) + [entry.get("summary_detail") or {}]:
        if detail.get("base"):
            return safe_url(detail["base"]) or fallback
    return fallback


def _image(entry: Any, base: str | None) -> str | None:
    candidates = [m.get("url") for m in _dicts(entry.get("media_thumbnail"))]
    candidates += [m.get("url") for m in _dicts(entry.get("media_content"))
                   if (m.get("medium") == "image" or (m.get("type") or "").startswith("image/"))]
    candidates += [link.get("href") for link in _dicts(entry.get("links"))
                   if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/")]
    if isinstance(entry.get("image"), dict):
        candidates.append(entry["image"].get("href"))
    for candidate in candidates:
        if url := safe_url(candidate, base):
            return url
    return None


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return clamp_date(datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc))
    except (OverflowError, ValueError, TypeError):
        return None


def _unique(items: Any) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        if item:
            seen.setdefault(item.lower(), item)
    return list(seen.values())


# --- JSON Feed 1.0 / 1.1 ---
#
# Every field is read through a helper that accepts only the type the spec gives it
# (_text, _json_id, _url, _tags, _json_authors): publishers put objects where URLs
# belong, lists where strings belong, numbers for ids and dates. A field of the wrong
# type is read as far as it makes sense, else left out; it never costs the feed.


def parse_json_feed(data: bytes, *, source: str, url: str | None = None,
                    max_entries: int = MAX_ENTRIES) -> ParseResult:
    from aggregator.ingest.encoding import UndecodableError, decode_text

    try:
        document = json.loads(decode_text(data))
    except (UndecodableError, ValueError, RecursionError) as exc:
        raise FeedError(f"not valid JSON: {exc}") from None
    if not is_json_feed(document):
        raise FeedError("JSON without a JSON Feed version (https://jsonfeed.org/version/1.1); not a feed")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError('JSON Feed has no "items" list')
    site = clean_text(_text(document.get("title"))) or source
    base = safe_url(_url(document.get("home_page_url"))) or safe_url(_url(document.get("feed_url"))) or url
    feed_authors = _json_authors(document)
    return read_entries(
        items, max_entries,
        lambda item: _article_from_json_item(item, source, site, base, feed_authors) if isinstance(item, dict) else None,
        lambda position, item: entry_name(position, item.get("id"), item.get("url"), item.get("title"))
        if isinstance(item, dict) else f"entry {position}")


def is_json_feed(document: Any) -> bool:
    """A JSON Feed: its version URL, or a bare "1", "1.0" or "1.1" over an items list.

    The spec wants the URL; some writers put the number (gofeed's own test
    feeds do), and with an items list beside it nothing else is meant.
    """
    if not isinstance(document, dict):
        return False
    version = _text(document.get("version")).strip()
    return bool(JSON_FEED_VERSION.match(version)) or (
        version in BARE_JSON_FEED_VERSIONS and isinstance(document.get("items"), list))


def _json_authors(obj: dict) -> list[str]:
    """Names from `authors` (1.1) or `author` (1.0): a list, one object, or a bare name string."""
    people = obj.get("authors")
    if people in (None, [], {}, ""):
        people = obj.get("author")
    if not isinstance(people, list):
        people = [people]
    names = (_text(p.get("name")) if isinstance(p, dict) else _text(p) for p in people)
    return _unique(clean_text(name) for name in names)


def _article_from_json_item(item: dict, source: str, site: str, base: str | None,
                            feed_authors: list[str]) -> Article | None:
    link = safe_url(_url(item.get("url")), base) or safe_url(_url(item.get("external_url")), base)
    content_html = _json_content_html(item, link or base)
    text = clean_html_to_text(content_html)
    title = clean_text(_text(item.get("title"))) or summarize(text, 80)
    if not title and not text:
        return None
    return _feed_article(
        source=source, site=site, base=base, title=title, link=link, guid=clean_text(_json_id(item.get("id"))),
        text=text, content_html=content_html,
        summary=summarize(clean_text(_text(item.get("summary"))[:SUMMARY_SOURCE_CHARS])) or summarize(text),
        published=_iso_date(item.get("date_published")), updated=_iso_date(item.get("date_modified")),
        authors=_json_authors(item) or feed_authors,
        categories=_unique(clean_text(tag) for tag in _tags(item.get("tags"))),
        image=safe_url(_url(item.get("image")), base) or safe_url(_url(item.get("banner_image")), base))


def _json_content_html(item: dict, base: str | None) -> str:
    """content_html, else content_text made paragraphs, as safe HTML (the unsafe copy let go here)."""
    return sanitize_html(_text(item.get("content_html")) or _escape_text(_text(item.get("content_text"))), base)


def json_string(value: Any) -> str:
    """A JSON string as text we can store, else "".

    json.loads lets a lone surrogate ("\\ud800") through, and neither hashing
    nor SQLite accepts one: it becomes U+FFFD, as a decoder would make it.
    """
    if not isinstance(value, str):
        return ""
    return value if value.isascii() else LONE_SURROGATE.sub("\ufffd", value)


def _text(value: Any) -> str:
    """A string field: a string, or the strings of a list joined (["Part one", "part two"])."""
    if isinstance(value, list):
        return " ".join(json_string(part) for part in value if isinstance(part, str))
    return json_string(value)


def _json_id(value: Any) -> str:
    """The spec says an id is a string and a number must be read as one; nothing else is an id."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json_string(value)


def _url(value: Any) -> str:
    """A URL field: only a string is one (an object such as {"href": ...} is not guessed at)."""
    return json_string(value)


def _tags(value: Any) -> list[str]:
    """`tags`: a list of strings (numbers spelled out), or one tag given as a bare string."""
    values = value if isinstance(value, list) else [value]
    return [_json_id(tag) for tag in values]


def _iso_date(value: Any) -> datetime | None:
    """An RFC 3339 string; anything else (a Unix time as a number) is no date rather than a guess."""
    if not isinstance(value, str):
        return None
    try:
        return clamp_date(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def skipped_for(origin: str, result: ParseResult) -> ParseResult:
    """A feed file's result for the local reader: failed as a whole, one Skipped line for the
    file; else its skipped entries and warnings, each named after the file too."""
    if result.error:
        return ParseResult(skipped=[Skipped(origin, result.error)], tracebacks=result.tracebacks)
    result.skipped = [Skipped(f"{origin}: {s.origin}", s.reason) for s in result.skipped]
    result.warnings = [f"{origin}: {warning}" for warning in result.warnings]
    return result
