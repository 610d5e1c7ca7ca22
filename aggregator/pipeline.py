"""The stages, in order. Read this first.

    ingest(source):  read    sources/local.py (files)  or sources/http.py + sources/feed.py (feeds)
                     tag     topics.py                 topic rules -> slugs
                     dedup   dedup.py                  which stored story is this a copy of
                     store   store.py                  one transaction per source batch
    publish():       related related.py                related posts per entry
                     render  publish.py                Atom, RSS, JSON Feed, index.html, OPML
                     write   publish.py                atomic, only files that changed

A source's failure is a value (IngestReport.error / .skipped), never an
exception that stops the other sources. Our own bugs still raise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterable

from .config import Config, SourceConfig
from .models import Article, IngestReport, ParseResult
from .sources.local import ParseOptions, read_local_source
from .store import Store
from .topics import TopicRules

log = logging.getLogger("aggregator")

Progress = Callable[[int], None]


def topic_rules(config: Config) -> TopicRules:
    return TopicRules(config.topics, {s.name: s.topics for s in config.sources})


def parse_options(config: Config) -> ParseOptions:
    return ParseOptions(known_categories=config.ingest.known_categories)


def ingest_source(config: Config, store: Store, source: SourceConfig,
                  rules: TopicRules | None = None, progress: Progress | None = None) -> IngestReport:
    """Read one configured source and store what it yields as one batch."""
    rules = rules or topic_rules(config)
    if source.path is None:
        from .sources.remote import fetch_source  # lazily: httpx and feedparser are slow to import

        results = fetch_source(config, store, source)
    else:
        results = read_local_source(source.path, source.name, parse_options(config),
                                    config.ingest.max_file_size, source.include, source.exclude)
    return store_results(store, source.name, results, rules, progress)


def ingest_path(config: Config, store: Store, path: Path,
                rules: TopicRules | None = None, progress: Progress | None = None) -> IngestReport:
    """Ad hoc ingest of a file or folder; it belongs to the configured source that contains it."""
    source = source_for_path(config, path)
    if source is not None:
        rules = rules or topic_rules(config)
        results = read_local_source(path, source.name, parse_options(config), config.ingest.max_file_size,
                                    source.include, source.exclude)
        root = source.path if source.path.is_dir() else source.path.parent
        results = (_rebase(r, source, root) for r in results)
        return store_results(store, source.name, results, rules, progress)
    name = f"local:{path.resolve().name if path.is_dir() else path.resolve().parent.name}"
    results = read_local_source(path, name, parse_options(config), config.ingest.max_file_size)
    return store_results(store, name, results, rules or topic_rules(config), progress)


def _rebase(result: ParseResult, source: SourceConfig, root: Path) -> ParseResult:
    """Give ad hoc files the ids they get when their source runs, so there is one copy."""
    from .sources.local import local_article_id

    for article in result.articles:
        relative = Path(article.origin).resolve().relative_to(root.resolve()).as_posix()
        article.id = local_article_id(source.name, relative)
    return result


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
                  rules: TopicRules, progress: Progress | None = None) -> IngestReport:
    """Tag every article, then write the whole batch in one transaction."""
    report = IngestReport(source=source)
    batch: dict[str, Article] = {}
    for result in results:
        for skipped in result.skipped:
            log.warning("%s: skipped %s: %s", source, skipped.origin, skipped.reason)
        report.skipped.extend(result.skipped)
        if result.error:
            report.error = result.error
        for article in result.articles:
            batch[article.id] = article
        if progress:
            progress(1)
    articles = list(batch.values())
    tags = {a.id: rules.tags(a) for a in articles}
    for article in articles:
        article.topics = tags[article.id]
    outcome = store.write_articles(articles, tags)
    report.new, report.updated, report.unchanged = outcome.new, outcome.updated, outcome.unchanged
    log.info("%s", report.summary())
    return report


def ingest_all(config: Config, store: Store) -> list[IngestReport]:
    rules = topic_rules(config)
    return [ingest_source(config, store, s, rules) for s in config.sources if s.enabled]


def publish(config: Config, store: Store):
    from .publish import publish as publish_feeds  # lazily: feedgen and lxml

    report = publish_feeds(config, store)
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
