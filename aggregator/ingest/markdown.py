"""Markdown with YAML (---) or TOML (+++) front matter -> article fields.

The only module that imports `markdown` and `yaml`, so it is loaded only
for Markdown files (front_matter.py tells them apart). Front matter gives
title, date, tags (which become categories), url, author, site, image and
summary; the body is rendered with Python-Markdown and then sanitized like
every other HTML we publish. Without front matter the first `# heading`
is the title.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator

import markdown
import yaml

from aggregator.enrich.dates import clamp_date
from aggregator.enrich.html_text import clean_html_to_text
from aggregator.enrich.sanitize import sanitize_html
from aggregator.enrich.text import clean_text
from aggregator.enrich.urls import safe_url
from aggregator.ingest.front_matter import TOML_FENCE, YAML_FENCE
from aggregator.ingest.plaintext import NotAnArticle

ATX_TITLE = re.compile(r"\A\s*#\s+(.+?)\s*#*\s*(?:\n|\Z)")
LONG_BODY_CHARS = 1_000_000  # a longer body is rendered in parts (_render)
PART_CHARS = 256 * 1024
PART_BREAK = re.compile(r"\n[ \t]*\n(?=[^\s\-*+>|:\[\d~`<])")  # a blank line, then a plain paragraph
FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})", re.M)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]^][^\]]*\]:[ \t]*\S.*$", re.M)


@dataclass
class MarkdownArticle:
    title: str
    text: str
    content_html: str
    url: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    site: str = ""
    image: str | None = None
    summary: str = ""
    warnings: list[str] = field(default_factory=list)  # what was read in spite of a problem, one line each


def parse_markdown(text: str) -> MarkdownArticle:
    """Split front matter from body and render it, or raise NotAnArticle saying why."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    meta, body = _front_matter(text)
    title = clean_text(_str(meta.get("title")))
    if not title and (heading := ATX_TITLE.match(body)):
        title, body = clean_text(heading.group(1)), body[heading.end():]
    url = safe_url(_str(meta.get("url") or meta.get("link")))
    content_html = sanitize_html(_render(body), url)
    text_body = clean_html_to_text(content_html)
    if not title:
        raise NotAnArticle("Markdown without a title (add `title:` to the front matter or a `# heading`)")
    if not text_body:
        raise NotAnArticle("Markdown with a title but no body text")
    warnings: list[str] = []
    return MarkdownArticle(
        title=title,
        text=text_body,
        content_html=content_html,
        url=url,
        published=_checked_date(meta, ("date", "published"), warnings),
        updated=_checked_date(meta, ("updated", "lastmod"), warnings),
        authors=_names(meta.get("authors") or meta.get("author")),
        categories=_names(_list(meta.get("categories")) + _list(meta.get("tags"))),
        site=clean_text(_str(meta.get("site"))),
        image=safe_url(_str(meta.get("image")), url),
        summary=clean_text(_str(meta.get("summary") or meta.get("description"))),
        warnings=warnings,
    )


def _checked_date(meta: dict[str, Any], keys: tuple[str, ...], warnings: list[str]) -> datetime | None:
    """The first key's date; one that is set but no date we can read is said, not raised."""
    key = next((k for k in keys if meta.get(k)), None)
    if key is None:
        return None
    value = _date(meta[key])
    if value is None:
        warnings.append(f"front matter {key}: {str(meta[key])[:40]!r} is not a date we can read "
                        "(ISO 8601, e.g. 2024-05-13); ignored")
    return value


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if match := YAML_FENCE.match(text):
        return _yaml(match.group(1)), text[match.end():]
    if match := TOML_FENCE.match(text):
        try:
            return tomllib.loads(match.group(1)), text[match.end():]
        except tomllib.TOMLDecodeError as exc:
            raise NotAnArticle(f"TOML front matter is not valid TOML ({exc})") from None
    return {}, text


def _yaml(source: str) -> dict[str, Any]:
    class DatesAsText(yaml.SafeLoader):
        """YAML's own timestamps raise on an impossible date (2024-13-05) and lose the whole file;
        as text, _date reads them and a bad one costs only the date."""

    DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
    try:
        data = yaml.load(source, Loader=DatesAsText)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise NotAnArticle(f"YAML front matter is not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NotAnArticle("YAML front matter is not a mapping of keys to values")
    return data


def _render(body: str) -> str:
    """The body as HTML. A long one is rendered a part at a time (_parts): Python-Markdown holds
    many times the size of what it renders at once (figures in docs/decisions/0005)."""
    renderer = markdown.Markdown(extensions=["extra", "sane_lists"], output_format="html")
    if len(body) <= LONG_BODY_CHARS:
        return renderer.convert(body)
    references = "\n".join(REFERENCE_DEFINITION.findall(body))
    return "\n".join(renderer.reset().convert(f"{part}\n\n{references}") for part in _parts(body))


def _parts(body: str) -> Iterator[str]:
    """The body cut at blank lines before a plain paragraph, about PART_CHARS apart.

    Never inside a fenced code block, nor before a list item, a quote, a table
    row, an indented line or a definition: what spans blank lines stays whole.
    Link reference definitions are given to every part (_render).
    """
    start = 0
    while start < len(body):
        end = _part_end(body, start)
        yield body[start:end]
        start = end


def _part_end(body: str, start: int) -> int:
    for cut in PART_BREAK.finditer(body, min(start + PART_CHARS, len(body))):
        if len(FENCE.findall(body, start, cut.start())) % 2 == 0:
            return cut.start()
    return len(body)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None or isinstance(value, (dict, list)) else str(value))


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",")]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _names(value: Any) -> list[str]:
    seen: dict[str, str] = {}
    for item in _list(value):
        name = clean_text(_str(item.get("name")) if isinstance(item, dict) else _str(item))
        if name:
            seen.setdefault(name.lower(), name)
    return list(seen.values())


def _date(value: Any) -> datetime | None:
    """YAML and TOML give real dates; strings are read as ISO 8601."""
    if isinstance(value, datetime):
        return clamp_date(value)
    if isinstance(value, date):
        return clamp_date(datetime.combine(value, time(), tzinfo=timezone.utc))
    if isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        try:
            return clamp_date(datetime.fromisoformat(text))
        except ValueError:
            pass
        try:  # YAML's own spelling: "2001-12-14 21:59:43.10 -5" (a space, and a short offset)
            return clamp_date(_yaml_timestamp(text))
        except ValueError:
            return None
    return None


YAML_TIMESTAMP = re.compile(r"(\d{4}-\d\d?-\d\d?)(?:[Tt ]+(\d\d?):(\d\d):(\d\d)(?:\.\d*)?)?"
                            r"\s*(?:Z|([-+])(\d\d?)(?::?(\d\d))?)?")


def _yaml_timestamp(text: str) -> datetime:
    """The YAML 1.1 timestamp forms fromisoformat does not take; ValueError for anything else."""
    match = YAML_TIMESTAMP.fullmatch(text)
    if not match:
        raise ValueError(text)
    day, hour, minute, second, sign, off_hours, off_minutes = match.groups()
    year, month, dom = (int(part) for part in day.split("-"))
    when = datetime(year, month, dom, int(hour or 0), int(minute or 0), int(second or 0), tzinfo=timezone.utc)
    if sign:
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes or 0))
        when = when - offset if sign == "+" else when + offset
    return when
