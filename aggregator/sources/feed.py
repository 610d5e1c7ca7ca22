"""Feed bytes (RSS, Atom, JSON Feed) -> Articles.

The only module that imports feedparser. It is always handed bytes we read
ourselves (given a string that is not a URL, feedparser opens it as a
file). Before it sees them, any document that declares XML entities is
refused: feedparser's own filter let a quadratic-blowup feed reach 2.3 GB.
feedparser does not read JSON Feed, so that format is parsed here with json.
Its HTML sanitizer is turned off: normalize.sanitize_html (nh3) is faster
and stricter, and it is applied to every format alike.
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import datetime, timezone
from typing import Any

from ..models import Article, ParseResult, Skipped
from ..normalize import (
    clamp_date, clean_html_to_text, clean_text, content_hash, html_to_text, safe_url, sanitize_html, stable_id,
    summarize,
)

ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.I)
DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\]\s*)?>", re.I | re.S)
ROOT_CLOSE = re.compile(rb"</\s*(rss|feed|rdf:RDF|RDF|channel)\s*>\s*$", re.I)
JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.1)?/?$")
MAX_ENTRIES = 20_000


class FeedError(ValueError):
    """The bytes are not a feed we can use; the message says why, for the source's owner."""


def parse_feed(data: bytes, *, source: str, url: str | None = None,
               content_type: str | None = None) -> ParseResult:
    """Parse a whole feed document. Errors come back as ParseResult.error, not exceptions."""
    try:
        if _looks_like_json(data):
            return ParseResult(articles=parse_json_feed(data, source=source, url=url))
        return ParseResult(articles=parse_xml_feed(data, source=source, url=url, content_type=content_type))
    except FeedError as exc:
        return ParseResult(error=str(exc))


