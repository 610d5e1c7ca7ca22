"""RSS and Atom bytes -> Articles, through feedparser (or feedparser-rs where it agrees).

The only module that calls feedparser. Its HTML sanitizer is turned off:
every entry's content is made safe by feed_entries.safe_html (nh3), which
is faster and stricter, and is applied to every format alike. Real feeds
are often ill-formed but complete (a bare `&`, `&nbsp;` in XML, a CDATA
section left open, a declared encoding that lies, served as text/html):
those are read the way feedparser recovers them, as the readers people
like do, and what was read past comes back as one line for the warning.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from typing import Any
from xml.sax import SAXParseException

import feedparser

from aggregator.enrich.dates import clamp_date
from aggregator.enrich.html_text import clean_html_to_text, html_to_text
from aggregator.enrich.text import clean_text, summarize
from aggregator.enrich.urls import safe_url
from aggregator.ingest import feed_fast
from aggregator.ingest.feed_entries import (
    MAX_ENTRIES, SUMMARY_SOURCE_CHARS, FeedError, entry_name, feed_article, paragraphs_html, read_entries, safe_html,
    summary_text, unique,
)
from aggregator.ingest.xml_document import has_xml_declaration, is_cut_off, joined_surrogate_refs, neutralize_dtd
from aggregator.models import Article, ParseResult


def parse_xml_feed(data: bytes, *, source: str, url: str | None = None, content_type: str | None = None,
                   max_entries: int = MAX_ENTRIES) -> tuple[ParseResult, list[str]]:
    """The articles of an RSS or Atom document, and what it was read in spite of."""
    if not data or data.isspace():
        raise FeedError("empty response: no feed in it")
    data = joined_surrogate_refs(neutralize_dtd(data))
    headers = {"content-location": url or "", "content-type": content_type or "application/xml"}
    truncated = is_cut_off(data, headers)
    parsed = feed_fast.parse_if_plain(data, content_type) or feedparser.parse(
        data, response_headers=headers, sanitize_html=False, resolve_relative_uris=True)
    if not parsed.get("version") and not parsed.entries:
        raise FeedError("not a feed: no RSS, Atom or JSON Feed in the response "
                        "(an HTML page or an error page?); check the source's URL")
    if truncated:
        raise FeedError("the feed is cut off before its end (truncated download?); "
                        "nothing from it was stored, it will be retried")
    return _articles_of(parsed, source=source, url=url, max_entries=max_entries), \
        [p for p in [_recovered(parsed, data)] if p]


def _articles_of(parsed: Any, *, source: str, url: str | None, max_entries: int) -> ParseResult:
    """One Article per entry with a title or text (read_entries)."""
    site = clean_text(parsed.feed.get("title", "")) or source
    feed_link = safe_url(parsed.feed.get("link"), url) or url
    feed_authors = _names(parsed.feed.get("authors", []))
    feed_language = str(parsed.feed.get("language") or "")  # RSS <language>, Atom xml:lang on the feed
    # Relative links resolve against the document's own URL (RFC 3986), not the
    # channel's home link; a saved file has no URL, so the home link stands in.
    return read_entries(
        parsed.entries, max_entries,
        lambda entry: _article_from_entry(entry, source=source, site=site, base=url or feed_link,
                                          feed_authors=feed_authors, feed_language=feed_language),
        lambda position, entry: entry_name(position, entry.get("id"), entry.get("link"), entry.get("title")))


def _recovered(parsed: Any, data: bytes) -> str | None:
    """What feedparser read past, in words for the source's owner, or None for a clean parse.

    A Content-Type that is not XML is left to _served_as, which says it whichever
    parser ran. feedparser puts an XML declaration line before a document that
    has none, so its line numbers are one too high there.
    """
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if problem is None or isinstance(problem, feedparser.NonXMLContentType):
        return None
    if isinstance(problem, SAXParseException):
        line = problem.getLineNumber() - (0 if has_xml_declaration(data) else 1)
        return (f"not well-formed XML at line {max(line, 1)} ({problem.getMessage()}), "
                "recovered as feed readers do (some text may be lost or garbled)")
    return str(problem) or type(problem).__name__


def _names(people: Any) -> list[str]:
    return [clean_text(p.get("name", "")) for p in _dicts(people) if p.get("name")]


def _dicts(value: Any) -> list:
    """The mappings in a list feedparser gives (ill-formed markup can leave a bare string among them)."""
    return [item for item in value if hasattr(item, "get")] if isinstance(value, list) else []


def _article_from_entry(entry: Any, *, source: str, site: str, base: str | None,
                        feed_authors: list[str], feed_language: str = "") -> Article | None:
    link = safe_url(entry.get("link"), base)
    content_html, summary_html = _content_and_summary(entry, _content_base(entry, link or base))
    text = clean_html_to_text(content_html)
    title = html_to_text(entry.get("title", "")) or summarize(text, 80)
    if not title and not text:
        return None
    summary = summarize(summary_text(summary_html) if summary_html else text)
    return feed_article(
        source=source, site=site, base=base, title=title, link=link, guid=clean_text(entry.get("id", "")),
        text=text, content_html=content_html, summary=summary,
        published=_date(entry.get("published_parsed")), updated=_date(entry.get("updated_parsed")),
        authors=_names(entry.get("authors")) or feed_authors,  # Atom: entries inherit the feed's author
        categories=unique(clean_text(t.get("term") or t.get("label") or "") for t in _dicts(entry.get("tags"))),
        image=_image(entry, link or base),
        language=str((entry.get("title_detail") or {}).get("language") or feed_language))


def _content_and_summary(entry: Any, base: str | None) -> tuple[str, str]:
    """The entry's content as safe HTML, and its summary's HTML when the content is not the
    summary itself (its first SUMMARY_SOURCE_CHARS: a summary shows 400 characters of it).

    The summary is read once, and let go here: feedparser-rs makes a new copy at every get,
    and of a 10 MB entry those copies would be most of what reading it holds.
    """
    summary = entry.get("summary", "")
    content = _best_content(entry, summary)
    own_summary = "" if content is summary else summary[:SUMMARY_SOURCE_CHARS]
    return safe_html(content, base), own_summary


def _best_content(entry: Any, summary: str) -> str:
    """The entry's HTML content (or text made HTML); else its summary (`summary`, already read)."""
    contents = _dicts(entry.get("content"))
    html_parts = [c for c in contents if "html" in (c.get("type") or "")]
    chosen = (html_parts or contents or [None])[0]
    if chosen is not None and chosen.get("value"):
        value = chosen["value"]
        return value if "html" in (chosen.get("type") or "") else paragraphs_html(value)
    detail = entry.get("summary_detail") or {}
    return summary if "html" in (detail.get("type") or "text/html") else paragraphs_html(summary)


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
