"""Feed bytes (RSS, Atom, JSON Feed) -> a ParseResult: the one way in for every feed.

The content decides the format, never the Content-Type: feeds are commonly
served as text/html, text/plain or application/octet-stream. JSON Feed is
read by feed_json.py; RSS and Atom by feed_xml.py (feedparser, loaded on
first use), whose fast path is feed_fast.py (feedparser-rs) and whose
document checks are xml_document.py. What every format shares is in
feed_entries.py.

Failure is bounded by its unit. An exception while reading the document
(feedparser's or ours) fails that feed, as ParseResult.error; one while
turning an entry into an Article skips that entry, as one Skipped line
naming it, and the feed's other entries are read. Either way the traceback
rides along in ParseResult.tracebacks for the debug log (a parse worker has
no log of its own). What was read in spite of a problem (ill-formed XML
recovered, a Content-Type of another format, entries past `max_entries`)
comes back as one line in ParseResult.warnings.
"""

from __future__ import annotations

import traceback

from aggregator import ingest
from aggregator.ingest.feed_entries import MAX_ENTRIES, FeedError, cause
from aggregator.ingest.feed_json import parse_json_feed
from aggregator.models import ParseResult, Skipped

def parse_feed(data: bytes, *, source: str, url: str | None = None,
               content_type: str | None = None, max_entries: int = MAX_ENTRIES) -> ParseResult:
    """Parse a whole feed document. Errors come back as ParseResult.error, not exceptions.

    The content decides the format, never the Content-Type: feeds are commonly
    served as text/html, text/plain or application/octet-stream. What was read
    in spite of a problem comes back as one line in ParseResult.warnings; an
    entry that could not be read, as one Skipped in ParseResult.skipped.
    """
    is_json = _looks_like_json(data)
    try:
        if is_json:
            result, problems = parse_json_feed(data, source=source, url=url, max_entries=max_entries), []
        else:
            result, problems = ingest.feed_xml.parse_xml_feed(data, source=source, url=url,
                                                              content_type=content_type, max_entries=max_entries)
    except FeedError as exc:
        return ParseResult(error=str(exc))
    except Exception as exc:  # noqa: BLE001 - feedparser or our reading choked on this document: this feed only
        return ParseResult(error=f"could not be read as a feed ({cause(exc)}); nothing from it was stored, "
                                 "it is read again at the next fetch", tracebacks=[traceback.format_exc()])
    problems = [p for p in [_served_as(content_type, is_json), *problems] if p]
    if problems:
        result.warnings.insert(0, f"read leniently: {'; '.join(problems)}; the feed's publisher can fix this")
    return result


def _looks_like_json(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def _served_as(content_type: str | None, is_json: bool) -> str | None:
    """A note when the Content-Type names no type of the format the content turned out to be."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not kind or kind.endswith(("/json", "+json") if is_json else ("/xml", "+xml")):
        return None
    return f"served as {kind}, which is not {'a JSON' if is_json else 'an XML'} type"


def skipped_for(origin: str, result: ParseResult) -> ParseResult:
    """A feed file's result for the local reader: failed as a whole, one Skipped line for the
    file; else its skipped entries and warnings, each named after the file too."""
    if result.error:
        return ParseResult(skipped=[Skipped(origin, result.error)], tracebacks=result.tracebacks)
    result.skipped = [Skipped(f"{origin}: {s.origin}", s.reason) for s in result.skipped]
    result.warnings = [f"{origin}: {warning}" for warning in result.warnings]
    return result
