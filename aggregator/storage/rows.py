"""Articles as rows and rows as articles: the one place that knows how each field is stored.

In: an `Article` (and when it was first seen); out: the row written to
`articles`. In: a row read back; out: the `Article`. Dates are ISO 8601 in
UTC, lists JSON; a value a hand edit left unreadable reads as empty rather
than stopping every publish.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping

from aggregator.enrich import profile, terms
from aggregator.enrich.dates import iso_utc
from aggregator.enrich.text import fold_for_matching
from aggregator.enrich.urls import canonical_url
from aggregator.models import Article, SiteRelated

ARTICLE_COLUMNS = (
    "id", "source", "site", "title", "title_key", "url", "canonical_url", "guid", "published",
    "updated", "first_seen", "authors", "categories", "summary", "text", "content_html",
    "image", "site_related", "origin", "content_hash", "cluster_id", "terms", "language",
    "profile",
)


def parse_iso(value: str | None) -> datetime | None:
    """A stored date; None for one a hand edit or an older version left unreadable, UTC if zoneless."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed and parsed.tzinfo is None else parsed


def json_list(value: str | None) -> list:
    """A stored JSON list; empty for anything else (a hand edit must not stop every publish)."""
    try:
        loaded = json.loads(value) if value else []
    except (ValueError, TypeError):
        return []
    return loaded if isinstance(loaded, list) else []


def texts(value: str | None) -> list[str]:
    return [item for item in json_list(value) if isinstance(item, str)]


def article_row(article: Article, first_seen: str, now: str,
                canonical_urls: Mapping[str, str | None] = MappingProxyType({})) -> dict[str, Any]:
    """`canonical_urls`: the article's canonical URL when dedup already worked it out (w3lib's
    canonicalization costs 30 us an article)."""
    canonical = canonical_urls[article.id] if article.id in canonical_urls else canonical_url(article.url)
    return {
        "id": article.id, "source": article.source, "site": article.site,
        "title": article.title, "title_key": fold_for_matching(article.title),
        "url": article.url, "canonical_url": canonical, "guid": article.guid,
        "published": iso_utc(article.published), "updated": iso_utc(article.updated) or now,
        "first_seen": first_seen, "authors": json.dumps(article.authors),
        "categories": json.dumps(article.categories, ensure_ascii=False),
        "summary": article.summary, "text": article.text, "content_html": article.content_html,
        "image": article.image,
        "site_related": json.dumps([{"title": r.title, "author": r.author} for r in article.site_related],
                                   ensure_ascii=False),
        "origin": article.origin, "content_hash": article.content_hash,
        "cluster_id": article.cluster_id or article.id,
        "terms": terms.encoded(article),
        "profile": profile.encoded(article),
        "language": article.language or None,
    }


def article_from_row(row: dict[str, Any], topics: list[str]) -> Article:
    return Article(
        id=row["id"], source=row["source"], title=row["title"], site=row["site"] or "",
        url=row["url"], guid=row["guid"],
        published=parse_iso(row["published"]) or parse_iso(row["first_seen"]),
        updated=parse_iso(row["updated"]),
        authors=texts(row["authors"]),
        categories=texts(row["categories"]),
        summary=row["summary"] or "", text=row["text"] or "",
        content_html=row["content_html"] or "", image=row["image"],
        site_related=[SiteRelated(str(r.get("title") or ""), str(r.get("author") or ""))
                      for r in json_list(row["site_related"]) if isinstance(r, dict) and r.get("title")],
        origin=row["origin"] or "", content_hash=row["content_hash"] or "", topics=topics,
        cluster_id=row["cluster_id"] or row["id"], terms=row.get("terms") or "",
        language=row.get("language") or "", profile=row.get("profile") or "",
    )
