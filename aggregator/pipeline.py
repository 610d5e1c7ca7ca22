"""The stages, in order. Read this first.

    ingest(source):  read    ingest/local.py (files)  or ingest/http.py + ingest/feed.py (feeds)
                     tag     topics.py                 topic rules -> slugs
                     dedup   dedup.py                  which stored story is this a copy of
                     store   store.py                  one transaction per source batch (with terms.py's
                                                       salient words, for related posts)
    publish():       related related.py                related posts per entry
                     render  publish.py                Atom, RSS, JSON Feed, index.html, OPML
                     write   publish.py                atomic, only files that changed

A source's failure is a value (IngestReport.error / .skipped), never an
exception that stops the other sources. Our own bugs still raise.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from aggregator.config import Config, DedupConfig, SourceConfig
from aggregator.models import Article, IngestReport, ParseResult, warning_line
from aggregator.enrich.normalize import is_xml_safe, iso_utc, xml_safe
from aggregator.redact import redact
from aggregator.storage.store import Store
from aggregator.enrich.topics import TopicRules

if TYPE_CHECKING:
    from aggregator.ingest.local import ParseOptions

log = logging.getLogger("aggregator")
MAX_SKIP_LINES = 50  # per batch: a folder of 100,000 junk files is not 100,000 log lines

Progress = Callable[[int], None]


def topic_rules(config: Config) -> TopicRules:
    return TopicRules(config.topics, {s.name: s.topics for s in config.sources})


def parse_options(config: Config) -> "ParseOptions":
    from aggregator.ingest.local import ParseOptions

    return ParseOptions(known_categories=config.ingest.known_categories, max_entries=config.ingest.max_entries)


def ingest_source(config: Config, store: Store, source: SourceConfig,
                  rules: TopicRules | None = None, progress: Progress | None = None) -> IngestReport:
    """Read one configured source and store what it yields as one batch."""
    rules = rules or topic_rules(config)
    if source.path is None:
        from aggregator.ingest.remote import fetch_source  # lazily: HTTP and feedparser are slow to import

        return store_fetched(config, store, fetch_source(config, store, source), rules, progress)
    from aggregator.ingest.local import read_local_source  # lazily: a feeds-only refresh never reads files

    results = read_local_source(source.path, source.name, parse_options(config),
                                config.ingest.max_file_size, source.include, source.exclude,
                                known=store.file_states(source.name))
    report = store_results(store, source.name, results, rules, progress, config.dedup.threshold)
    save_source_status(store, source, report)
    return report


def save_source_status(store: Store, source: SourceConfig, report: IngestReport) -> None:
    """A source's status for `aggregator sources` and /healthz after a read: a folder's after every
    read (run --once and the daemon alike), any source's after a read that raised. A fetched feed's
    usual state goes into its batch's own transaction instead (ingest/remote.py)."""
    now = iso_utc(datetime.now(timezone.utc).replace(microsecond=0))
    fields = {"kind": source.kind, "location": source.location, "last_fetch": now,
              "warning": warning_line(report.warnings)}
    if report.error:
        count = (store.source_state(source.name).get("error_count") or 0) + 1
        store.save_source_state(source.name, status="error", last_error=report.error, error_count=count, **fields)
    else:
        store.save_source_state(source.name, status="ok", last_success=now, last_error=None, error_count=0,
                                **fields)


def ingest_path(config: Config, store: Store, path: Path,
                rules: TopicRules | None = None, progress: Progress | None = None) -> IngestReport:
    """Ad hoc ingest of a file or folder; it belongs to the configured source that contains it."""
    from aggregator.ingest.local import read_local_source

    source = source_for_path(config, path)
    if source is not None:
        rules = rules or topic_rules(config)
        # Ids relative to the source's root: the same ids the source's own runs give, so one copy.
        root = source.path if source.path.is_dir() else source.path.parent
        results = read_local_source(path, source.name, parse_options(config), config.ingest.max_file_size,
                                    source.include, source.exclude, known=store.file_states(source.name),
                                    base=root)
        return store_results(store, source.name, results, rules, progress, config.dedup.threshold)
    name = f"local:{path.resolve().name if path.is_dir() else path.resolve().parent.name}"
    results = read_local_source(path, name, parse_options(config), config.ingest.max_file_size,
                                known=store.file_states(name))
    return store_results(store, name, results, rules or topic_rules(config), progress, config.dedup.threshold)


