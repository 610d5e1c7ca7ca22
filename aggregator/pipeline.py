"""The pipeline, every stage in order. Read this first.

What comes in: a Config (config/) whose sources are folders or files (`path`)
and feeds (`url`). What goes out: articles in the database, one `sources`
row per source saying how its last read went, and the published files in
feeds/ (Atom, RSS, JSON Feed, index.html, OPML).

    stage    package   what happens to one source's batch
    ingest   ingest/   a folder is read (local.py, one parser per kind of file); a feed is
                       planned and fetched (remote.py over http.py) and parsed (feed.py, in
                       parsing_pool.py's workers) -> ParseResults: articles, skips, warnings
    enrich   enrich/   one chain (chain.py): what XML cannot hold scrubbed, topics tagged,
                       salient words worked out; in the parse worker for a large feed, else here
    dedup    dedup/    which stored story each article is a copy of (detect.py)
    storage  storage/  the batch, its files' states and the source's new row: one transaction
    publish  publish/  related posts, then every feed rendered and written atomically,
                       only the files that changed (render.py)

Three entry points share one ingest path, so a source's row is the same
whichever of them read it:

    run --once    ingest_all    folders in turn, feeds on threads (ingest_remote), then publish()
    ingest PATH   ingest_path   a file or folder; a configured source's whole folder is
                                read exactly as the source's own runs read it
    the daemon    ingest_one    one source per scheduled job, feeds on its long-lived fetcher

A folder is read_folder; a feed is remote.plan_from_store -> remote.run_fetch
-> store_outcome. Both end in store_batch, whose transaction carries the
source's new row: a folder's decided by ingest/source_status.py from the read
and the previous row, a feed's by ingest/remote.py from the HTTP answer.

A source's failure is a value (IngestReport.error / .skipped), never an
exception that stops the other sources. Our own bugs still raise; the daemon
records one as the source's error (record_raised) and goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import urlsplit

from aggregator import dedup, enrich, ingest
from aggregator import publish as publishing
from aggregator.config import Config, DedupConfig, SourceConfig
from aggregator.enrich.dates import iso_utc
from aggregator.enrich.topics import TopicRules
from aggregator.ingest.source_status import status_after_read
from aggregator.models import Article, FileState, IngestReport, ParseResult
from aggregator.storage.store import Store

if TYPE_CHECKING:
    from aggregator.ingest.local import ParseOptions
    from aggregator.ingest.remote_state import FetchOutcome

log = logging.getLogger("aggregator")
MAX_SKIP_LINES = 50  # per batch: a folder of 100,000 junk files is not 100,000 log lines

Progress = Callable[[int], None]


def topic_rules(config: Config) -> TopicRules:
    return TopicRules(config.topics, {s.name: s.topics for s in config.sources})


def parse_options(config: Config) -> "ParseOptions":
    return ingest.local.ParseOptions(known_categories=config.ingest.known_categories,
                                     max_entries=config.ingest.max_entries)


# --- the entry points: run --once, ingest PATH, the daemon's job ---


def ingest_all(config: Config, store: Store, honour_schedule: bool = False,
               only: set[str] | None = None) -> list[IngestReport]:
    """Every enabled source (or those named in `only`): local ones in turn, remote ones fetched concurrently.

    `honour_schedule` skips remote sources that are not due; `run --once`
    fetches them all (conditional GET still makes it cheap). Reports come
    back in config order; sources not due have none.
    """
    rules = topic_rules(config)
    enabled = [s for s in config.sources if s.enabled and (only is None or s.name in only)]
    reports = {s.name: read_folder(config, store, s, rules) for s in enabled if s.path is not None}
    remote = [s for s in enabled if s.path is None]
    if remote:
        reports.update(ingest_remote(config, store, remote, rules, honour_schedule))
    return [reports[s.name] for s in enabled if s.name in reports]


def ingest_remote(config: Config, store: Store, sources: list[SourceConfig], rules: TopicRules,
                  honour_schedule: bool = False) -> dict[str, IngestReport]:
    """Fetch and parse on threads (bounded overall and per host); store each batch on this thread."""
    states = store.source_states()  # one query for all sources, not one each
    jobs = [ingest.remote.plan_from_store(config, store, s, honour_schedule=honour_schedule,
                                          state=states.get(s.name, {})) for s in sources]
    reports: dict[str, IngestReport] = {}
    with ingest.remote.new_fetcher(config) as fetcher:
        for finished in ingest.concurrency.run_bounded(jobs, key=lambda j: (urlsplit(j.url).hostname or "").lower(),
                                                       work=lambda j: ingest.remote.run_fetch(j, fetcher),
                                                       limit=config.fetch.concurrency,
                                                       per_key=config.fetch.per_host):
            outcomes = [o for _job, o in finished if not (o.skipped and not o.results)]  # not due: nothing
            with store.one_commit():  # every feed that finished meanwhile
                stored = [(o, store_outcome(config, store, o, rules)) for o in outcomes]
            for outcome, report in stored:  # logged once committed
                log_fetched(outcome.source, outcome.note, report)
                reports[outcome.source] = report
    return reports


def ingest_path(config: Config, store: Store, path: Path,
                rules: TopicRules | None = None, progress: Progress | None = None) -> IngestReport:
    """Ad hoc ingest of a file or folder; it belongs to the configured source that contains it.

    A source's whole folder (or file) is that source's read, its row included;
    a part of it says nothing about the rest, so it leaves the row alone.
    """
    rules = rules or topic_rules(config)
    source = source_for_path(config, path)
    if source is not None and source.path is not None:
        if path.resolve() == source.path.resolve():
            return read_folder(config, store, source, rules, progress)
        # Ids relative to the source's root: the same ids the source's own runs give, so one copy.
        root = source.path if source.path.is_dir() else source.path.parent
        results = ingest.local.read_local_source(path, source.name, parse_options(config),
                                                 config.ingest.max_file_size, source.include, source.exclude,
                                                 known=store.file_states(source.name), base=root)
        return store_results(store, source.name, results, rules, progress, config.dedup.threshold)
    name = f"local:{path.resolve().name if path.is_dir() else path.resolve().parent.name}"
    results = ingest.local.read_local_source(path, name, parse_options(config), config.ingest.max_file_size,
                                             known=store.file_states(name))
    return store_results(store, name, results, rules, progress, config.dedup.threshold)


@dataclass(frozen=True)
class SourceTurn:
    """One source's turn through the pipeline, as the daemon logs it."""

    report: IngestReport | None  # None: a feed not fetched this time, `skip` says why
    http_status: int | None = None  # a feed's answer; None for a folder
    note: str = ""  # a feed's answer for the log ("HTTP 200 in 0.12s")
    skip: str | None = None


