"""Stored articles -> feeds/: Atom, RSS and JSON Feed per topic, plus an index.

The only module that imports feedgen and the only one that writes under
feeds/. Files are written atomically and only when their bytes change, so
an unchanged feed keeps its mtime and ETag and HTTP caching keeps working.
Nothing rendered depends on the clock: every date comes from the store
(`updated` is the time of the entry's last content change there).

feedgen 1.0.0 drops every attribute but href on entry <link> elements in
Atom (python-feedgen issue #135), and writes an Atom <source> without the
id RFC 4287 asks for, so `EntryExtras` below, a feedgen entry extension,
removes the links and source feedgen wrote and writes them itself.

One stored article never stops a publish. Text XML cannot carry is dropped
here too (rows stored before ingest scrubbed it); an article that still
cannot be made an entry, or that feedgen refuses, is left out of the feeds
it breaks, one line naming it (`LeftOut`), and every feed is written.
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.config import Config, TopicConfig
from aggregator.models import Article, RelatedLink
from aggregator.enrich.sanitize import sanitize_html
from aggregator.enrich.text import xml_safe
from aggregator.enrich.urls import safe_url
from aggregator.dedup.clusters import ClusterView, also_reported_html, collapse_clusters
from aggregator.publish.last_publish import PublishReport, orphan_pages, remember, unchanged_report
from aggregator.publish.related import related_for_many
from aggregator.storage.store import Store

log = logging.getLogger("aggregator")
ID_NAMESPACE = uuid.UUID("5b0c6b3e-43a4-4c43-9d8e-6f1d2e3a9b71")
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)
ALL_TOPIC = TopicConfig(slug="all", title="All articles", description="Every article, newest first")
EXTENSIONS = {"atom": "atom", "rss": "rss", "json": "json"}
MIME_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
STYLESHEET = "style.css"
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}")
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


def entry_id(article_id: str) -> str:
    """Globally unique and stable across topics and base URL changes (newsboat keys on it)."""
    return f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, article_id)}"


def article_link(base_url: str, article_id: str, url: str | None) -> str:
    """The article's own URL, or the page we publish for a local article."""
    return safe_url(url) or f"{base_url}articles/{page_name(article_id)}"


def page_name(article_id: str) -> str:
    """A local article page's file name: the id when it is a plain token, never a path."""
    if SAFE_NAME.fullmatch(article_id):
        return f"{article_id}.html"
    return f"{uuid.uuid5(ID_NAMESPACE, article_id).hex}.html"


def feed_path(feeds_dir: Path, slug: str, fmt: str) -> Path:
    return feeds_dir / f"{slug}.{EXTENSIONS[fmt]}"


def feed_url(base_url: str, slug: str, fmt: str) -> str:
    return f"{base_url}{slug}.{EXTENSIONS[fmt]}"


# --- the whole publish step ---


def publish(config: Config, store: Store, force: bool = False) -> PublishReport:
    """Write every topic's feeds, the index and OPML; remove feeds no longer configured.

    `force` renders and rewrites every file even when nothing seems changed.
    """
    stamp, unchanged = unchanged_report(config, store)  # nothing changed, and every file as it was written?
    return (None if force else unchanged) or publish_changed(config, store, stamp, force)


def publish_changed(config: Config, store: Store, stamp: str, force: bool = False) -> PublishReport:
    """publish, for a caller that has already found something changed (pipeline.publish).

    Every file is rendered and compared with what is on disk, so one that was
    truncated or edited is written back; `force` rewrites even identical ones.
    """
    report = PublishReport()
    feeds_dir = config.storage.feeds_dir
    topics = [*config.topics, ALL_TOPIC]
    left_out = LeftOut(feeds_dir)
    outputs, latest = render_feeds(config, store, topics, left_out)
    outputs.update(render_article_pages(config, store, latest, left_out))
    outputs[feeds_dir / "index.html"] = render_index(config, topics, latest)
    outputs[feeds_dir / "topics.opml"] = render_opml(config, topics)
    outputs[feeds_dir / STYLESHEET] = STYLE_CSS.encode("utf-8")
    for path, data in outputs.items():
        (report.written if write_if_changed(path, data, force) else report.unchanged).append(path)
    report.removed = remove_stale_feeds(feeds_dir, {t.slug for t in topics}, config.publish.formats)
    report.removed += remove_orphan_pages(feeds_dir, outputs)
    remember(config, store, stamp, outputs)
    report.left_out = left_out.report()
    return report


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


