"""OPML in and out: subscribe lists from other feed readers, folders included.

Import adds each feed of an OPML file to config.toml as a [[sources]]
entry (app/config_edit.py keeps the file's comments and layout and checks
the result before replacing it). A feed reader's folders are how its user
sorted feeds by subject, which is what our topics are: each folder becomes
a topic (an existing one when the title or name matches) and the feeds in
it get that topic. Export writes the remote sources back as OPML 2.0, one
folder per topic, so an export imported elsewhere, or here, keeps them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree

import tomlkit
from defusedxml import ElementTree as SafeTree
from defusedxml.common import DefusedXmlException

from aggregator.app.config_edit import EditError, load_document, save_document, sources_of, unique_name, url_key
from aggregator.config import Config, SourceConfig
from aggregator.config.checks import WEB_URL_RE
from aggregator.redact import redact

MAX_OPML_SIZE = 5 * 1024 * 1024


class OpmlError(EditError):
    """The OPML file cannot be used; str() names it and says why."""


@dataclass(frozen=True)
class OpmlFeed:
    title: str
    url: str
    category: str = ""  # the title of the folder it sits in, "" at the top level
    html_url: str = ""  # the site's own page, as feed readers show it


def read_opml(path: Path) -> list[OpmlFeed]:
    """Every outline with an xmlUrl, in document order; parsed with defusedxml (no entities)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OpmlError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_OPML_SIZE:
        raise OpmlError(f"{path}: larger than {MAX_OPML_SIZE // 1024 // 1024} MB; not an OPML subscription list?")
    try:
        root = SafeTree.fromstring(data)
    except DefusedXmlException:
        raise OpmlError(f"{path}: declares XML entities or a DTD, which we refuse for safety") from None
    except ElementTree.ParseError as exc:
        raise OpmlError(f"{path}: not valid XML ({exc}); export it again from your feed reader") from None
    if root.tag != "opml" or root.find("body") is None:
        raise OpmlError(f"{path}: not OPML (no <opml><body>); export it again from your feed reader")
    feeds: list[OpmlFeed] = []
    _walk(root.find("body"), "", feeds)
    return feeds


def _walk(node: ElementTree.Element, category: str, feeds: list[OpmlFeed]) -> None:
    for outline in node.findall("outline"):
        title = (outline.get("title") or outline.get("text") or "").strip()
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            html_url = (outline.get("htmlUrl") or outline.get("htmlurl") or "").strip()
            feeds.append(OpmlFeed(title or url, url, category, html_url))
        _walk(outline, title if not url else category, feeds)


@dataclass
class ImportReport:
    added: list[OpmlFeed]
    present: list[OpmlFeed]  # already configured (same URL)
    refused: list[tuple[OpmlFeed, str]]  # unusable entries and why


def import_opml(config_file: Path, opml_file: Path) -> ImportReport:
    """Add the OPML's feeds to config_file as [[sources]], their folders as topics."""
    feeds = read_opml(opml_file)
    document = load_document(config_file)
    sources = sources_of(document)
    names = {str(s.get("name")) for s in sources}
    configured = {url_key(str(s["url"])) for s in sources if "url" in s}
    added: dict[str, tomlkit.items.Table] = {}  # url key -> the new source, to give it each folder's topic
    report = ImportReport([], [], [])
    for feed in feeds:
        key = url_key(feed.url)
        if not feed.url.lower().startswith(("http://", "https://")):
            report.refused.append((feed, "only http:// and https:// feeds can be fetched"))
        elif key in configured:
            report.present.append(feed)
        elif key in added:  # the same feed in a second folder: one source, one more topic
            _add_topic(document, added[key], feed.category)
        else:
            table = tomlkit.table()
            table.add("name", unique_name(feed.title, names))
            table.add("url", feed.url)
            if WEB_URL_RE.fullmatch(feed.html_url):  # else left out: the config would refuse it
                table.add("home_page", feed.html_url)
            sources.append(table)
            added[key] = sources[-1]
            _add_topic(document, added[key], feed.category)
            report.added.append(feed)
    if report.added:
        save_document(config_file, document, f"importing {opml_file.name}")
    return report


def _add_topic(document: tomlkit.TOMLDocument, source: tomlkit.items.Table, folder: str) -> None:
    if not folder:
        return
    slug = _topic_for_folder(document, folder)
    topics = source.get("topics")
    if topics is None:
        source.add("topics", [slug])
    elif slug not in topics:
        topics.append(slug)


def _topic_for_folder(document: tomlkit.TOMLDocument, folder: str) -> str:
    """The topic a folder stands for: one whose title or name matches, else a new [topics.<slug>]."""
    topics = document.get("topics")
    if topics is None:
        topics = tomlkit.table(is_super_table=True)
        document.append("topics", topics)
    for slug, table in topics.items():
        if slug == slugify(folder) or str(table.get("title", "")).casefold() == folder.casefold():
            return slug
    slug = slugify(folder)
    table = tomlkit.table()
    table.add("title", folder)
    topics.append(slug, table)
    return slug


def slugify(title: str) -> str:
    """A folder title as a topic name (a file name too): lowercase ASCII letters, digits and '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:64].strip("-")
    return slug if slug and slug not in ("index", "topics", "articles", "healthz", "all") else f"folder-{slug or 'x'}"


def export_opml(config: Config, now: datetime | None = None) -> str:
    """OPML 2.0 of the configured remote sources, in one folder per topic (local folders have no URL)."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = f"{config.site.title}: sources"
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(timezone.utc))
    body = ElementTree.SubElement(root, "body")
    remote = [s for s in config.sources if s.url]
    for topic in config.topics:
        members = [s for s in remote if topic.slug in s.topics]
        if members:
            folder = ElementTree.SubElement(body, "outline", text=topic.title, title=topic.title)
            for source in members:
                _outline(folder, source)
    for source in remote:
        if not source.topics:
            _outline(body, source)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def _outline(parent: ElementTree.Element, source: SourceConfig) -> None:
    extra = {"htmlUrl": source.home_page} if source.home_page else {}
    ElementTree.SubElement(parent, "outline", type="rss", text=source.name, title=source.name,
                           xmlUrl=redact(source.url), **extra)