def ingest_one(config: Config, store: Store, source: SourceConfig, rules: TopicRules, fetcher: Any = None, *,
               due_by: datetime | None = None, progress: Progress | None = None) -> SourceTurn:
    """One source start to end on this thread, a feed on the caller's fetcher (the daemon's job).

    With `due_by` a feed that is not due by then, backing off, gone or told to
    wait is not fetched. Without it only gone and Retry-After stop a fetch,
    and the report says so as its error.
    """
    if source.path is not None:
        return SourceTurn(read_folder(config, store, source, rules, progress))
    job = ingest.remote.plan_from_store(config, store, source, honour_schedule=due_by is not None, now=due_by)
    if job.skip and job.quiet_skip:
        return SourceTurn(None, skip=job.skip)
    assert fetcher is not None, "a feed needs the caller's fetcher"
    outcome = ingest.remote.run_fetch(job, fetcher)
    return SourceTurn(store_outcome(config, store, outcome, rules, progress), outcome.http_status, outcome.note)


def ingest_source(config: Config, store: Store, source: SourceConfig,
                  rules: TopicRules | None = None, progress: Progress | None = None) -> IngestReport:
    """One configured source now, a feed on a fetcher of its own and logged as run --once logs it."""
    rules = rules or topic_rules(config)
    if source.path is not None:
        return read_folder(config, store, source, rules, progress)
    with ingest.remote.new_fetcher(config) as fetcher:
        turn = ingest_one(config, store, source, rules, fetcher, progress=progress)
    assert turn.report is not None  # without due_by every skip is reported
    log_fetched(source.name, turn.note, turn.report)
    return turn.report


