"""feeds/status.html: how every source and topic is doing, for a person, without JavaScript.

/healthz answers a machine; an operator wants to see which sources fail,
since when and why, which ones went quiet, and what each topic gets per
day. Each series is a small inline SVG bar plot (30 days, one bar a day),
so the page is one self-contained file that any browser, a phone at 400 px
included, renders without fetching anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import Any

from aggregator.config import Config
from aggregator.ingest.source_status import source_rows
from aggregator.publish.files import write_if_changed
from aggregator.storage import status_counts

DAYS = 30
BAR_WIDTH, PLOT_HEIGHT = 4, 24  # pixels: 30 bars make a 120 px plot, small enough for a table cell


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str  # "local" or "remote"
    status: str  # ok, failing, gone, ... or "-" before the first fetch
    last_fetch: str = ""
    last_error: str = ""
    per_day: tuple[int, ...] = ()  # articles stored per day, oldest first, DAYS long


@dataclass(frozen=True)
class TopicVolume:
    slug: str
    title: str
    per_day: tuple[int, ...] = ()


@dataclass(frozen=True)
class StatusData:
    title: str
    generated: str  # when the data was read (the newest stored change, so unchanged data renders the same bytes)
    first_day: date  # the oldest day of every series
    sources: tuple[SourceStatus, ...] = ()
    topics: tuple[TopicVolume, ...] = ()
    merged_per_day: tuple[int, ...] = field(default_factory=tuple)  # duplicates joined to a cluster per day


def status_data(config: Config, store: Any, today: date | None = None) -> StatusData:
    """What the page shows, read from the store: the last DAYS days up to and including today (UTC)."""
    today = today or datetime.now(timezone.utc).date()
    first_day = today - timedelta(days=DAYS - 1)
    by_source = status_counts.per_source(store.conn, first_day, DAYS)
    by_topic = status_counts.per_topic(store.conn, first_day, DAYS)
    empty = (0,) * DAYS
    sources = tuple(SourceStatus(row["name"], row["kind"], row["status"], row["last_fetch"] or "",
                                 row["last_error"] or "", by_source.get(row["name"], empty))
                    for row in source_rows(config, store))
    topics = tuple(TopicVolume(t.slug, t.title, by_topic.get(t.slug, empty)) for t in config.topics)
    fetched = [s.last_fetch for s in sources if s.last_fetch]
    return StatusData(config.site.title, max(fetched) if fetched else today.isoformat(), first_day,
                      sources, topics, status_counts.merged(store.conn, first_day, DAYS))


@dataclass(frozen=True)
class PageWrite:
    path: Path
    written: bool


def write_status_page(config: Config, store: Any, today: date | None = None, force: bool = False) -> PageWrite:
    """feeds/status.html from the store as it is now, and whether it was rewritten.

    An unchanged refresh must stay cheap, so the page is only rendered when
    what it shows may differ: stored articles, a source's row, the config's
    sources and topics, or the day (the plots' window) changed. Those are
    read in one small query and kept in the page as a comment.
    """
    today = today or datetime.now(timezone.utc).date()
    path = config.storage.feeds_dir / "status.html"
    stamp = _stamp(config, store, today)
    if _stamp_of(path) == stamp and not force:
        return PageWrite(path, False)
    page = render_status_page(status_data(config, store, today)).replace("<html", f"{stamp}\n<html", 1)
    return PageWrite(path, write_if_changed(path, page.encode("utf-8"), force))


def _stamp(config: Config, store: Any, today: date) -> str:
    sources = store.conn.execute("SELECT count(*), max(last_fetch), sum(error_count), "
                                 "group_concat(status) FROM sources").fetchone()
    shape = hashlib.sha256(repr(([(s.name, s.kind, s.enabled) for s in config.sources],
                                 [(t.slug, t.title) for t in config.topics], config.site.title)).encode())
    return (f"<!-- status {today.isoformat()} {store.content_version()} {shape.hexdigest()[:16]} "
            f"{hashlib.sha256(repr(sources).encode()).hexdigest()[:16]} -->")


def _stamp_of(path: Path) -> str:
    try:
        with path.open("rb") as page:
            return page.read(200).decode("utf-8", "replace").split("\n", 2)[1]
    except (OSError, IndexError):
        return ""


def render_status_page(data: StatusData) -> str:
    failing = [s for s in data.sources if s.status not in ("ok", "-")]
    parts = [_HEAD.format(title=escape(f"{data.title}: status")),
             f"<h1>{escape(data.title)}: status</h1>",
             f'<p class="meta">{len(data.sources)} sources, {len(failing)} not ok; data as of '
             f"{escape(data.generated)}. Plots: the last {DAYS} days, one bar a day, from "
             f'{data.first_day.isoformat()}. <a href="index.html">All feeds</a></p>',
             "<h2>Sources</h2>", _sources_table(data), "<h2>Topics</h2>", _topics_table(data),
             "<h2>Duplicates merged</h2>",
             f'<p>{sum(data.merged_per_day)} copies of stories already stored, joined to their cluster. '
             f"{_plot(data.merged_per_day, data.first_day, 'copies merged')}</p>",
             "</body>\n</html>\n"]
    return "\n".join(parts)


def _sources_table(data: StatusData) -> str:
    if not data.sources:
        return "<p>No sources configured.</p>"
    rows = []
    # Failing sources first: they are what an operator opens this page for.
    for source in sorted(data.sources, key=lambda s: (s.status in ("ok", "-"), s.name.lower())):
        state = f'<span class="state {_state_class(source.status)}">{escape(source.status)}</span>'
        error = f'<div class="error">{escape(source.last_error)}</div>' if source.last_error else ""
        rows.append(f"<tr><td><b>{escape(source.name)}</b> <small>{escape(source.kind)}</small>{error}</td>"
                    f'<td data-label="State">{state}</td><td data-label="Last fetch">{escape(source.last_fetch or "-")}</td>'
                    f'<td data-label="Articles, {DAYS} days">{sum(source.per_day)} '
                    f"{_plot(source.per_day, data.first_day, 'articles')}</td></tr>")
    return ("<table><thead><tr><th>Source</th><th>State</th><th>Last fetch</th>"
            f"<th>Articles, {DAYS} days</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _topics_table(data: StatusData) -> str:
    if not data.topics:
        return "<p>No topics configured.</p>"
    rows = [f'<tr><td><a href="{escape(t.slug)}.atom">{escape(t.title)}</a></td>'
            f'<td data-label="Articles, {DAYS} days">{sum(t.per_day)} '
            f"{_plot(t.per_day, data.first_day, 'articles')}</td></tr>" for t in data.topics]
    return (f"<table><thead><tr><th>Topic</th><th>Articles, {DAYS} days</th></tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>")


def _state_class(status: str) -> str:
    return {"ok": "ok", "-": "new"}.get(status, "bad")


def _plot(counts: tuple[int, ...], first_day: date, what: str) -> str:
    """A bar per day; each bar's <title> is the day and its count (a tooltip, and text for screen readers)."""
    width, height, bar = BAR_WIDTH * len(counts), PLOT_HEIGHT, BAR_WIDTH
    peak = max(counts, default=0) or 1
    bars = []
    for i, count in enumerate(counts):
        h = 0 if count == 0 else max(1, round(height * count / peak))
        day = (first_day + timedelta(days=i)).isoformat()
        bars.append(f'<rect x="{i * bar}" y="{height - h}" width="{bar - 1}" height="{h}">'
                    f"<title>{day}: {count} {what}</title></rect>")
    label = f"{sum(counts)} {what} in {len(counts)} days, at most {max(counts, default=0)} a day"
    return (f'<svg class="plot" role="img" aria-label="{label}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><line x1="0" y1="{height - 0.5}" x2="{width}" '
            f'y2="{height - 0.5}"/>{"".join(bars)}</svg>')


_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 1rem auto; max-width: 60rem; padding: 0 .75rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid #ddd; }}
td {{ overflow-wrap: anywhere; }}
.meta, small {{ color: #555; }}
.state {{ padding: 0 .4rem; border-radius: .3rem; white-space: nowrap; }}
.ok {{ background: #dcefdc; }} .bad {{ background: #f6d5d5; }} .new {{ background: #eee; }}
.error {{ color: #8a1c1c; font-size: .85rem; }}
svg.plot {{ display: block; margin-top: .2rem; }}
svg.plot rect {{ fill: #3a6ea5; }} svg.plot line {{ stroke: #bbb; }}
@media (max-width: 600px) {{ thead {{ display: none; }} tr {{ display: block; border-bottom: 1px solid #ddd; }}
  td {{ display: block; border: 0; padding: .15rem .25rem; }}
  td[data-label]::before {{ content: attr(data-label) ": "; color: #555; }} }}
</style>
</head>
<body>"""