def render_feeds(config: Config, store: Store, topics: list[TopicConfig],
                 left_out: "LeftOut | None" = None) -> tuple[dict[Path, bytes], dict[str, list[Entry]]]:
    """Every topic's feed files, and the entries each topic shows (for the index).

    An article that cannot be made an entry is left out of every feed, one
    that a format cannot render out of that format's files (`left_out` says so).
    """
    left_out = left_out or LeftOut(config.storage.feeds_dir)
    titles = {t.slug: t.title for t in config.topics}
    outputs: dict[Path, bytes] = {}
    latest: dict[str, list[Entry]] = {}
    views = {topic.slug: collapse_clusters(store, store.articles(  # each story once; copies listed in it
        topic=None if topic is ALL_TOPIC else topic.slug, limit=config.publish.max_items)) for topic in topics}
    shown = {v.representative.id: v.representative for vs in views.values() for v in vs}
    related = related_for_many(store, list(shown.values()), config.publish.related_posts)
    entries_by_id: dict[str, Entry | None] = {}  # a story in several topics is one entry, rendered once
    for topic in topics:
        for view in views[topic.slug]:
            if view.representative.id not in entries_by_id:
                entries_by_id[view.representative.id] = prepared_entry(config, view, related, titles, left_out)
        entries = [entry for view in views[topic.slug] if (entry := entries_by_id[view.representative.id])]
        latest[topic.slug] = entries
        for fmt in config.publish.formats:
            path = feed_path(config.storage.feeds_dir, topic.slug, fmt)
            outputs[path] = render_leaving_out(fmt, config, topic, entries, path, left_out)
    return outputs, latest


def prepared_entry(config: Config, view: ClusterView, related: dict[str, list[RelatedLink]],
                   titles: dict[str, str], left_out: "LeftOut") -> Entry | None:
    """The cluster view's entry with its body rendered, or None (noted in `left_out`) when
    something in the stored article raises: it is left out, the other entries are not."""
    article = view.representative
    try:
        entry = build_entry(config, article, related.get(article.id, []), titles)
        entry.also_reported = view.copies
        entry.content = xml_safe(entry_html(entry, config.publish.full_content))
        return entry
    except Exception as exc:  # noqa: BLE001 - an odd stored article: it alone is left out
        left_out.note(article.id, exc, "every feed")
        return None


def render_leaving_out(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry], path: Path,
                       left_out: "LeftOut") -> bytes:
    """render(), without the entries the format cannot render (each noted in `left_out`).

    The whole feed is tried first; only when it raises is each entry rendered
    alone to find the ones to blame. None to blame is our own bug: it raises.
    """
    try:
        return render(fmt, config, topic, entries)
    except Exception:  # noqa: BLE001 - blamed on the entries below, or raised again
        failing = _failing_entries(fmt, config, topic, entries)
        if not failing:
            raise
    for article_id, exc in failing.items():
        left_out.note(article_id, exc, path)
    return render(fmt, config, topic, [e for e in entries if e.article.id not in failing])


def _failing_entries(fmt: str, config: Config, topic: TopicConfig,
                     entries: list[Entry]) -> dict[str, BaseException]:
    failing: dict[str, BaseException] = {}
    for entry in entries:
        try:
            render(fmt, config, topic, [entry])
        except Exception as exc:  # noqa: BLE001 - this entry is one to blame
            failing[entry.article.id] = exc
    return failing


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


def render(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry]) -> bytes:
    if fmt == "json":
        return render_json(config, topic, entries)
    generator = _generator(config, topic, entries, fmt)
    if fmt == "atom":
        return generator.atom_str(pretty=True, encoding="UTF-8")
    return generator.rss_str(pretty=True, encoding="UTF-8")


# --- Atom and RSS through feedgen ---


class _FeedExtras(BaseExtension):
    """Feed-level half of the extension pair feedgen requires; adds nothing."""

    def extend_ns(self) -> dict[str, str]:
        return {}


