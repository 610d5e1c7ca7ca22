"""Stored articles -> feeds/: Atom, RSS and JSON Feed per topic, plus an index.

The only module that imports feedgen and the only one that writes under
feeds/. Files are written atomically and only when their bytes change, so
an unchanged feed keeps its mtime and ETag and HTTP caching keeps working.

feedgen 1.0.0 drops every attribute but href on entry <link> elements in
Atom (python-feedgen issue #135), so `EntryLinks` below, a feedgen entry
extension, removes the links feedgen wrote and writes them itself.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import quoteattr

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from . import __version__
from .config import Config, TopicConfig
from .models import Article, RelatedLink
from .normalize import safe_url
from .related import related_posts
from .store import Store

ID_NAMESPACE = uuid.UUID("5b0c6b3e-43a4-4c43-9d8e-6f1d2e3a9b71")
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)
ALL_TOPIC = TopicConfig(slug="all", title="All articles", description="Every article, newest first")
EXTENSIONS = {"atom": "atom", "rss": "rss", "json": "json"}


@dataclass
class PublishReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        return (f"published: {len(self.written)} written, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed")


@dataclass
class Entry:
    """One article as it appears in feeds: its public id and link fixed."""

    article: Article
    entry_id: str
    link: str
    related: list[RelatedLink]


def entry_id(article_id: str) -> str:
    """Globally unique and stable across topics and base URL changes (newsboat keys on it)."""
    return f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, article_id)}"


def article_link(base_url: str, article_id: str, url: str | None) -> str:
    """The article's own URL, or the page we publish for a local article."""
    return safe_url(url) or f"{base_url}articles/{article_id}.html"


def feed_path(feeds_dir: Path, slug: str, fmt: str) -> Path:
    return feeds_dir / f"{slug}.{EXTENSIONS[fmt]}"


def feed_url(base_url: str, slug: str, fmt: str) -> str:
    return f"{base_url}{slug}.{EXTENSIONS[fmt]}"


# --- the whole publish step ---


def publish(config: Config, store: Store) -> PublishReport:
    """Write every topic's feeds, the index and OPML; remove feeds of deleted topics."""
    report = PublishReport()
    feeds_dir = config.storage.feeds_dir
    base_url = config.site.base_url
    topics = [*config.topics, ALL_TOPIC]
    related_cache: dict[str, list[RelatedLink]] = {}
    outputs: dict[Path, bytes] = {}
    latest: dict[str, list[Entry]] = {}
    for topic in topics:
        articles = store.articles(topic=None if topic is ALL_TOPIC else topic.slug,
                                  limit=config.publish.max_items)
        entries = [_entry(store, config, a, related_cache) for a in articles]
        latest[topic.slug] = entries
        for fmt in config.publish.formats:
            outputs[feed_path(feeds_dir, topic.slug, fmt)] = render(fmt, config, topic, entries)
    pages = {e.article.id: e for entries in latest.values() for e in entries if not safe_url(e.article.url)}
    for article_id, entry in pages.items():
        outputs[feeds_dir / "articles" / f"{article_id}.html"] = render_article_page(config, entry)
    outputs[feeds_dir / "index.html"] = render_index(config, topics, latest)
    outputs[feeds_dir / "topics.opml"] = render_opml(config, topics)
    for path, data in outputs.items():
        (report.written if write_if_changed(path, data) else report.unchanged).append(path)
    report.removed = remove_stale_feeds(feeds_dir, {t.slug for t in topics})
    return report


def _entry(store: Store, config: Config, article: Article, cache: dict[str, list[RelatedLink]]) -> Entry:
    if article.id not in cache:
        cache[article.id] = related_posts(store, article, config.publish.related_posts)
    base_url = config.site.base_url
    related = [RelatedLink(r.id, r.title, article_link(base_url, r.id, r.url), r.site, r.published)
               for r in cache[article.id]]
    return Entry(article, entry_id(article.id), article_link(base_url, article.id, article.url), related)


def render(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry]) -> bytes:
    if fmt == "json":
        return render_json(config, topic, entries)
    generator = _generator(config, topic, entries, fmt)
    if fmt == "atom":
        return generator.atom_str(pretty=True, encoding="UTF-8")
    return generator.rss_str(pretty=True, encoding="UTF-8")


