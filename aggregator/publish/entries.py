"""Stored articles -> entries: one article as every feed and page shows it.

An entry's id, link, categories, origin and body are fixed here once, and
every format renders the same entry. Text XML cannot carry is dropped here
too (rows stored before ingest scrubbed it); an article that still cannot
be made an entry, or that a format refuses, is left out of what it breaks
and named in one line (`LeftOut`): one stored article never stops a publish.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from aggregator.config import Config
from aggregator.dedup.clusters import also_reported_html
from aggregator.enrich.sanitize import sanitize_html
from aggregator.enrich.text import xml_safe
from aggregator.enrich.urls import safe_url
from aggregator.models import Article, RelatedLink
from aggregator.publish.names import ID_NAMESPACE, article_link, entry_id

log = logging.getLogger("aggregator")
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
FILES_SHOWN = 4  # feed files named in a left-out article's line; the rest are counted


@dataclass(frozen=True)
class Origin:
    """Where an entry came from, for Atom <source> and RSS <source>.

    `feed_url` is the feed we read it from (None for local files: a file
    path is private and means nothing to a reader); `home_url` the site's
    front page when we know it.
    """

    id: str
    title: str
    feed_url: str | None = None
    home_url: str | None = None


@dataclass
class Entry:
    """One article as it appears in feeds: its public id, link and extras fixed."""

    article: Article
    entry_id: str
    link: str
    related: list[RelatedLink]
    categories: list[str] = field(default_factory=list)
    origin: Origin | None = None
    image: str | None = None
    also_reported: list[Article] = field(default_factory=list)  # the cluster's other copies
    content: str = ""  # the feed body (entry_html), rendered once for every topic and format


@dataclass
class LeftOut:
    """Stored articles left out of what this publish writes: why, and where from.

    Gathered while rendering and logged at the end, one line per article,
    however many feeds it is missing from.
    """

    feeds_dir: Path
    causes: dict[str, str] = field(default_factory=dict)  # article id -> the exception, in one line
    places: dict[str, list[str]] = field(default_factory=dict)  # article id -> the files it is not in

    def note(self, article_id: str, exc: BaseException, place: Path | str) -> None:
        log.debug("publish: article %s raised while rendering %s", article_id, place, exc_info=exc)
        self.causes.setdefault(article_id, _cause(exc))
        shown = place.relative_to(self.feeds_dir).as_posix() if isinstance(place, Path) else place
        self.places.setdefault(article_id, []).append(shown)

    def report(self) -> list[str]:
        """One line per article, logged here and kept in the PublishReport."""
        lines = [f"article {article_id} left out of {_listed(self.places[article_id])} ({cause}); its stored "
                 "row holds something no feed can carry (written by hand or by an older version)"
                 for article_id, cause in self.causes.items()]
        for line in lines:
            log.warning("publish: %s", line)
        return lines


def _listed(places: list[str]) -> str:
    shown = ", ".join(places[:FILES_SHOWN])
    return shown + (f" and {len(places) - FILES_SHOWN} more" if len(places) > FILES_SHOWN else "")


def _cause(exc: BaseException) -> str:
    message = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def build_entry(config: Config, article: Article, related_posts: list[RelatedLink],
                topic_titles: dict[str, str]) -> Entry:
    base_url = config.site.base_url
    article = xml_safe_article(article)
    related = [RelatedLink(r.id, xml_safe(r.title), article_link(base_url, r.id, r.url), xml_safe(r.site),
                           r.published) for r in related_posts]
    return Entry(article, entry_id(article.id), article_link(base_url, article.id, article.url), related,
                 categories=entry_categories(article, topic_titles), origin=entry_origin(article),
                 image=safe_url(article.image))


def xml_safe_article(article: Article) -> Article:
    """The article without characters XML 1.0 cannot carry in what an entry shows.

    Ingest drops them before storing; a row stored before that (or by hand)
    would make feedgen raise for the whole feed. Nearly always clean: one check.
    """
    shown = [article.title, article.site, article.source, article.summary, *article.categories]
    if all(xml_safe(text) is text for text in shown):
        return article
    return replace(article, title=xml_safe(article.title), site=xml_safe(article.site),
                   source=xml_safe(article.source), summary=xml_safe(article.summary),
                   categories=[xml_safe(c) for c in article.categories])


def entry_categories(article: Article, topic_titles: dict[str, str]) -> list[str]:
    """Topic titles, then the article's own categories; case-insensitively unique."""
    seen: dict[str, str] = {}
    for term in [*(topic_titles.get(t, t) for t in article.topics), *article.categories]:
        term = term.strip()
        if term:
            seen.setdefault(term.lower(), term)
    return list(seen.values())


def entry_origin(article: Article) -> Origin:
    """The source feed (when the article came from one) and the site's home page."""
    title = article.site or article.source
    feed = safe_url(article.origin)
    page = safe_url(article.url)
    home = f"{urlsplit(page).scheme}://{urlsplit(page).netloc}/" if page else None
    origin_id = feed or f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, 'origin:' + (article.site or article.source))}"
    return Origin(id=origin_id, title=title, feed_url=feed, home_url=home)


def media_type(url: str) -> str:
    """The enclosure's media type guessed from its file name; honest when unknown."""
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed or UNKNOWN_MEDIA_TYPE


def feed_updated(entries: list[Entry]) -> datetime:
    """The newest entry change: never the clock, so unchanged input gives unchanged bytes."""
    return max((entry_dates(e)[1] for e in entries), default=EMPTY_FEED_DATE)


def entry_dates(entry: Entry) -> tuple[datetime, datetime]:
    """(published, updated); updated never precedes published."""
    published = entry.article.published or EMPTY_FEED_DATE
    return published, max(entry.article.updated or published, published)


def entry_html(entry: Entry, full_content: bool = True) -> str:
    """The entry's body: sanitized content (or summary) plus the related-posts list.

    Content is sanitized again here although ingest already did: the store
    may hold rows written by older versions, and publishing is the last gate.
    """
    article = entry.article
    body = sanitize_html(article.content_html) if full_content and article.content_html else (
        f"<p>{html.escape(article.summary)}</p>" if article.summary else "")
    return body + also_reported_html(entry.also_reported) + related_html(entry.related)


def related_html(related: list[RelatedLink]) -> str:
    if not related:
        return ""
    items = []
    for link in related:
        meta = ", ".join(x for x in (html.escape(link.site),
                                     link.published.date().isoformat() if link.published else "") if x)
        items.append(f'<li><a href={quoteattr(link.url)}>{html.escape(link.title)}</a>'
                     + (f" <small>({meta})</small>" if meta else "") + "</li>")
    return '<h3>Related posts</h3><ul class="related-posts">' + "".join(items) + "</ul>"