def count_files(config: Config, path: Path) -> int:
    """How many files an ingest of `path` will look at: the length of a progress bar."""
    source = source_for_path(config, path)
    include, exclude = (source.include, source.exclude) if source else ((), ())
    return sum(1 for _ in ingest.local.iter_files(path, include, exclude)) if path.exists() else 0


def source_for_path(config: Config, path: Path) -> SourceConfig | None:
    resolved = path.resolve()
    for source in config.sources:
        if source.path is None:
            continue
        root = source.path.resolve()
        if resolved == root or root in resolved.parents:
            return source
    return None


# --- stage 1, ingest: a folder read, a feed's outcome stored, a failure recorded ---


def read_folder(config: Config, store: Store, source: SourceConfig, rules: TopicRules,
                progress: Progress | None = None) -> IngestReport:
    """A configured folder (or file): what changed is read and stored with the source's new row."""
    assert source.path is not None
    results = ingest.local.read_local_source(source.path, source.name, parse_options(config),
                                             config.ingest.max_file_size, source.include, source.exclude,
                                             known=store.file_states(source.name))
    report, batch = gather(source.name, results, progress)
    row = status_after_read(source, report, store.source_state(source.name), _now())
    return store_batch(store, report, batch, rules, config.dedup.threshold, source_state=row)


def store_outcome(config: Config, store: Store, outcome: "FetchOutcome", rules: TopicRules,
                  progress: Progress | None = None) -> IngestReport:
    """A feed's outcome and its new state (ingest/remote.py decided it) in one transaction."""
    return store_results(store, outcome.source, outcome, rules, progress, config.dedup.threshold,
                         source_state=outcome.state)


def record_raised(store: Store, source: SourceConfig, report: IngestReport) -> None:
    """A source whose read raised (our bug, which the daemon survives; `report.error` says what):
    its row says so as for any failure, so `aggregator sources` and /healthz show it failed, not pending."""
    store.save_source_state(source.name, **status_after_read(source, report, store.source_state(source.name),
                                                             _now()))


def log_fetched(source: str, note: str, report: IngestReport) -> None:
    """One line per fetch at info level: what the server said and what was stored.

    A failure is not raised to a warning here: the command that asked reports each failing
    source once, in its own words (the CLI's `error:` line, the daemon's fetch line).
    """
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    log.info("%s: %s; %d new, %d updated, %d unchanged%s%s", source, note, report.new, report.updated,
             report.unchanged, skipped, f"; error: {report.error}" if report.error else "")


def _now() -> str:
    return iso_utc(datetime.now(timezone.utc).replace(microsecond=0))


# --- stages 2-4: gather a batch, enrich it, dedup it, store it ---


@dataclass
class Batch:
    """One source's parse results gathered: its articles, and what the parse already worked out for them.

    A builder filled by gather alone; store_batch only reads it.
    """

    articles: dict[str, Article] = field(default_factory=dict)  # by id: a repeated entry counts once
    enriched: set[str] = field(default_factory=set)  # ids of those a parse worker ran the enrich chain on
    fingerprints: dict = field(default_factory=dict)  # dedup fingerprints the parsing worker computed
    files: list[FileState] = field(default_factory=list)  # local files' new states, stored with their articles


def store_results(store: Store, source: str, results: Iterable[ParseResult],
                  rules: TopicRules, progress: Progress | None = None,
                  dedup_threshold: float = DedupConfig.threshold,
                  source_state: dict | None = None) -> IngestReport:
    """gather, then store_batch: enrich and cluster every article, write the batch in one transaction."""
    report, batch = gather(source, results, progress)
    return store_batch(store, report, batch, rules, dedup_threshold, source_state)