# --- Atom and RSS through feedgen ---


class _FeedLinks(BaseExtension):
    """Feed-level half of the extension pair feedgen requires; adds nothing."""

    def extend_ns(self) -> dict[str, str]:
        return {}


class EntryLinks(BaseEntryExtension):
    """Writes an Atom entry's alternate and related links with all their attributes."""

    def __init__(self) -> None:
        self.alternate: str = ""
        self.related: list[RelatedLink] = []

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        # feedgen builds un-namespaced elements under a default-namespace root.
        for old in entry.findall("link"):
            entry.remove(old)
        anchor = entry.find("title")
        position = list(entry).index(anchor) + 1 if anchor is not None else len(entry)
        links = [{"rel": "alternate", "type": "text/html", "href": self.alternate}]
        links += [{"rel": "related", "type": "text/html", "href": r.url, "title": r.title}
                  for r in self.related]
        for offset, attributes in enumerate(links):
            element = etree.Element("link", attrib=attributes)
            entry.insert(position + offset, element)
        return entry

    def extend_rss(self, item: etree._Element) -> etree._Element:
        return item


def _generator(config: Config, topic: TopicConfig, entries: list[Entry], fmt: str) -> FeedGenerator:
    base_url = config.site.base_url
    generator = FeedGenerator()
    generator.register_extension("aggregator_links", _FeedLinks, EntryLinks, atom=True, rss=False)
    generator.id(feed_url(base_url, topic.slug, "atom"))
    generator.title(f"{config.site.title}: {topic.title}")
    generator.subtitle(topic.description or f"{topic.title} from {config.site.title}")
    mime = "application/atom+xml" if fmt == "atom" else "application/rss+xml"
    generator.link(href=feed_url(base_url, topic.slug, fmt), rel="self", type=mime)
    # feedgen takes the RSS <link> from the last link given: the home page.
    generator.link(href=f"{base_url}index.html", rel="alternate", type="text/html")
    generator.author(name=config.site.title)
    generator.language(config.site.language)
    generator.generator("aggregator", version=__version__)
    newest = max((e.article.updated or e.article.published or EMPTY_FEED_DATE for e in entries),
                 default=EMPTY_FEED_DATE)
    generator.updated(newest)
    generator.lastBuildDate(newest)
    generator.pubDate(newest)
    for entry in entries:
        _add_entry(generator, config, topic, entry)
    return generator


def _add_entry(generator: FeedGenerator, config: Config, topic: TopicConfig, entry: Entry) -> None:
    article = entry.article
    published = article.published or EMPTY_FEED_DATE
    item = generator.add_entry(order="append")
    item.guid(entry.entry_id, permalink=False)
    item.title(article.title)
    item.link(href=entry.link, rel="alternate")
    item.aggregator_links.alternate = entry.link
    item.aggregator_links.related = entry.related
    item.published(published)
    item.updated(max(article.updated or published, published))
    item.author(name=article.site or article.source)
    terms = _categories(article)
    if terms:
        item.category([{"term": t} for t in terms])
    if article.summary:
        item.summary(article.summary)
    item.content(entry_html(entry, config.publish.full_content), type="html")
    if article.site:
        item.source(url=entry.link, title=article.site)


def _categories(article: Article) -> list[str]:
    seen: dict[str, str] = {}
    for term in [*article.topics, *article.categories]:
        seen.setdefault(term.lower(), term)
    return list(seen.values())


def entry_html(entry: Entry, full_content: bool = True) -> str:
    """The entry's body: sanitized content (or summary) plus the related-posts list."""
    article = entry.article
    body = article.content_html if full_content and article.content_html else (
        f"<p>{html.escape(article.summary)}</p>" if article.summary else "")
    return body + related_html(entry.related)


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
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{config.site.title}: {topic.title}",
        "home_page_url": f"{base_url}index.html",
        "feed_url": feed_url(base_url, topic.slug, "json"),
        "description": topic.description or f"{topic.title} from {config.site.title}",
        "language": config.site.language,
        "authors": [{"name": config.site.title}],
        "items": [_json_item(e, config.publish.full_content) for e in entries],
    }
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_item(entry: Entry, full_content: bool) -> dict:
    article = entry.article
    published = article.published or EMPTY_FEED_DATE
    item = {
        "id": entry.entry_id,
        "url": entry.link,
        "title": article.title,
        "content_html": entry_html(entry, full_content),
        "summary": article.summary,
        "date_published": published.isoformat(),
        "date_modified": max(article.updated or published, published).isoformat(),
        "authors": [{"name": article.site or article.source}],
        "tags": _categories(article),
        "_related": [{"id": entry_id(r.id), "title": r.title, "url": r.url} for r in entry.related],
    }
    if article.image and safe_url(article.image):
        item["image"] = article.image
    return item


