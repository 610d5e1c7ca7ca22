"""RSS 2.0 checks after the RSS Advisory Board specification (rssboard.org/rss-specification)."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from lxml import etree

from .atom import parse_xml

ATOM = "{http://www.w3.org/2005/Atom}"
DAY = r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?"
RFC822 = re.compile(DAY + r"\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?:\d{2}|\d{4}) "
                    r"\d\d:\d\d(?::\d\d)? (?:UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|[A-IK-Z]|[+-]\d{4})$")
SINGLE_CHANNEL = ("title", "link", "description", "language", "pubDate", "lastBuildDate", "ttl",
                  "image", "generator", "docs")
SINGLE_ITEM = ("title", "link", "description", "guid", "pubDate", "source", "comments")


def is_http_url(value: str | None) -> bool:
    parts = urlsplit(value or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def rss_errors(data: bytes) -> list[str]:
    """Every broken RSS 2.0 rule in `data` (a missing atom:link rel=self counts); empty when valid."""
    try:
        root = parse_xml(data)
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
    errors: list[str] = []
    if root.tag != "rss" or root.get("version") != "2.0":
        errors.append(f"root is <{root.tag} version={root.get('version')!r}>, expected <rss version='2.0'>")
    channels = root.findall("channel")
    if len(channels) != 1:
        return errors + [f"expected one <channel>, found {len(channels)}"]
    return errors + _channel_errors(channels[0])


def _channel_errors(channel: etree._Element) -> list[str]:
    errors = [f"channel: missing or empty <{tag}>" for tag in ("title", "link", "description")
              if not (channel.findtext(tag) or "").strip()]
    errors += [f"channel: {len(channel.findall(tag))} <{tag}> elements" for tag in SINGLE_CHANNEL
               if len(channel.findall(tag)) > 1]
    if channel.find("link") is not None and not is_http_url(channel.findtext("link")):
        errors.append(f"channel: <link> {channel.findtext('link')!r} is not an http(s) URL")
    errors += _date_errors("channel", channel, ("pubDate", "lastBuildDate"))
    selves = [link for link in channel.findall(ATOM + "link") if link.get("rel") == "self"]
    if len(selves) != 1:
        errors.append(f'channel: expected one <atom:link rel="self">, found {len(selves)}')
    for link in selves:
        if not is_http_url(link.get("href")) or link.get("type") != "application/rss+xml":
            errors.append(f"channel: atom:link self {link.get('href')!r} type {link.get('type')!r}")
    guids: dict[str, int] = {}
    for number, item in enumerate(channel.findall("item"), 1):
        errors += _item_errors(f"item #{number}", item, guids, number)
    return errors


def _item_errors(where: str, item: etree._Element, guids: dict[str, int], number: int) -> list[str]:
    errors = []
    if item.find("title") is None and item.find("description") is None:
        errors.append(f"{where}: needs <title> or <description>")
    errors += [f"{where}: {len(item.findall(tag))} <{tag}> elements" for tag in SINGLE_ITEM
               if len(item.findall(tag)) > 1]
    if item.find("link") is not None and not is_http_url(item.findtext("link")):
        errors.append(f"{where}: <link> is not an http(s) URL")
    errors += _date_errors(where, item, ("pubDate",))
    author = item.findtext("author")
    if author is not None and "@" not in author:
        errors.append(f"{where}: <author> must be an e-mail address, got {author!r}")
    guid = item.find("guid")
    if guid is not None:
        value, permalink = (guid.text or "").strip(), guid.get("isPermaLink", "true")
        if permalink not in ("true", "false"):
            errors.append(f"{where}: guid isPermaLink={permalink!r}")
        if not value:
            errors.append(f"{where}: empty <guid>")
        elif permalink == "true" and not is_http_url(value):
            errors.append(f"{where}: guid {value!r} is a permalink (the default) but not an http(s) URL")
        if value in guids:
            errors.append(f"{where}: duplicate guid {value!r} (also item #{guids[value]})")
        guids.setdefault(value, number)
    source = item.find("source")
    if source is not None and not is_http_url(source.get("url")):
        errors.append(f"{where}: <source> needs an http(s) url attribute")
    for enclosure in item.findall("enclosure"):
        missing = [a for a in ("url", "length", "type") if enclosure.get(a) is None]
        if missing:
            errors.append(f"{where}: <enclosure> missing {missing}")
        elif not enclosure.get("length").isdigit() or not is_http_url(enclosure.get("url")):
            errors.append(f"{where}: <enclosure> length must be an integer and url http(s)")
    for category in item.findall("category"):
        if not (category.text or "").strip():
            errors.append(f"{where}: empty <category>")
    return errors


def _date_errors(where: str, element: etree._Element, tags: tuple[str, ...]) -> list[str]:
    errors = []
    for tag in tags:
        for date in element.findall(tag):
            value = (date.text or "").strip()
            if not RFC822.match(value):
                errors.append(f"{where}: <{tag}> {value!r} is not an RFC 822 date")
                continue
            try:
                parsedate_to_datetime(value)
            except (TypeError, ValueError) as error:
                errors.append(f"{where}: <{tag}> {value!r} does not parse: {error}")
    return errors