def gather(source: str, results: Iterable[ParseResult],
           progress: Progress | None = None) -> tuple[IngestReport, Batch]:
    """Every ParseResult of one source folded into its report and its batch.

    What a parser skipped, read in spite of, or caught is logged here, in the main process.
    """
    report, batch = IngestReport(source=source), Batch()
    for result in results:
        for skipped in result.skipped[:max(0, MAX_SKIP_LINES - len(report.skipped))]:
            log.warning("%s: skipped %s: %s", source, skipped.origin, skipped.reason)
        report.skipped.extend(result.skipped)
        for warning in result.warnings:
            log.warning("%s: %s", source, warning)
        report.warnings.extend(result.warnings)
        for trace in result.tracebacks:  # of what a parser caught at a unit's boundary (skipped or error)
            log.debug("%s: caught while parsing:\n%s", source, trace.rstrip())
        if result.error:
            report.error = result.error
        ids = [article.id for article in result.articles]
        batch.articles.update(zip(ids, result.articles))
        if result.enriched:
            batch.enriched.update(ids)
        else:
            batch.enriched.difference_update(ids)
        batch.fingerprints.update(result.fingerprints)
        if result.file is not None:
            batch.files.append(result.file)
        report.unchanged += result.unchanged
        if progress:
            progress(1)
    return report, batch


def store_batch(store: Store, report: IngestReport, batch: Batch, rules: TopicRules,
                dedup_threshold: float = DedupConfig.threshold,
                source_state: dict[str, Any] | None = None) -> IngestReport:
    """Enrich, dedup and store one gathered batch; `source_state` (the source's new row) goes
    into the same transaction, so a stored ETag or status never covers articles that were not stored."""
    pruned = store.pruned_ids(batch.articles)  # retention removed them; a feed still listing them must not revive them
    articles = [a for a in batch.articles.values() if a.id not in pruned]
    if not articles and not batch.files:  # an unchanged folder, a 304: at most the source's row to write
        if source_state:
            store.save_source_state(report.source, **source_state)
        return _finish(report)
    articles = enrich_batch(store, articles, batch.enriched, rules)
    dedup_rows = None
    if articles:  # only a batch with articles loads dedup (numpy: 0.2 s)
        clustered = dedup.detect.Deduplicator(store, dedup_threshold).assign(articles, batch.fingerprints)
        articles, dedup_rows = list(clustered.articles), clustered.rows
    outcome = store.write_articles(articles, {a.id: list(a.topics) for a in articles}, dedup_rows, files=batch.files,
                                   source_state=(report.source, source_state) if source_state else None)
    report.new, report.updated = outcome.new, outcome.updated
    report.unchanged += outcome.unchanged
    return _finish(report)


def enrich_batch(store: Store, articles: list[Article], done: set[str], rules: TopicRules) -> list[Article]:
    """The batch through the enrich chain (enrich/chain.py), new values in the same order.

    Left as they are: those a parse worker already ran the same chain on (`done`), and
    those stored with the same content hash, which the store does not write again.
    """
    ids = [a.id for a in articles if a.id not in done]
    stored = store.content_hashes(ids) if ids else {}
    chain = enrich.chain.steps(rules)
    return [a if a.id in done or stored.get(a.id) == a.content_hash else enrich.chain.enrich(a, chain)
            for a in articles]


def _finish(report: IngestReport) -> IngestReport:
    if len(report.skipped) > MAX_SKIP_LINES:
        log.warning("%s: skipped %d more inputs (not listed)", report.source, len(report.skipped) - MAX_SKIP_LINES)
    log.debug("%s", report.summary())  # the CLI prints it; the daemon logs its own fetch line
    return report


# --- stage 5: publish; and re-tagging what is stored ---


def publish(config: Config, store: Store, force: bool = False):
    stamp, report = publishing.last_publish.unchanged_report(config, store)  # without feedgen and lxml
    if report is None or force:
        report = publishing.render.publish_changed(config, store, stamp, force)
        publishing.websub.announce(config, report.written)  # on its own thread: the files are out already
    page = publishing.status_page.write_status_page(config, store, force=force)  # source rows change without feeds
    (report.written if page.written else report.unchanged).append(page.path)
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
