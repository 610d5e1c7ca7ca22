"""OPML in and out: subscribe lists from other feed readers.

Import adds each feed of an OPML file to config.toml as a [[sources]]
entry, edited with tomlkit so the file's comments and layout survive. The
new text is validated as a whole config before it replaces the old file
(atomically), so a bad import never leaves a broken config behind.
Export prints the configured remote sources as OPML 2.0.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree

from aggregator.config import Config, ConfigError, parse_config
from aggregator.redact import redact

MAX_OPML_SIZE = 5 * 1024 * 1024


class OpmlError(ValueError):
    """The OPML file cannot be used; str() names it and says why."""


@dataclass(frozen=True)
class OpmlFeed:
    title: str
    url: str
    category: str = ""


def read_opml(path: Path) -> list[OpmlFeed]:
    """Every outline with an xmlUrl, in document order; parsed with defusedxml (no entities)."""
    from defusedxml import ElementTree as SafeTree
    from defusedxml.common import DefusedXmlException

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
            feeds.append(OpmlFeed(title or url, url, category))
        _walk(outline, title if not url else category, feeds)


@dataclass
class ImportReport:
    added: list[OpmlFeed]
    present: list[OpmlFeed]  # already configured (same URL)
    refused: list[tuple[OpmlFeed, str]]  # unusable entries and why


def import_opml(config_file: Path, opml_file: Path) -> ImportReport:
    """Add the OPML's feeds to config_file as [[sources]], keeping its comments and layout."""
    import tomlkit

    feeds = read_opml(opml_file)
    text = config_file.read_text(encoding="utf-8-sig")
    document = tomlkit.parse(text)
    existing = document.get("sources")
    if existing is None:
        existing = tomlkit.aot()
        document.append("sources", existing)
    names = {str(s.get("name")) for s in existing}
    urls = {_url_key(str(s["url"])) for s in existing if "url" in s}
    report = ImportReport([], [], [])
    for feed in feeds:
        if not feed.url.lower().startswith(("http://", "https://")):
            report.refused.append((feed, "only http:// and https:// feeds can be fetched"))
        elif _url_key(feed.url) in urls:
            report.present.append(feed)
        else:
            table = tomlkit.table()
            table.add("name", _unique_name(feed.title, names))
            table.add("url", feed.url)
            existing.append(table)
            urls.add(_url_key(feed.url))
            report.added.append(feed)
    if report.added:
        new_text = tomlkit.dumps(document)
        _validate(new_text, config_file)
        _write_atomically(config_file, new_text)
    return report


def _url_key(url: str) -> str:
    """Same feed, written differently: scheme and host are case-insensitive, a trailing slash is noise."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}"


def _unique_name(title: str, names: set[str]) -> str:
    base = " ".join(title.split())[:80] or "feed"
    name, n = base, 2
    while name in names:
        name, n = f"{base} ({n})", n + 1
    names.add(name)
    return name


def _validate(text: str, config_file: Path) -> None:
    import tomllib

    try:
        parse_config(tomllib.loads(text), config_file)
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise OpmlError(f"{config_file}: the import would make the config invalid, so nothing was "
                        f"changed: {exc}") from None


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_opml(config: Config, now: datetime | None = None) -> str:
    """OPML 2.0 of the configured remote sources (local folders have no URL to subscribe to)."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = f"{config.site.title}: sources"
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(timezone.utc))
    body = ElementTree.SubElement(root, "body")
    for source in config.sources:
        if source.url:
            ElementTree.SubElement(body, "outline", type="rss", text=source.name, title=source.name,
                                   xmlUrl=redact(source.url))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
