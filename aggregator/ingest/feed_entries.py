"""What every feed format shares: entries become Articles by one set of rules.

RSS, Atom and JSON Feed (feed_xml.py, feed_json.py) and the JSON files of
a folder (jsonfile.py) each read their own fields; here is what they have
in common. An entry's content passes through our sanitizer (nh3) whatever
its format; an entry is keyed by its source and guid; one entry that
cannot be read is skipped alone, named in one line, and the feed's other
entries are read; entries past the cap are not read, and one warning says
so. Exceptions while reading an entry become values: a Skipped line, and
the traceback in ParseResult.tracebacks for the debug log (a parse worker
has no log of its own).
"""

from __future__ import annotations

import re
import traceback
from datetime import datetime
from html import escape
from typing import Any, Callable

from aggregator.config import IngestConfig
from aggregator.enrich.html_text import clean_html_to_text
from aggregator.enrich.language import declared_language
from aggregator.enrich.sanitize import sanitize_html
from aggregator.enrich.text import content_hash, stable_id
from aggregator.models import Article, ParseResult, Skipped

MAX_ENTRIES = IngestConfig.max_entries  # entries read per feed unless [ingest] max_entries says otherwise
SUMMARY_SOURCE_CHARS = 64 * 1024  # a summary is 400 characters of a first paragraph: this much is read for it
SHOWN_CHARS = 80  # of an entry's id, link or title, in the line that names it


class FeedError(ValueError):
    """The bytes are not a feed we can use; the message says why, for the source's owner."""


def cause(exc: BaseException) -> str:
    """'ValueError: Invalid IPv6 URL': an exception in one line, for the line that names its unit."""
    message = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {shown(message, 200)}" if message else type(exc).__name__


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """Input text as it may appear in a log line: one printable line, clipped."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit + 1])
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def entry_name(position: int, entry_id: Any, link: Any, title: Any, noun: str = "entry") -> str:
    """'entry 3 (id "tag:example.com,2024:3", "Council meets")': how a skipped entry is named.

    Its id, else its link, and its title: whichever it has, made printable and clipped.
    """
    parts = [f'id "{shown(entry_id)}"' if _present(entry_id) else "",
             f'link "{shown(link)}"' if _present(link) and not _present(entry_id) else "",
             f'"{shown(title)}"' if _present(title) else ""]
    named = ", ".join(p for p in parts if p)
    return f"{noun} {position} ({named})" if named else f"{noun} {position}"


def _present(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip() != ""


def read_entries(entries: list, max_entries: int, article_of: Callable[[Any], Article | None],
                 name_of: Callable[[int, Any], str], what: str = "entries", whole: str = "the feed") -> ParseResult:
    """One Article per entry, a repeated id keeping its first; the first `max_entries` only.

    An entry whose reading raises is skipped, one Skipped naming it (`name_of`,
    its 1-based position and the entry) and the cause, with its traceback in
    `tracebacks`; the other entries are read. Past the cap, one warning.
    """
    result = ParseResult()
    articles: dict[str, Article] = {}
    for position, entry in enumerate(entries[:max_entries], 1):
        try:
            article = article_of(entry)
        except Exception as exc:  # noqa: BLE001 - this entry's content choked our reading: it alone is skipped
            result.skipped.append(Skipped(name_of(position, entry), f"could not be read ({cause(exc)}); "
                                          f"the other {what} are stored"))
            result.tracebacks.append(traceback.format_exc())
            continue
        if article is not None:
            articles.setdefault(article.id, article)
    result.articles = list(articles.values())
    if len(entries) > max_entries:
        result.warnings.append(capped(len(entries), max_entries, what, whole))
    return result


def capped(total: int, max_entries: int, what: str = "entries", whole: str = "the feed") -> str:
    """The one line that says a feed or file was cut at the entry cap, and how to read the rest."""
    return (f"{whole} has {total:,} {what}; only the first {max_entries:,} were read "
            "(raise [ingest] max_entries to read more)")


def safe_html(fragment: str, base: str | None = None) -> str:
    """An entry's content or summary as safe HTML, relative links resolved against `base`.

    Every feed format's content takes this one path, so one sanitizer decides
    what reaches a published page, whichever parser read the entry.
    """
    return sanitize_html(fragment, base)


def summary_text(fragment: str) -> str:
    """A summary given as HTML, as plain text (made safe first, like the content)."""
    return clean_html_to_text(safe_html(fragment))


def feed_article(*, source: str, site: str, base: str | None, title: str, link: str | None, guid: str,
                 text: str, content_html: str, summary: str, published: datetime | None,
                 updated: datetime | None, authors: list[str], categories: list[str],
                 image: str | None, language: str = "") -> Article:
    """The rules every feed format shares: the id from guid (else link, else a content hash),
    published falling back to updated, `updated` kept only when it is later, and the content hash."""
    guid = guid or link or content_hash(title, text)[:32]
    return Article(
        id=feed_article_id(source, guid),
        source=source,
        title=title,
        site=site,
        url=link,
        guid=guid,
        published=published or updated,
        updated=updated if updated and published and updated > published else None,
        authors=authors,
        categories=categories,
        summary=summary,
        text=text,
        content_html=content_html,
        image=image,
        origin=base or "",
        content_hash=content_hash(title, text, link or ""),
        language=declared_language(language),
    )


def feed_article_id(source: str, guid: str) -> str:
    """Keyed by source and guid: guids are only unique within one feed."""
    return stable_id("feed", source, guid)


def paragraphs_html(value: str) -> str:
    """Plain text as HTML paragraphs, one per blank-line-separated block, escaped."""
    return "".join(f"<p>{escape(p.strip())}</p>" for p in re.split(r"\n\s*\n", value) if p.strip())


def unique(items: Any) -> list[str]:
    """The non-empty items, each once whatever its case, the first spelling kept, in order."""
    seen: dict[str, str] = {}
    for item in items:
        if item:
            seen.setdefault(item.lower(), item)
    return list(seen.values())