class EntryExtras(BaseEntryExtension):
    """Writes an Atom entry's links (alternate, related, enclosure) and its <source> element."""

    def __init__(self) -> None:
        self.alternate: str = ""
        self.related: list[RelatedLink] = []
        self.enclosure: str | None = None
        self.origin: Origin | None = None

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        # feedgen builds un-namespaced elements under a default-namespace root.
        for old in [*entry.findall("link"), *entry.findall("source")]:
            entry.remove(old)
        anchor = entry.find("title")
        position = list(entry).index(anchor) + 1 if anchor is not None else len(entry)
        for offset, attributes in enumerate(self._links()):
            entry.insert(position + offset, etree.Element("link", attrib=attributes))
        if self.origin is not None:
            entry.append(_atom_source(self.origin))
        return entry

    def _links(self) -> list[dict[str, str]]:
        links = [{"rel": "alternate", "type": "text/html", "href": self.alternate}]
        links += [{"rel": "related", "type": "text/html", "href": r.url, "title": r.title}
                  for r in self.related]
        if self.enclosure:
            links.append({"rel": "enclosure", "type": media_type(self.enclosure), "href": self.enclosure})
        return links

    def extend_rss(self, item: etree._Element) -> etree._Element:
        return item


# Kept for callers that know the extension by its first name.
EntryLinks = EntryExtras


def _atom_source(origin: Origin) -> etree._Element:
    """RFC 4287 4.2.11: the origin feed's id, title and links, so attribution survives copying."""
    source = etree.Element("source")
    etree.SubElement(source, "id").text = origin.id
    etree.SubElement(source, "title").text = origin.title
    if origin.feed_url:
        etree.SubElement(source, "link", rel="self", href=origin.feed_url)
    if origin.home_url:
        etree.SubElement(source, "link", rel="alternate", type="text/html", href=origin.home_url)
    return source


def _generator(config: Config, topic: TopicConfig, entries: list[Entry], fmt: str) -> FeedGenerator:
    base_url = config.site.base_url
    generator = FeedGenerator()
    generator.register_extension("extras", _FeedExtras, EntryExtras, atom=True, rss=False)
    if fmt == "rss":
        generator.load_extension("dc", atom=False, rss=True)
    generator.id(feed_url(base_url, topic.slug, "atom"))
    generator.title(f"{config.site.title}: {topic.title}")
    generator.subtitle(topic.description or f"{topic.title} from {config.site.title}")
    generator.link(href=feed_url(base_url, topic.slug, fmt), rel="self", type=MIME_TYPES[fmt])
    # feedgen takes the RSS <link> from the last link given: the home page.
    generator.link(href=f"{base_url}index.html", rel="alternate", type="text/html")
    generator.author(name=config.site.title)
    generator.language(config.site.language)
    generator.generator("aggregator", version=__version__)
    newest = feed_updated(entries)
    generator.updated(newest)
    generator.lastBuildDate(newest)
    generator.pubDate(newest)
    for entry in entries:
        _add_entry(generator, config, entry, fmt)
    return generator


def feed_updated(entries: list[Entry]) -> datetime:
    """The newest entry change: never the clock, so unchanged input gives unchanged bytes."""
    return max((entry_dates(e)[1] for e in entries), default=EMPTY_FEED_DATE)


def entry_dates(entry: Entry) -> tuple[datetime, datetime]:
    """(published, updated); updated never precedes published."""
    published = entry.article.published or EMPTY_FEED_DATE
    return published, max(entry.article.updated or published, published)


def _add_entry(generator: FeedGenerator, config: Config, entry: Entry, fmt: str) -> None:
    article = entry.article
    published, updated = entry_dates(entry)
    item = generator.add_entry(order="append")
    item.guid(entry.entry_id, permalink=False)
    item.title(article.title)
    item.link(href=entry.link, rel="alternate")
    item.extras.alternate = entry.link
    item.extras.related = entry.related
    item.extras.enclosure = entry.image
    item.extras.origin = entry.origin
    item.published(published)
    item.updated(updated)
    author = article.site or article.source
    item.author(name=author)
    if fmt == "rss":
        item.dc.dc_creator(author)  # RSS <author> must be an e-mail address; dc:creator takes a name
        if entry.origin and (entry.origin.feed_url or entry.origin.home_url):
            item.source(url=entry.origin.feed_url or entry.origin.home_url, title=entry.origin.title)
        if entry.image:
            item.enclosure(url=entry.image, length="0", type=media_type(entry.image))
    if entry.categories:
        item.category([{"term": t} for t in entry.categories])
    if article.summary:
        # Plain text, but RSS <description> is read as HTML: escape it and say so in Atom too.
        item.summary(html.escape(article.summary, quote=False), type="html")
    item.content(entry.content, type="html")


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


# --- JSON Feed 1.1: feedgen does not write it, and it is only json.dumps ---


