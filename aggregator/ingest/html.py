"""HTML pages -> Article fields.

The only module that imports trafilatura, a maintained extraction library
that finds the main text of a page and drops navigation, ads and "follow
us" boxes, and reads title, author, site, categories and image from
<meta>, Open Graph and JSON-LD. Its dates are day-only, so the publication
time is read here first from the same metadata, with its time and zone.
Everything it returns is sanitized with enrich.sanitize before it leaves
this module. Loaded only for HTML: a local HTML file or a full-text page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import trafilatura
from lxml import html as lxml_html
from lxml.etree import ParserError
from lxml.html import tostring
from trafilatura.htmlprocessing import convert_to_html
from trafilatura.metadata import extract_metadata
from trafilatura.settings import Document

from aggregator.enrich.dates import clamp_date
from aggregator.enrich.html_text import clean_html_to_text, html_to_text
from aggregator.enrich.sanitize import sanitize_html, sanitize_whole_page
from aggregator.enrich.text import clean_text, fold_for_matching
from aggregator.enrich.urls import safe_url

PUBLISHED_META = ("article:published_time", "og:article:published_time", "datePublished",
                  "date", "dc.date", "dc.date.issued", "dcterms.created", "pubdate", "publishdate")
MODIFIED_META = ("article:modified_time", "og:updated_time", "dateModified", "dcterms.modified")
SECTION_META = ("article:section",)
TAG_META = ("article:tag", "news_keywords", "keywords")
NBSP_FORMS = re.compile(r"\u00a0|&nbsp;|&#160;|&#x0*a0;", re.I)
# trafilatura folds every Unicode space into " ", but a published non-breaking space is part
# of the text (9\u00a0to\u00a02); it rides through extraction as this printable letter-like mark.
NBSP_STANDIN = "\U00016FE0"
MIN_TEXT_CHARS = 50  # less than this is a menu or a caption, not an article
LEADING_HEADING = re.compile(r"^\s*<(h[1-3])>(.*?)</\1>", re.S)
LARGE_TEXT_CHARS = 1_000_000  # more text than this is a long document, not an article page (_long_page)
HEAD_END = re.compile(r"</head\s*>|<body[\s>]", re.I)
HEAD_SEARCH_CHARS = 1_000_000  # a head is looked for this far into a long page
NOT_TEXT = re.compile(r"<(script|style|svg)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.I | re.S)


@dataclass
class PageFields:
    """What a page says about itself, already cleaned and sanitized."""

    title: str = ""
    text: str = ""
    content_html: str = ""
    site: str = ""
    url: str | None = None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: datetime | None = None
    updated: datetime | None = None
    image: str | None = None
    description: str = ""


def extract_article_html(html: str, url: str | None, title: str = "") -> tuple[str, str] | None:
    """(plain text, safe HTML) of a page's main article, or None when there is none.

    Used for local HTML files and for `full_text = true` remote sources alike.
    A leading heading that repeats `title` is dropped: the entry shows the title already.
    """
    found = _extract(html, url)
    if found is None:
        return None
    content_html = found.content_html(url)
    if title:
        content_html = _without_title_heading(content_html, title)
    text = clean_html_to_text(content_html)
    return (text, content_html) if len(text) >= MIN_TEXT_CHARS else None


def parse_html_page(html: str, url: str | None = None) -> PageFields | None:
    """Main text and metadata of a saved page; None when it holds no article text."""
    found = _extract(html, url)
    if found is None:
        return None
    document = found.document
    page_url = safe_url(document.url) if document.url else None
    title = clean_text(document.title or "")
    content_html = _without_title_heading(found.content_html(page_url or url), title)
    text = clean_html_to_text(content_html)
    if len(text) < MIN_TEXT_CHARS:
        return None
    tree = _tree(found.metadata_html)
    dates = _metadata_dates(tree) if tree is not None else (None, None)
    return PageFields(
        title=title,
        text=text,
        content_html=content_html,
        site=clean_text(document.sitename or ""),
        url=page_url,
        authors=_authors(document.author),
        categories=_categories(tree, document),
        published=dates[0] or _day(document.date),
        updated=dates[1],
        image=_image(document.image, tree, page_url or url),
        description=clean_text(document.description or ""),
    )


@dataclass
class Extraction:
    """What trafilatura found on a page: its metadata (`document`: title, author, url,
    sitename, date, categories, tags, image, description) and its main content.

    The content is trafilatura's XML body tree for an article-sized page; for a page
    with more than LARGE_TEXT_CHARS of text it is the whole page (`long_html`).
    """

    document: Any
    metadata_html: str  # what our own metadata readers parse: the page, or a long page's head
    body: Any = None
    long_html: str = ""

    def content_html(self, base: str | None) -> str:
        """The main content as safe HTML (once: the body tree is converted in place)."""
        if self.body is None:
            return sanitize_whole_page(_restore_nbsp(self.long_html), base)
        body, self.body = self.body, None
        return _body_html(body, base)


def _extract(html: str, url: str | None) -> Extraction | None:
    """trafilatura's reading of the page; None when it holds no main content (or no tree can be built)."""
    protect = NBSP_STANDIN not in html
    if protect:
        html = NBSP_FORMS.sub(NBSP_STANDIN, html)
    if _much_text(html):
        return _long_page(html, url, protect)
    try:
        document = trafilatura.bare_extraction(
            html, url=url, with_metadata=True, include_comments=False, include_tables=True,
            include_images=False, include_links=True, include_formatting=True, favor_precision=True,
            deduplicate=False,
            output_format="xml",  # the body tree only: "python" also renders a plain text we never read
        )
    except (ValueError, TypeError, RecursionError):  # a page too broken to build a tree from
        return None
    if document is None or document.body is None:
        return None
    if protect:
        _restore_metadata_nbsp(document)
    return Extraction(document, html, body=document.body)


