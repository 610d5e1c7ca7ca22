"""Stored articles -> feeds/: Atom, RSS and JSON Feed per topic, plus an index.

    entries.py     stored articles -> entries (ids, links, bodies), what is left out
    atom_rss.py    entries -> Atom and RSS (feedgen)
    json_feed.py   entries -> JSON Feed 1.1
    pages.py       the index page, local articles' pages, topics.opml
    files.py       atomic writes, only of files whose bytes change

Everything under feeds/ is rendered here and written through files.py.
Nothing rendered depends on the clock: every date comes from the store
(`updated` is the time of the entry's last content change there), so
unchanged input gives unchanged bytes, and last_publish.py can answer
"nothing to do" without loading this module, feedgen or lxml.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.config import Config, TopicConfig
from aggregator.dedup.clusters import ClusterView, collapse_clusters
from aggregator.enrich.text import xml_safe
from aggregator.models import RelatedLink
from aggregator.publish.atom_rss import XmlEntries, render_xml
from aggregator.publish.entries import Entry, LeftOut, build_entry, entry_html
from aggregator.publish.files import remove_orphan_pages, remove_stale_feeds, write_files
from aggregator.publish.json_feed import render_json
from aggregator.publish.last_publish import PublishReport, remember, unchanged_report
from aggregator.publish.names import ALL_TOPIC, feed_path
from aggregator.publish.pages import STYLE_CSS, STYLESHEET, render_article_pages, render_index, render_opml
from aggregator.publish.related import related_for_many
from aggregator.storage.store import Store


def publish(config: Config, store: Store, force: bool = False) -> PublishReport:
    """Write every topic's feeds, the index and OPML; remove feeds no longer configured.

    `force` renders and rewrites every file even when nothing seems changed.
    """
    stamp, unchanged = unchanged_report(config, store)  # nothing changed, and every file as it was written?
    return (None if force else unchanged) or publish_changed(config, store, stamp, force)


def publish_changed(config: Config, store: Store, stamp: str, force: bool = False) -> PublishReport:
    """publish, for a caller that has already found something changed (pipeline.publish).

    Every file is rendered and compared with what is on disk, so one that was
    truncated or edited is written back; `force` rewrites even identical ones.
    """
    report = PublishReport()
    feeds_dir = config.storage.feeds_dir
    topics = [*config.topics, ALL_TOPIC]
    left_out = LeftOut(feeds_dir)
    outputs, latest = render_feeds(config, store, topics, left_out)
    outputs.update(render_article_pages(config, store, latest, left_out))
    outputs[feeds_dir / "index.html"] = render_index(config, topics, latest)
    outputs[feeds_dir / "topics.opml"] = render_opml(config, topics)
    outputs[feeds_dir / STYLESHEET] = STYLE_CSS.encode("utf-8")
    for path, written in zip(outputs, write_files(outputs, force)):
        (report.written if written else report.unchanged).append(path)
    report.removed = remove_stale_feeds(feeds_dir, {t.slug for t in topics}, config.publish.formats)
    report.removed += remove_orphan_pages(feeds_dir, outputs)
    remember(config, store, stamp, outputs)
    report.left_out = left_out.report()
    return report


def render_feeds(config: Config, store: Store, topics: list[TopicConfig],
                 left_out: "LeftOut | None" = None) -> tuple[dict[Path, bytes], dict[str, list[Entry]]]:
    """Every topic's feed files, and the entries each topic shows (for the index).

    An article that cannot be made an entry is left out of every feed, one
    that a format cannot render out of that format's files (`left_out` says so).
    A story in several topics is one entry, rendered once per format (`Rendered`).
    """
    left_out = left_out or LeftOut(config.storage.feeds_dir)
    titles = {t.slug: t.title for t in config.topics}
    outputs: dict[Path, bytes] = {}
    latest: dict[str, list[Entry]] = {}
    views = topic_views(config, store, topics)
    shown = {v.representative.id: v.representative for vs in views.values() for v in vs}
    related = related_for_many(store, list(shown.values()), config.publish.related_posts)
    rendered = Rendered.for_views(views)
    entries_by_id: dict[str, Entry | None] = {}
    for topic in topics:
        for view in views[topic.slug]:
            if view.representative.id not in entries_by_id:
                entries_by_id[view.representative.id] = prepared_entry(config, view, related, titles, left_out)
        entries = [entry for view in views[topic.slug] if (entry := entries_by_id[view.representative.id])]
        latest[topic.slug] = entries
        for fmt in config.publish.formats:
            path = feed_path(config.storage.feeds_dir, topic.slug, fmt)
            outputs[path] = render_leaving_out(fmt, config, topic, entries, path, left_out, rendered)
    return outputs, latest


def topic_views(config: Config, store: Store, topics: list[TopicConfig]) -> dict[str, list[ClusterView]]:
    """Each topic's newest stories, each story once with its copies listed in it."""
    return {topic.slug: collapse_clusters(store, store.articles(
        topic=None if topic is ALL_TOPIC else topic.slug, limit=config.publish.max_items)) for topic in topics}


