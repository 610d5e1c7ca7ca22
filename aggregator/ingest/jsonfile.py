"""JSON files -> Articles: one article object, a list of them, or a JSON Feed.

A JSON Feed goes to ingest/feed.py so feeds read from disk and from the
network become the same Articles. Plain article objects use the field
names people and tools commonly write (JSON Feed's own names first, then
the usual synonyms), so an export from most CMSs works without mapping.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from aggregator.models import Article, ParseResult
from aggregator.enrich.dates import clamp_date
from aggregator.enrich.html_text import clean_html_to_text
from aggregator.enrich.sanitize import sanitize_html
from aggregator.enrich.text import clean_text, content_hash, summarize
from aggregator.enrich.urls import safe_url
from aggregator.ingest.feed import parse_feed, skipped_for
from aggregator.ingest.feed_entries import MAX_ENTRIES, entry_name, paragraphs_html, read_entries
from aggregator.ingest.feed_json import is_json_feed, json_string
from aggregator.ingest.plaintext import NotAnArticle

TITLE_KEYS = ("title", "headline", "name")
URL_KEYS = ("url", "link", "external_url", "permalink")
ID_KEYS = ("id", "guid", "uuid")
PUBLISHED_KEYS = ("date_published", "published", "datePublished", "date", "pubDate", "created")
UPDATED_KEYS = ("date_modified", "updated", "dateModified", "modified")
HTML_KEYS = ("content_html", "html", "content", "body_html")
TEXT_KEYS = ("content_text", "text", "body", "articleBody")
SUMMARY_KEYS = ("summary", "description", "excerpt")
TAG_KEYS = ("tags", "categories", "keywords", "section", "articleSection")
IMAGE_KEYS = ("image", "banner_image", "thumbnail")
SITE_KEYS = ("site", "site_name", "source_name", "publisher")

MakeId = Callable[[str | None], str]


def parse_json_file(text: str, *, source: str, origin: str, make_id: MakeId,
                    fallback_date: datetime | None = None, max_entries: int = MAX_ENTRIES) -> ParseResult:
    """Articles from one JSON file; a user mistake raises NotAnArticle or becomes one Skipped.

    In a list, an object that cannot be read is skipped with one line naming it, and
    only the first `max_entries` are read (feed_entries.read_entries), as in a feed.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NotAnArticle(f"not valid JSON ({exc})") from None
    if is_json_feed(document):
        data = text.lstrip("\ufeff").encode("utf-8")  # decoded by us: the feed parser needs no guessing
        result = skipped_for(origin, parse_feed(data, source=source, url=None, max_entries=max_entries))
        result.articles = [replace(article, origin=origin) for article in result.articles]
        return result
    if isinstance(document, dict):
        article = article_from_object(document, source=source, origin=origin, article_id=make_id(None),
                                      fallback_date=fallback_date)
        if article is None:
            raise NotAnArticle("a JSON object without a title and text (expected an article, "
                               "a list of articles or a JSON Feed)")
        return ParseResult(articles=[article])
    if isinstance(document, list):
        return _articles_from_list(document, source, origin, make_id, fallback_date, max_entries)
    raise NotAnArticle("JSON that is neither an article object, a list of them nor a JSON Feed")


def _articles_from_list(items: list, source: str, origin: str, make_id: MakeId,
                        fallback_date: datetime | None, max_entries: int) -> ParseResult:
    def article_of(indexed: tuple[int, Any]) -> Article | None:
        index, item = indexed
        if not isinstance(item, dict):
            return None
        key = _first_str(item, ID_KEYS) or _first_str(item, URL_KEYS) or f"#{index}"
        return article_from_object(item, source=source, origin=origin, article_id=make_id(key),
                                   fallback_date=fallback_date)

    def name_of(position: int, indexed: tuple[int, Any]) -> str:
        item = indexed[1] if isinstance(indexed[1], dict) else {}
        return f"{origin}: " + entry_name(position, _first_str(item, ID_KEYS), _first_str(item, URL_KEYS),
                                          _first_str(item, TITLE_KEYS), "article")

    result = read_entries(list(enumerate(items)), max_entries, article_of, name_of, "articles", "the file")
    if not result.articles and not result.skipped:
        raise NotAnArticle("a JSON list with no article objects (each needs a title and text)")
    result.warnings = [f"{origin}: {warning}" for warning in result.warnings]
    return result


def article_from_object(obj: dict, *, source: str, origin: str, article_id: str,
                        fallback_date: datetime | None = None) -> Article | None:
    """One article object -> Article, or None when it has neither title nor text."""
    url = safe_url(_first_str(obj, URL_KEYS))
    content_html = _content_html(obj, url)
    text = clean_html_to_text(content_html)
    title = clean_text(_first_str(obj, TITLE_KEYS))
    if not title or not text:
        return None
    published = _date(obj, PUBLISHED_KEYS)
    updated = _date(obj, UPDATED_KEYS)
    site = clean_text(_name(_first(obj, SITE_KEYS)))
    categories = _names(_first(obj, TAG_KEYS))
    return Article(
        id=article_id,
        source=source,
        title=title,
        site=site,
        url=url,
        guid=_first_str(obj, ID_KEYS) or None,
        published=published or fallback_date,
        updated=updated if updated and published and updated > published else None,
        authors=_names(obj.get("authors") or obj.get("author")),
        categories=categories,
        summary=summarize(clean_text(_first_str(obj, SUMMARY_KEYS))) or summarize(text),
        text=text,
        content_html=content_html,
        image=safe_url(_name(_first(obj, IMAGE_KEYS), "url"), url),
        origin=origin,
        content_hash=content_hash(title, text, url or "", site, ",".join(categories)),
    )


def _content_html(obj: dict, url: str | None) -> str:
    """The object's HTML, else its text made paragraphs, as safe HTML (the unsafe copy let go here)."""
    return sanitize_html(_first_str(obj, HTML_KEYS) or paragraphs_html(_first_str(obj, TEXT_KEYS)), url)


def _first(obj: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if obj.get(key) not in (None, "", []):
            return obj[key]
    return None


def _first_str(obj: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            return json_string(value.strip())
    return ""


def _name(value: Any, key: str = "name") -> str:
    """A string, or the `name` (or `url`) of an object such as a JSON-LD publisher."""
    if isinstance(value, dict):
        value = value.get(key)
    return json_string(value)


def _names(value: Any) -> list[str]:
    if isinstance(value, (str, dict)):
        value = value.split(",") if isinstance(value, str) else [value]
    items = value if isinstance(value, list) else []
    seen: dict[str, str] = {}
    for item in items:
        name = clean_text(_name(item))
        if name:
            seen.setdefault(name.lower(), name)
    return list(seen.values())


def _date(obj: dict, keys: tuple[str, ...]) -> datetime | None:
    value = _first_str(obj, keys)
    if not value:
        return None
    try:
        return clamp_date(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