def _long_page(html: str, url: str | None, protect: bool) -> Extraction:
    """A page with much text: metadata from its head, and the whole page as its content.

    trafilatura is for finding an article among a page's boilerplate, and on a
    long text its main extractor and its fallbacks (readability, jusText, each
    parsing the page again) hold many times the page's size (figures in
    docs/decisions/0005). A page this long is the document itself, so it is
    only sanitized, navigation, headers, footers and asides dropped
    (enrich.sanitize.sanitize_whole_page).
    """
    head = _head(html)
    try:
        document = extract_metadata(head, url) if head else Document()
    except (ValueError, TypeError, RecursionError):
        document = Document()
    if protect:
        _restore_metadata_nbsp(document)
    return Extraction(document, head, long_html=html)


def _head(html: str) -> str:
    """The page up to its body (its <head>: title, meta, JSON-LD), closed, or "" when it has none."""
    end = HEAD_END.search(html, 0, HEAD_SEARCH_CHARS)
    return html[:end.start()] + "</head></html>" if end else ""


def _restore_metadata_nbsp(document: Any) -> None:
    for name in ("title", "author", "sitename", "description"):
        if isinstance(getattr(document, name, None), str):
            setattr(document, name, _restore_nbsp(getattr(document, name)))


def _much_text(html: str) -> bool:
    """Whether the page holds more than LARGE_TEXT_CHARS of text outside tags, scripts and styles.

    Such a page is a long document rather than an article among boilerplate
    (_long_page). A page heavy with scripts, styles and inline images (a page
    saved "complete") is not: its article goes through trafilatura as usual.
    """
    if len(html) <= LARGE_TEXT_CHARS:
        return False
    return len(NOT_TEXT.sub("", html)) > LARGE_TEXT_CHARS


def _restore_nbsp(text: str) -> str:
    return text.replace(NBSP_STANDIN, "\u00a0")


def _body_html(body, base: str | None) -> str:
    """trafilatura's XML body -> HTML paragraphs, then our own sanitizer.

    The body is converted in place, not copied: nothing reads it afterwards.
    """
    root = convert_to_html(body)
    inner = root[0]
    parts = [inner.text or ""] + [tostring(child, encoding="unicode") for child in inner]
    return sanitize_html(_restore_nbsp("".join(parts).strip()), base)


def _without_title_heading(content_html: str, title: str) -> str:
    """The page's own <h1> repeats the title; the title is a field, not body text."""
    match = LEADING_HEADING.match(content_html)
    if match and title and fold_for_matching(html_to_text(match.group(2))) == fold_for_matching(title):
        return content_html[match.end():].lstrip()
    return content_html


def _tree(html: str):
    try:
        return lxml_html.fromstring(html)
    except (ParserError, ValueError):
        return None


def _authors(value: str | None) -> list[str]:
    if not value:
        return []
    return _unique(clean_text(a) for a in value.split(";"))


def _categories(tree, document) -> list[str]:
    """Sections first (article:section, JSON-LD articleSection), then tags and keywords."""
    found: list[str] = []
    if tree is not None:
        found += _meta_values(tree, SECTION_META)
        for item in _json_ld(tree):
            found += _as_list(item.get("articleSection"))
        for item in _json_ld(tree):
            keywords = item.get("keywords")
            found += keywords.split(",") if isinstance(keywords, str) else _as_list(keywords)
        for value in _meta_values(tree, TAG_META):
            found += value.split(",")
    for value in list(document.categories or []) + list(document.tags or []):
        found += value.split(",")
    return _unique(clean_text(c) for c in found if isinstance(c, str))


def _image(found: str | None, tree, base: str | None) -> str | None:
    """trafilatura's og:image, else a JSON-LD image (a URL, an ImageObject or a list of them)."""
    candidates = [found] if found else []
    if tree is not None:
        for item in _json_ld(tree):
            for image in _as_list(item.get("image")):
                candidates.append(image.get("url") if isinstance(image, dict) else image)
    for candidate in candidates:
        if isinstance(candidate, str) and (absolute := safe_url(candidate, base)):
            return absolute
    return None


def _metadata_dates(tree) -> tuple[datetime | None, datetime | None]:
    published = modified = None
    for item in _json_ld(tree):
        published = published or _iso(item.get("datePublished"))
        modified = modified or _iso(item.get("dateModified"))
    published = published or _first_iso(_meta_values(tree, PUBLISHED_META))
    modified = modified or _first_iso(_meta_values(tree, MODIFIED_META))
    if published is None:
        published = _first_iso(tree.xpath("//article//time/@datetime | //time[@itemprop='datePublished']/@datetime"))
    return published, (modified if modified and published and modified > published else None)


def _meta_values(tree, names: tuple[str, ...]) -> list[str]:
    wanted = {n.lower() for n in names}
    values = []
    for meta in tree.xpath("//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in wanted and meta.get("content", "").strip():
            values.append(meta.get("content").strip())
    return values


def _json_ld(tree) -> list[dict]:
    """Every JSON-LD object on the page, @graph members included; broken blocks ignored."""
    items: list[dict] = []
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        for node in stack:
            if isinstance(node, dict):
                items.append(node)
                items += [g for g in _as_list(node.get("@graph")) if isinstance(g, dict)]
    return items


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first_iso(values: list[str]) -> datetime | None:
    for value in values:
        if parsed := _iso(value):
            return parsed
    return None


def _iso(value) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return clamp_date(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return clamp_date(datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=timezone.utc))
    except ValueError:
        return None


def _unique(items) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        if item and isinstance(item, str):
            seen.setdefault(item.lower(), item)
    return list(seen.values())