@dataclass
class Rendered:
    """What one publish has rendered of its entries, for the next feed that shows them.

    The feeds are independent renders of shared entries: the same entry gives
    the same element or item in every feed, so it is made once and reused.
    """

    xml: XmlEntries = field(default_factory=XmlEntries)
    json_items: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def for_views(cls, views: dict[str, list[ClusterView]]) -> "Rendered":
        """Elements kept only for stories that more than one topic shows: any other is built once per format
        anyway, and keeping a copy of it would cost a copy and save nothing."""
        shown = Counter(view.representative.id for listed in views.values() for view in listed)
        return cls(xml=XmlEntries(frozenset(article_id for article_id, feeds in shown.items() if feeds > 1)))


def prepared_entry(config: Config, view: ClusterView, related: dict[str, list[RelatedLink]],
                   titles: dict[str, str], left_out: "LeftOut") -> Entry | None:
    """The cluster view's entry with its body rendered, or None (noted in `left_out`) when
    something in the stored article raises: it is left out, the other entries are not."""
    article = view.representative
    try:
        entry = build_entry(config, article, related.get(article.id, []), titles)
        entry.also_reported = view.copies
        entry.content = xml_safe(entry_html(entry, config.publish.full_content))
        return entry
    except Exception as exc:  # noqa: BLE001 - an odd stored article: it alone is left out
        left_out.note(article.id, exc, "every feed")
        return None


def render_leaving_out(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry], path: Path,
                       left_out: "LeftOut", rendered: Rendered | None = None) -> bytes:
    """render(), without the entries the format cannot render (each noted in `left_out`).

    The whole feed is tried first; only when it raises is each entry rendered
    alone to find the ones to blame. None to blame is our own bug: it raises.
    """
    rendered = rendered or Rendered()
    try:
        return render(fmt, config, topic, entries, rendered)
    except Exception:  # noqa: BLE001 - blamed on the entries below, or raised again
        failing = _failing_entries(fmt, config, topic, entries, rendered)
        if not failing:
            raise
    for article_id, exc in failing.items():
        left_out.note(article_id, exc, path)
    return render(fmt, config, topic, [e for e in entries if e.article.id not in failing], rendered)


def _failing_entries(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry],
                     rendered: Rendered) -> dict[str, BaseException]:
    failing: dict[str, BaseException] = {}
    for entry in entries:
        try:
            render(fmt, config, topic, [entry], rendered)
        except Exception as exc:  # noqa: BLE001 - this entry is one to blame
            failing[entry.article.id] = exc
    return failing


def render(fmt: str, config: Config, topic: TopicConfig, entries: list[Entry],
           rendered: Rendered | None = None) -> bytes:
    """The topic's feed in one format: "atom", "rss" or "json"."""
    rendered = rendered or Rendered()
    if fmt == "json":
        return render_json(config, topic, entries, rendered.json_items)
    return render_xml(fmt, config, topic, entries, rendered.xml)
