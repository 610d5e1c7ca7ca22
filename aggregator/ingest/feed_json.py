"""JSON Feed 1.0 and 1.1 bytes -> Articles (feedparser does not read this format).

Every field is read through a helper that accepts only the type the spec
gives it (_text, _json_id, _url, _tags, _json_authors): publishers put
objects where URLs belong, lists where strings belong, numbers for ids and
dates. A field of the wrong type is read as far as it makes sense, else
left out; it never costs the feed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from aggregator.enrich.dates import clamp_date
from aggregator.enrich.html_text import clean_html_to_text
from aggregator.enrich.text import clean_text, summarize
from aggregator.enrich.urls import safe_url
from aggregator.ingest.encoding import UndecodableError, decode_text
from aggregator.ingest.feed_entries import (
    MAX_ENTRIES, SUMMARY_SOURCE_CHARS, FeedError, entry_name, feed_article, paragraphs_html, read_entries, safe_html,
    unique,
)
from aggregator.models import Article, ParseResult

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.1)?/?$")
BARE_JSON_FEED_VERSIONS = ("1", "1.0", "1.1")


def parse_json_feed(data: bytes, *, source: str, url: str | None = None,
                    max_entries: int = MAX_ENTRIES) -> ParseResult:
    """The articles of a JSON Feed document; FeedError when it is not one."""
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
    feed_language = _text(document.get("language"))
    return read_entries(
        items, max_entries,
        lambda item: (_article_from_json_item(item, source, site, base, feed_authors, feed_language)
                      if isinstance(item, dict) else None),
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
    return unique(clean_text(name) for name in names)


def _article_from_json_item(item: dict, source: str, site: str, base: str | None,
                            feed_authors: list[str], feed_language: str = "") -> Article | None:
    link = safe_url(_url(item.get("url")), base) or safe_url(_url(item.get("external_url")), base)
    content_html = _json_content_html(item, link or base)
    text = clean_html_to_text(content_html)
    title = clean_text(_text(item.get("title"))) or summarize(text, 80)
    if not title and not text:
        return None
    return feed_article(
        source=source, site=site, base=base, title=title, link=link, guid=clean_text(_json_id(item.get("id"))),
        text=text, content_html=content_html,
        summary=summarize(clean_text(_text(item.get("summary"))[:SUMMARY_SOURCE_CHARS])) or summarize(text),
        published=_iso_date(item.get("date_published")), updated=_iso_date(item.get("date_modified")),
        authors=_json_authors(item) or feed_authors,
        categories=unique(clean_text(tag) for tag in _tags(item.get("tags"))),
        image=safe_url(_url(item.get("image")), base) or safe_url(_url(item.get("banner_image")), base),
        language=_text(item.get("language")) or feed_language)


def _json_content_html(item: dict, base: str | None) -> str:
    """content_html, else content_text made paragraphs, as safe HTML (the unsafe copy let go here)."""
    return safe_html(_text(item.get("content_html")) or paragraphs_html(_text(item.get("content_text"))), base)


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