def render_json(config: Config, topic: TopicConfig, entries: list[Entry]) -> bytes:
    base_url = config.site.base_url
    feed = {
        "version": JSON_FEED_VERSION,
        "title": f"{config.site.title}: {topic.title}",
        "home_page_url": f"{base_url}index.html",
        "feed_url": feed_url(base_url, topic.slug, "json"),
        "description": topic.description or f"{topic.title} from {config.site.title}",
        "language": config.site.language,
        "authors": [{"name": config.site.title}],
        "items": [_json_item(e) for e in entries],
    }
    return (html_safe_json(feed) + "\n").encode("utf-8")


def html_safe_json(value: object) -> str:
    """JSON whose text holds no raw '<', '>' or '&' (escaped as \\u003c ...; parsed values unchanged).

    Titles are plain text by the JSON Feed spec, but a reader or page that
    pastes them into HTML unescaped must still not meet a live <script>.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # no indent: C encoder, 5x faster
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_item(entry: Entry) -> dict:
    article = entry.article
    published, updated = entry_dates(entry)
    item: dict = {
        "id": entry.entry_id,
        "url": entry.link,
        "title": article.title,
        "content_html": entry.content,
    }
    if article.summary:
        item["summary"] = article.summary
    if entry.image:
        item["image"] = entry.image
    item["date_published"] = published.isoformat()
    item["date_modified"] = updated.isoformat()
    item["authors"] = [{"name": article.site or article.source}]
    if entry.categories:
        item["tags"] = entry.categories
    if entry.image:
        item["attachments"] = [{"url": entry.image, "mime_type": media_type(entry.image)}]
    # Custom extension objects start with "_" and carry "about" (JSON Feed 1.1, "Extensions").
    item["_aggregator"] = {
        "about": "https://jsonfeed.org/version/1.1#extensions",
        "source": _json_source(entry.origin),
        "related": [{"id": entry_id(r.id), "title": r.title, "url": r.url} for r in entry.related],
    }
    return item


def _json_source(origin: Origin | None) -> dict:
    if origin is None:
        return {}
    source = {"id": origin.id, "title": origin.title}
    if origin.feed_url:
        source["feed_url"] = origin.feed_url
    if origin.home_url:
        source["home_page_url"] = origin.home_url
    return source


# --- the index page, article pages and OPML: no inline style, script or handlers ---

STYLE_CSS = """body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.8rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.subscribe a { margin-right: .3rem; }
small { color: #666; }
li { margin: .3rem 0; }
article { font: 17px/1.6 Georgia, serif; }
"""


def render_index(config: Config, topics: list[TopicConfig], latest: dict[str, list[Entry]]) -> bytes:
    base_url = config.site.base_url
    title = html.escape(config.site.title)
    head_links = []
    for topic in topics:
        for fmt in config.publish.formats:
            head_links.append(f'<link rel="alternate" type="{MIME_TYPES[fmt]}" '
                              f'title={quoteattr(f"{topic.title} ({fmt.upper()})")} '
                              f'href={quoteattr(feed_url(base_url, topic.slug, fmt))}>')
    sections = [_index_section(config, topic, latest.get(topic.slug, [])) for topic in topics]
    page = f"""<!DOCTYPE html>
<html lang={quoteattr(config.site.language)}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{chr(10).join(head_links)}
<link rel="alternate" type="text/x-opml" title="All topics (OPML)" href={quoteattr(base_url + "topics.opml")}>
<link rel="stylesheet" href="{STYLESHEET}">
</head>
<body>
<h1>{title}</h1>
<p>{html.escape(config.site.description)}</p>
<p>Subscribe to every topic at once with <a href="topics.opml">topics.opml</a>.</p>
{chr(10).join(sections)}
</body>
</html>
"""
    return page.encode("utf-8")


def _index_section(config: Config, topic: TopicConfig, entries: list[Entry]) -> str:
    links = [f'<a href={quoteattr(feed_url(config.site.base_url, topic.slug, fmt))}>{fmt.upper()}</a>'
             for fmt in config.publish.formats]
    headlines = "".join(
        f'<li><a href={quoteattr(e.link)}>{html.escape(e.article.title)}</a> '
        f'<small>{html.escape(e.article.site)}</small></li>' for e in entries[:5])
    description = f"<p>{html.escape(topic.description)}</p>" if topic.description else ""
    return (f'<section><h2>{html.escape(topic.title)}</h2>{description}'
            f'<p class="subscribe">Subscribe: {" · ".join(links)}</p>'
            + (f"<ul>{headlines}</ul>" if headlines else "<p>No articles yet.</p>") + "</section>")


def render_article_pages(config: Config, store: Store, latest: dict[str, list[Entry]],
                         left_out: "LeftOut | None" = None) -> dict[Path, bytes]:
    """Pages for local articles without a URL: every feed entry and every related link target.

    A page that raises is left out (noted in `left_out`); the others are written.
    """
    left_out = left_out or LeftOut(config.storage.feeds_dir)
    pages = {e.article.id: e for entries in latest.values() for e in entries if not safe_url(e.article.url)}
    targets = {r.id for entries in latest.values() for e in entries for r in e.related
               if r.url.startswith(f"{config.site.base_url}articles/")} - pages.keys()
    for article in store.get_many(sorted(targets)).values():
        pages[article.id] = Entry(article, entry_id(article.id),
                                  article_link(config.site.base_url, article.id, None), [])
    pages_dir = config.storage.feeds_dir / "articles"
    rendered = {}
    for article_id, entry in pages.items():
        path = pages_dir / page_name(article_id)
        try:
            rendered[path] = render_article_page(config, entry)
        except Exception as exc:  # noqa: BLE001 - an odd stored article: its page alone is left out
            left_out.note(article_id, exc, path)
    return rendered


def render_article_page(config: Config, entry: Entry) -> bytes:
    """A page for a local article that has no URL of its own, so feed links lead somewhere."""
    article = entry.article
    title = html.escape(article.title)
    date = article.published.date().isoformat() if article.published else ""
    page = f"""<!DOCTYPE html>
<html lang={quoteattr(config.site.language)}>
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="../{STYLESHEET}">
</head>
<body>
<p><a href="../index.html">{html.escape(config.site.title)}</a></p>
<article>
<h1>{title}</h1>
<p><small>{html.escape(article.site)}{" · " + date if date else ""}</small></p>
{entry_html(entry)}
</article>
</body>
</html>
"""
    return page.encode("utf-8")


def render_opml(config: Config, topics: list[TopicConfig]) -> bytes:
    base_url = config.site.base_url
    preferred = next(f for f in ("atom", "rss", "json") if f in config.publish.formats)
    outlines = "\n".join(
        f'    <outline type="rss" text={quoteattr(t.title)} title={quoteattr(t.title)} '
        f'description={quoteattr(t.description)} '
        f'xmlUrl={quoteattr(feed_url(base_url, t.slug, preferred))} htmlUrl={quoteattr(base_url + "index.html")}/>'
        for t in topics)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n  <head>\n'
            f'    <title>{html.escape(config.site.title)}</title>\n  </head>\n  <body>\n'
            f"{outlines}\n  </body>\n</opml>\n").encode("utf-8")


# --- writing ---


def write_if_changed(path: Path, data: bytes, force: bool = False) -> bool:
    """Atomically replace path with data unless it already holds exactly that (or `force`)."""
    if not force and _holds(path, data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True


def _holds(path: Path, data: bytes) -> bool:
    """Whether path is a readable file with exactly these bytes; anything else is written over."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:  # missing, unreadable, a folder: the atomic replace below settles it
        return False


def remove_orphan_pages(feeds_dir: Path, outputs: dict[Path, bytes]) -> list[Path]:
    """Delete article pages no feed links to any more (only *.html under feeds/articles/)."""
    keep = {path.relative_to(feeds_dir).as_posix() for path in outputs}
    removed = orphan_pages(feeds_dir, keep)
    for page in removed:
        page.unlink(missing_ok=True)
    return removed


def remove_stale_feeds(feeds_dir: Path, slugs: set[str], formats: tuple[str, ...] | list[str] | None = None
                       ) -> list[Path]:
    """Delete feed files of topics or formats no longer in the config (only files we name)."""
    formats = tuple(EXTENSIONS) if formats is None else tuple(formats)
    wanted = {f"{slug}.{EXTENSIONS[fmt]}" for slug in slugs for fmt in formats}
    removed = []
    if not feeds_dir.is_dir():
        return removed
    for path in sorted(feeds_dir.iterdir()):
        if path.suffix.lstrip(".") in EXTENSIONS.values() and path.name not in wanted and path.is_file():
            path.unlink()
            removed.append(path)
    return removed