def count_files(config: Config, path: Path) -> int:
    """How many files an ingest of `path` will look at: the length of a progress bar."""
    from aggregator.ingest.local import iter_files

    source = source_for_path(config, path)
    include, exclude = (source.include, source.exclude) if source else ((), ())
    return sum(1 for _ in iter_files(path, include, exclude)) if path.exists() else 0


def source_for_path(config: Config, path: Path) -> SourceConfig | None:
    resolved = path.resolve()
    for source in config.sources:
        if source.path is None:
            continue
        root = source.path.resolve()
        if resolved == root or root in resolved.parents:
            return source
    return None


def store_results(store: Store, source: str, results: Iterable[ParseResult],
                  rules: TopicRules, progress: Progress | None = None,
                  dedup_threshold: float = DedupConfig.threshold,
                  source_state: dict | None = None) -> IngestReport:
    """Tag and cluster every article, then write the whole batch in one transaction.

    `source_state` (a remote source's new ETag, status, next due time) goes
    into that same transaction.
    """
    report = IngestReport(source=source)
    batch: dict[str, Article] = {}
    fingerprints: dict = {}  # dedup fingerprints the parsing worker already computed
    done_tags: dict[str, list[str]] = {}  # and topic slugs
    files = []  # local files' new states, stored in the same transaction as their articles
    for result in results:
        for skipped in result.skipped[:max(0, MAX_SKIP_LINES - len(report.skipped))]:
            log.warning("%s: skipped %s: %s", source, skipped.origin, skipped.reason)
        report.skipped.extend(result.skipped)
        for warning in result.warnings:  # what a parser read in spite of a problem; logged here, in the main process
            log.warning("%s: %s", source, warning)
        report.warnings.extend(result.warnings)
        for trace in result.tracebacks:  # of what a parser caught at a unit's boundary (skipped or error)
            log.debug("%s: caught while parsing:\n%s", source, trace.rstrip())
        if result.error:
            report.error = result.error
        for article in result.articles:
            batch[article.id] = article
        fingerprints.update(result.fingerprints)
        done_tags.update(result.tags)
        if result.file is not None:
            files.append(result.file)
        report.unchanged += result.unchanged
        if progress:
            progress(1)
    pruned = store.pruned_ids(batch)  # retention removed them; a feed still listing them must not revive them
    articles = [a for a in batch.values() if a.id not in pruned]
    for article in articles:
        scrub(article)
    tags = {a.id: done_tags[a.id] if a.id in done_tags else rules.tags(a) for a in articles}
    for article in articles:
        article.topics = tags[article.id]
    if not articles and not files and not source_state:
        return _finish(report, source)  # nothing to write (e.g. an unscheduled 304): no transaction at all
    dedup_rows = None
    if articles:  # a 304 that only moves the source's state needs no dedup, and no numpy import (0.2 s)
        from aggregator.dedup.detect import Deduplicator

        dedup_rows = Deduplicator(store, dedup_threshold).assign(articles, fingerprints)  # sets article.cluster_id
    outcome = store.write_articles(articles, tags, dedup_rows, files=files,
                                   source_state=(source, source_state) if source_state else None)
    report.new, report.updated = outcome.new, outcome.updated
    report.unchanged += outcome.unchanged
    return _finish(report, source)


def _finish(report: IngestReport, source: str) -> IngestReport:
    if len(report.skipped) > MAX_SKIP_LINES:
        log.warning("%s: skipped %d more inputs (not listed)", source, len(report.skipped) - MAX_SKIP_LINES)
    log.debug("%s", report.summary())  # the CLI prints it; the daemon logs its own fetch line
    return report


def ingest_all(config: Config, store: Store, honour_schedule: bool = False) -> list[IngestReport]:
    """Every enabled source: local ones in turn, remote ones fetched concurrently.

    `honour_schedule` (the daemon) skips remote sources that are not due;
    `run --once` fetches them all (conditional GET still makes it cheap).
    Reports come back in config order; sources not due have none.
    """
    rules = topic_rules(config)
    enabled = [s for s in config.sources if s.enabled]
    reports = {s.name: ingest_source(config, store, s, rules) for s in enabled if s.path is not None}
    remote = [s for s in enabled if s.path is None]
    if remote:
        reports.update(ingest_remote(config, store, remote, rules, honour_schedule))
    return [reports[s.name] for s in enabled if s.name in reports]


