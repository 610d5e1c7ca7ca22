"""Entries -> Atom and RSS 2.0 bytes, written by feedgen.

feedgen 1.0.0 drops every attribute but href on entry <link> elements in
Atom (python-feedgen issue #135), and writes an Atom <source> without the
id RFC 4287 asks for, so `EntryExtras` below, a feedgen entry extension,
removes the links and source feedgen wrote and writes them itself.

An entry shown by several feeds of one format (every entry of the "all"
feed is in a topic's feed too) is set up in feedgen once per publish
(`XmlEntries`), and its element built once and copied into each further
feed: the feeds come out as if each had built it.

The only module that imports feedgen (and lxml): render.py loads it, and
render.py is loaded only when something changed, so an unchanged refresh
never pays for either.
"""

from __future__ import annotations

import copy
import html

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import __version__
from aggregator.config import Config, TopicConfig
from aggregator.models import RelatedLink
from aggregator.publish.entries import Entry, Origin, entry_dates, feed_updated, media_type
from aggregator.publish.names import MIME_TYPES, feed_url


def render_xml(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry],
               made: "XmlEntries | None" = None) -> bytes:
    """The topic's Atom ("atom") or RSS 2.0 ("rss") feed; `made` shares entries between the feeds of a publish."""
    generator = _generator(config, topic, entries, fmt, made or XmlEntries())
    if fmt == "atom":
        return generator.atom_str(pretty=True, encoding="UTF-8")
    return generator.rss_str(pretty=True, encoding="UTF-8")


class XmlEntries:
    """One publish's feedgen entries, each set up once per format and added to every feed that shows it.

    `shared` names the articles shown by more than one feed: their elements are
    kept and copied. A kept element stays outside every feed, because lxml moves
    an element into the tree it is appended to. An entry that raises while it is
    set up or built is not kept, so each feed that shows it raises the same way.
    """

    def __init__(self, shared: frozenset[str] = frozenset()):
        self.shared = shared
        self._made: dict[tuple[str, str], FeedEntry] = {}

    def add(self, generator: FeedGenerator, fmt: str, entry: Entry) -> None:
        key = (fmt, entry.article.id)
        kept = self._made.get(key)
        if kept is not None:
            generator.add_entry(kept, order="append")  # its extensions are registered already
            return
        item = generator.add_entry(_KeptEntry(entry.article.id in self.shared), order="append")
        _fill_entry(item, entry, fmt)
        self._made[key] = item


class _KeptEntry(FeedEntry):
    """A feedgen entry whose built element, when `keep`, is kept and copied for the next feed."""

    def __init__(self, keep: bool = False) -> None:
        super().__init__()
        self._keep = keep
        self._elements: dict[tuple[str, bool], etree._Element] = {}

    def atom_entry(self, extensions: bool = True) -> etree._Element:
        kept = self._elements.get(("atom", extensions))
        return copy.deepcopy(kept) if kept is not None else self._keeping("atom", extensions,
                                                                          super().atom_entry(extensions))

    def rss_entry(self, extensions: bool = True) -> etree._Element:
        kept = self._elements.get(("rss", extensions))
        return copy.deepcopy(kept) if kept is not None else self._keeping("rss", extensions,
                                                                          super().rss_entry(extensions))

    def _keeping(self, fmt: str, extensions: bool, element: etree._Element) -> etree._Element:
        if self._keep:
            self._elements[(fmt, extensions)] = copy.deepcopy(element)
        return element


class _FeedExtras(BaseExtension):
    """Feed-level half of the extension pair feedgen requires; adds nothing."""

    def extend_ns(self) -> dict[str, str]:
        return {}


class _HubLink(BaseExtension):
    """`<link rel="hub">` (WebSub) in Atom, and as atom:link in RSS, where feedgen writes only rel="self"."""

    ATOM = "http://www.w3.org/2005/Atom"

    def __init__(self) -> None:
        self.url = ""

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        if self.url:
            etree.SubElement(feed, "link", rel="hub", href=self.url)
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        if self.url:
            etree.SubElement(feed.find("channel"), f"{{{self.ATOM}}}link", rel="hub", href=self.url)
        return feed


XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class EntryExtras(BaseEntryExtension):
    """Writes an Atom entry's links (alternate, related, enclosure) and its <source> element."""

    def __init__(self) -> None:
        self.alternate: str = ""
        self.related: list[RelatedLink] = []
        self.enclosure: str | None = None
        self.origin: Origin | None = None
        self.language: str = ""

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        # feedgen builds un-namespaced elements under a default-namespace root.
        for old in [*entry.findall("link"), *entry.findall("source")]:
            entry.remove(old)
        anchor = entry.find("title")
        position = entry.index(anchor) + 1 if anchor is not None else len(entry)
        for offset, attributes in enumerate(self._links()):
            entry.insert(position + offset, etree.Element("link", attrib=attributes))
        if self.origin is not None:
            entry.append(_atom_source(self.origin))
        if self.language:
            entry.set(XML_LANG, self.language)
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


def _generator(config: Config, topic: TopicConfig, entries: list[Entry], fmt: str,
               made: XmlEntries) -> FeedGenerator:
    base_url = config.site.base_url
    generator = FeedGenerator()
    generator.register_extension("extras", _FeedExtras, EntryExtras, atom=True, rss=False)
    if fmt == "rss":
        generator.load_extension("dc", atom=False, rss=True)
    if config.publish.websub_hub:
        generator.register_extension("hub", _HubLink, atom=True, rss=True)
        generator.hub.url = config.publish.websub_hub
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
        made.add(generator, fmt, entry)
    return generator


def _fill_entry(item: FeedEntry, entry: Entry, fmt: str) -> None:
    article = entry.article
    published, updated = entry_dates(entry)
    item.guid(entry.entry_id, permalink=False)
    item.title(article.title)
    if fmt == "rss":  # an Atom entry's links are EntryExtras' to write, so feedgen is given none
        item.link(href=entry.link, rel="alternate")
    item.extras.alternate = entry.link
    item.extras.related = entry.related
    item.extras.enclosure = entry.image
    item.extras.origin = entry.origin
    item.extras.language = article.language
    item.published(published)
    item.updated(updated)
    author = article.site or article.source
    item.author(name=author)
    if fmt == "rss":
        item.dc.dc_creator(author)  # RSS <author> must be an e-mail address; dc:creator takes a name
        if article.language:
            item.dc.dc_language(article.language)
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
