"""Entries -> the index page, pages for local articles, and the OPML list of topics.

No inline style, script or event handler anywhere: every text is escaped
and the one stylesheet is a file of its own, so nothing a source wrote can
run in a reader's browser, and a site may serve feeds/ under a strict
Content-Security-Policy.
"""

from __future__ import annotations

import html
from pathlib import Path
from xml.sax.saxutils import quoteattr

from aggregator.config import Config, TopicConfig
from aggregator.enrich.urls import safe_url
from aggregator.publish.entries import Entry, LeftOut, entry_html
from aggregator.publish.names import MIME_TYPES, article_link, entry_id, feed_url, page_name
from aggregator.storage.store import Store

STYLESHEET = "style.css"
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
<p>Subscribe to every topic at once with <a href="topics.opml">topics.opml</a>.
How the sources are doing: <a href="status.html">status</a>.</p>
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