def ingest_remote(config: Config, store: Store, sources: list[SourceConfig], rules: TopicRules,
                  honour_schedule: bool = False) -> dict[str, IngestReport]:
    """Fetch and parse on threads (bounded overall and per host); store each batch on this thread."""
    from urllib.parse import urlsplit

    from aggregator.ingest.concurrency import run_bounded
    from aggregator.ingest.remote import new_fetcher, plan_from_store, run_fetch

    states = store.source_states()  # one query for all sources, not one each
    jobs = [plan_from_store(config, store, s, honour_schedule=honour_schedule, state=states.get(s.name, {}))
            for s in sources]
    reports: dict[str, IngestReport] = {}
    with new_fetcher(config) as fetcher:
        for finished in run_bounded(jobs, key=lambda j: (urlsplit(j.url).hostname or "").lower(),
                                    work=lambda j: run_fetch(j, fetcher),
                                    limit=config.fetch.concurrency, per_key=config.fetch.per_host):
            outcomes = [o for _job, o in finished if not (o.skipped and not o.results)]  # not due: nothing
            with store.one_commit():  # every feed that finished meanwhile
                stored = [(o, store_outcome(config, store, o, rules)) for o in outcomes]
            for outcome, report in stored:  # logged once committed
                log_fetched(outcome, report)
                reports[outcome.source] = report
    return reports


TEXT_FIELDS = ("title", "site", "url", "guid", "summary", "text", "content_html", "image", "origin")
LONG_TEXT_FIELDS = ("text", "content_html")


def scrub(article: Article) -> None:
    """What no article carries into the store, whichever parser produced it: characters XML 1.0
    cannot hold (one would stop every publish), and the login of the feed URL it came from."""
    texts = [getattr(article, name) or "" for name in TEXT_FIELDS if name not in LONG_TEXT_FIELDS]
    texts += article.authors + article.categories + [r.title + r.author for r in article.site_related]
    # One pass over the short fields joined (nearly always clean), one over each long one: a
    # joined copy of a 10 MB text is 20-40 MB more at the moment memory peaks.
    if not all(is_xml_safe(text) for text in ["\n".join(texts), article.text, article.content_html]):
        for name in TEXT_FIELDS:
            if value := getattr(article, name):
                setattr(article, name, xml_safe(value))
        article.authors = [xml_safe(a) for a in article.authors]
        article.categories = [xml_safe(c) for c in article.categories]
        article.site_related = [replace(r, title=xml_safe(r.title), author=xml_safe(r.author))
                                for r in article.site_related]
    article.origin = redact(article.origin)  # a feed URL's login must not reach a published <source url>


def store_fetched(config: Config, store: Store, outcome, rules: TopicRules,
                  progress: Progress | None = None) -> IngestReport:
    """store_outcome, then its log line."""
    report = store_outcome(config, store, outcome, rules, progress)
    log_fetched(outcome, report)
    return report


def store_outcome(config: Config, store: Store, outcome, rules: TopicRules,
                  progress: Progress | None = None) -> IngestReport:
    """A remote source's outcome and its new state in one transaction."""
    return store_results(store, outcome.source, outcome, rules, progress, config.dedup.threshold,
                         source_state=outcome.state)


def log_fetched(outcome, report: IngestReport) -> None:
    """One line per fetch at info level: what the server said and what was stored.

    A failure is not raised to a warning here: the command that asked reports each failing
    source once, in its own words (the CLI's `error:` line, the daemon's fetch line).
    """
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    log.info("%s: %s; %d new, %d updated, %d unchanged%s%s", outcome.source, outcome.note,
            report.new, report.updated, report.unchanged, skipped, f"; error: {report.error}" if report.error else "")


def publish(config: Config, store: Store, force: bool = False):
    from aggregator.publish.last_publish import unchanged_report

    stamp, report = unchanged_report(config, store)  # answered without importing feedgen and lxml
    if report is None or force:
        from aggregator.publish.render import publish_changed

        report = publish_changed(config, store, stamp, force)
    log.info("%s", report.summary())
    return report


def retag(config: Config, store: Store, dry_run: bool = False) -> dict[str, tuple[int, int]]:
    """Re-apply topic rules to every stored article; per topic (gained, lost)."""
    rules = topic_rules(config)
    changes: dict[str, list[int]] = {}
    assignments: dict[str, list[str]] = {}
    for article in store.iter_articles():
        new = set(rules.tags(article))
        old = set(article.topics)
        if new == old:
            continue
        assignments[article.id] = sorted(new)
        for slug in new - old:
            changes.setdefault(slug, [0, 0])[0] += 1
        for slug in old - new:
            changes.setdefault(slug, [0, 0])[1] += 1
    if not dry_run and assignments:
        store.replace_topics(assignments)
    return {slug: (gain, loss) for slug, (gain, loss) in sorted(changes.items())}