# --- the index page, article pages and OPML ---


def render_index(config: Config, topics: list[TopicConfig], latest: dict[str, list[Entry]]) -> bytes:
    base_url = config.site.base_url
    title = html.escape(config.site.title)
    mimes = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
    head_links, sections = [], []
    for topic in topics:
        links = []
        for fmt in config.publish.formats:
            url = feed_url(base_url, topic.slug, fmt)
            head_links.append(f'<link rel="alternate" type="{mimes[fmt]}" '
                              f'title={quoteattr(f"{topic.title} ({fmt.upper()})")} href={quoteattr(url)}>')
            links.append(f'<a href={quoteattr(url)}>{fmt.upper()}</a>')
        headlines = "".join(
            f'<li><a href={quoteattr(e.link)}>{html.escape(e.article.title)}</a> '
            f'<small>{html.escape(e.article.site)}</small></li>' for e in latest.get(topic.slug, [])[:5])
        sections.append(
            f'<section><h2>{html.escape(topic.title)}</h2>'
            f'<p>{html.escape(topic.description)}</p>' * bool(topic.description)
            + f'<p class="subscribe">Subscribe: {" · ".join(links)}</p>'
            + (f"<ul>{headlines}</ul>" if headlines else "<p>No articles yet.</p>") + "</section>")
    page = f"""<!DOCTYPE html>
<html lang="{html.escape(config.site.language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{chr(10).join(head_links)}
<link rel="alternate" type="text/x-opml" title="All topics (OPML)" href="{base_url}topics.opml">
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.8rem; }} h2 {{ margin-top: 2rem; border-bottom: 1px solid #ddd; }}
.subscribe a {{ margin-right: .3rem; }} small {{ color: #666; }} li {{ margin: .3rem 0; }}
</style>
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


def render_article_page(config: Config, entry: Entry) -> bytes:
    """A page for a local article that has no URL of its own, so feed links lead somewhere."""
    article = entry.article
    title = html.escape(article.title)
    date = article.published.date().isoformat() if article.published else ""
    page = f"""<!DOCTYPE html>
<html lang="{html.escape(config.site.language)}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font: 17px/1.6 Georgia, serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }}</style>
</head>
<body>
<p><a href="../index.html">{html.escape(config.site.title)}</a></p>
<h1>{title}</h1>
<p><small>{html.escape(article.site)}{" · " + date if date else ""}</small></p>
{entry_html(entry)}
</body>
</html>
"""
    return page.encode("utf-8")


def render_opml(config: Config, topics: list[TopicConfig]) -> bytes:
    base_url = config.site.base_url
    preferred = next(f for f in ("atom", "rss", "json") if f in config.publish.formats)
    outlines = "\n".join(
        f'    <outline type="rss" text={quoteattr(t.title)} title={quoteattr(t.title)} '
        f'xmlUrl={quoteattr(feed_url(base_url, t.slug, preferred))} htmlUrl={quoteattr(base_url + "index.html")}/>'
        for t in topics)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n  <head>\n'
            f'    <title>{html.escape(config.site.title)}</title>\n  </head>\n  <body>\n'
            f"{outlines}\n  </body>\n</opml>\n").encode("utf-8")


# --- writing ---


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically replace path with data unless it already holds exactly that."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
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


def remove_stale_feeds(feeds_dir: Path, slugs: set[str]) -> list[Path]:
    """Delete feed files of topics no longer in the config (only files we name)."""
    removed = []
    if not feeds_dir.is_dir():
        return removed
    for path in feeds_dir.iterdir():
        if path.suffix.lstrip(".") in EXTENSIONS.values() and path.stem not in slugs and path.is_file():
            path.unlink()
            removed.append(path)
    return removed