def _looks_like_json(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


# --- RSS and Atom through feedparser ---


def neutralize_dtd(data: bytes) -> bytes:
    """Refuse entity declarations; drop any other DOCTYPE so nothing is fetched or expanded."""
    probe = data.replace(b"\x00", b"")  # so UTF-16 documents are checked too
    if ENTITY_DECLARATION.search(probe):
        raise FeedError("the feed declares XML entities (a DTD internal subset), which we refuse "
                        "for safety (XXE and entity-expansion attacks); ask the publisher to remove it")
    return DOCTYPE.sub(b"", data, count=1) if b"\x00" not in data[:200] else data


def parse_xml_feed(data: bytes, *, source: str, url: str | None = None,
                   content_type: str | None = None) -> list[Article]:
    import feedparser  # imported here: about 0.1 s, and only feed sources need it

    if not data.strip():
        raise FeedError("empty response: no feed in it")
    data = neutralize_dtd(data)
    headers = {"content-location": url or "", "content-type": content_type or "application/xml"}
    _refuse_entities(_as_feedparser_decodes(data, headers))
    parsed = _fast_parse(data, content_type) or feedparser.parse(data, response_headers=headers, sanitize_html=False,
                                                   resolve_relative_uris=True)
    if not parsed.get("version") and not parsed.entries:
        raise FeedError("not a feed: no RSS, Atom or JSON Feed in the response "
                        "(an HTML page or an error page?); check the source's URL")
    if parsed.get("bozo") and _truncated(data):
        raise FeedError("the feed is cut off before its end (truncated download?); "
                        "nothing from it was stored, it will be retried")
    site = clean_text(parsed.feed.get("title", "")) or source
    feed_link = safe_url(parsed.feed.get("link"), url) or url
    feed_authors = _names(parsed.feed.get("authors", []))
    articles: dict[str, Article] = {}
    for entry in parsed.entries[:MAX_ENTRIES]:
        # Relative links resolve against the document's own URL (RFC 3986), not the
        # channel's home link; a saved file has no URL, so the home link stands in.
        article = _article_from_entry(entry, source=source, site=site, base=url or feed_link,
                                      feed_authors=feed_authors)
        if article is not None:
            articles.setdefault(article.id, article)
    return list(articles.values())


ENTRY_TAG = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?(?:item|entry)[\s>/]")
LINK_STARTS = (b'href="', b"href='", b'src="', b"src='", b'url="', b"url='", b"<link>")
GUID_OPEN = re.compile(rb"<guid([^>]*)>\s*", re.I)
FAST_VERSIONS = {"rss20", "rss10", "atom10"}
XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)""")


def _fast_parse(data: bytes, content_type: str | None):
    """feedparser-rs's result when the case is plain, else None so feedparser (the reference) runs.

    feedparser-rs reads the same structure about 20x faster; tests/test_feed_parsers.py
    compares the two on every feed fixture. It only sees the plain case: XML (never
    a string it could mistake for a URL and fetch itself), UTF-8 or ASCII bytes with
    no other declared encoding (it trusts declarations that lie), only absolute
    links and no xml:base (feedparser resolves against the document URL, which
    feedparser-rs does not know). Its result must also be clean: no bozo flag, a
    version, and as many entries as <item>/<entry> start tags in the bytes.
    """
    if not data.lstrip().startswith(b"<") or not _plain_utf8(data, content_type) or _has_relative_refs(data):
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
    if parsed.get("bozo") or version not in FAST_VERSIONS:
        return None
    if len(parsed.entries) != len(ENTRY_TAG.findall(data)):
        return None
    return parsed


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


def _as_feedparser_decodes(data: bytes, headers: dict[str, str]) -> bytes:
    """The UTF-8 text feedparser will parse: an EBCDIC (cp037) or other exotic
    encoding hides "<!ENTITY" from a byte-level check, so check this too."""
    from feedparser.encodings import convert_to_utf8

    return convert_to_utf8(dict(headers), data, {})


def _truncated(data: bytes) -> bool:
    tail = data.rstrip()[-200:].replace(b"\x00", b"")
    return not ROOT_CLOSE.search(tail)


def _names(people: Any) -> list[str]:
    return [clean_text(p.get("name", "")) for p in people or [] if p.get("name")]


def _article_from_entry(entry: Any, *, source: str, site: str, base: str | None,
                        feed_authors: list[str]) -> Article | None:
    link = safe_url(entry.get("link"), base)
    content = _best_content(entry)
    content_base = _content_base(entry, link or base)
    content_html = sanitize_html(content, content_base)
    text = clean_html_to_text(content_html)
    title = html_to_text(entry.get("title", "")) or summarize(text, 80)
    if not title and not text:
        return None
    summary_html = entry.get("summary", "")
    summary = summarize(clean_html_to_text(sanitize_html(summary_html)) if summary_html else text)
    return _feed_article(
        source=source, site=site, base=base, title=title, link=link, guid=clean_text(entry.get("id", "")),
        text=text, content_html=content_html, summary=summary,
        published=_date(entry.get("published_parsed")), updated=_date(entry.get("updated_parsed")),
        authors=_names(entry.get("authors")) or feed_authors,  # Atom: entries inherit the feed's author
        categories=_unique(clean_text(t.get("term") or t.get("label") or "") for t in entry.get("tags", [])),
        image=_image(entry, link or base))


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


def _best_content(entry: Any) -> str:
    contents = entry.get("content") or []
    html_parts = [c for c in contents if "html" in (c.get("type") or "")]
    chosen = (html_parts or contents or [None])[0]
    if chosen is not None and chosen.get("value"):
        value = chosen["value"]
        return value if "html" in (chosen.get("type") or "") else _escape_text(value)
    summary = entry.get("summary_detail") or {}
    value = entry.get("summary", "")
    return value if "html" in (summary.get("type") or "text/html") else _escape_text(value)


def _escape_text(value: str) -> str:
    from html import escape

    return "".join(f"<p>{escape(p.strip())}</p>" for p in re.split(r"\n\s*\n", value) if p.strip())


def _content_base(entry: Any, fallback: str | None) -> str | None:
    for detail in (entry.get("content") or []) + [entry.get("summary_detail") or {}]:
        if detail.get("base"):
            return safe_url(detail["base"]) or fallback
    return fallback


def _image(entry: Any, base: str | None) -> str | None:
    candidates = [m.get("url") for m in entry.get("media_thumbnail", [])]
    candidates += [m.get("url") for m in entry.get("media_content", [])
                   if (m.get("medium") == "image" or (m.get("type") or "").startswith("image/"))]
    candidates += [link.get("href") for link in entry.get("links", [])
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


def parse_json_feed(data: bytes, *, source: str, url: str | None = None) -> list[Article]:
    from ..encoding import UndecodableError, decode_text

    try:
        document = json.loads(decode_text(data))
    except (UndecodableError, ValueError, RecursionError) as exc:
        raise FeedError(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not JSON_FEED_VERSION.match(str(document.get("version", ""))):
        raise FeedError("JSON without a JSON Feed version (https://jsonfeed.org/version/1.1); not a feed")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError('JSON Feed has no "items" list')
    site = clean_text(str(document.get("title") or "")) or source
    base = safe_url(document.get("home_page_url")) or safe_url(document.get("feed_url")) or url
    feed_authors = _json_authors(document)
    articles: dict[str, Article] = {}
    for item in items[:MAX_ENTRIES]:
        if isinstance(item, dict) and (article := _article_from_json_item(item, source, site, base, feed_authors)):
            articles.setdefault(article.id, article)
    return list(articles.values())


def _json_authors(obj: dict) -> list[str]:
    authors = obj.get("authors")
    if not isinstance(authors, list):
        authors = [obj["author"]] if isinstance(obj.get("author"), dict) else []
    return [clean_text(str(a.get("name"))) for a in authors if isinstance(a, dict) and a.get("name")]


def _article_from_json_item(item: dict, source: str, site: str, base: str | None,
                            feed_authors: list[str]) -> Article | None:
    link = safe_url(_str(item.get("url")), base) or safe_url(_str(item.get("external_url")), base)
    raw_html = _str(item.get("content_html")) or _escape_text(_str(item.get("content_text")))
    content_html = sanitize_html(raw_html, link or base)
    text = clean_html_to_text(content_html)
    title = clean_text(_str(item.get("title"))) or summarize(text, 80)
    if not title and not text:
        return None
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    return _feed_article(
        source=source, site=site, base=base, title=title, link=link, guid=clean_text(_str(item.get("id"))),
        text=text, content_html=content_html,
        summary=summarize(clean_text(_str(item.get("summary")))) or summarize(text),
        published=_iso_date(item.get("date_published")), updated=_iso_date(item.get("date_modified")),
        authors=_json_authors(item) or feed_authors,
        categories=_unique(clean_text(str(t)) for t in tags if isinstance(t, (str, int, float))),
        image=safe_url(_str(item.get("image")), base) or safe_url(_str(item.get("banner_image")), base))


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return clamp_date(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def skipped_for(origin: str, result: ParseResult) -> ParseResult:
    """A feed file that failed as a whole becomes one Skipped line for the local reader."""
    if result.error:
        return ParseResult(skipped=[Skipped(origin, result.error)])
    return result
