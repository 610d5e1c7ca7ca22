"""/metrics in Prometheus text format, for the daemon.

Two kinds of numbers. What happened in this process (fetches by HTTP
status, errors, articles stored, publish durations) are counters and a
histogram kept by prometheus_client, the reference implementation, so the
exposition format and counter semantics are Prometheus' own. What is true
of the stored data (each source's last success and state, articles and
duplicate copies stored) is read from the database at scrape time, so it
survives a restart and never disagrees with `aggregator sources`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from aggregator.models import IngestReport

class Metrics:
    """One registry per daemon (not the process-wide default), so tests can run several."""

    def __init__(self, connect: Callable[[], sqlite3.Connection] | None = None):
        self.registry = CollectorRegistry()
        self.fetches = Counter("aggregator_fetches", "Remote fetches by HTTP status ('error' when none came).",
                               ["status"], registry=self.registry)
        self.errors = Counter("aggregator_source_errors", "Source runs that ended in an error, by source.",
                              ["source"], registry=self.registry)
        self.articles = Counter("aggregator_articles_stored", "Articles written to the store, new or updated.",
                                ["change"], registry=self.registry)
        self.publish_seconds = Histogram("aggregator_publish_duration_seconds", "Time to publish the feeds.",
                                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry)
        if connect is not None:
            self.registry.register(_StoredState(connect))

    def fetched(self, http_status: int | None) -> None:
        self.fetches.labels(str(http_status) if http_status else "error").inc()

    def ingested(self, report: IngestReport) -> None:
        self.articles.labels("new").inc(report.new)
        self.articles.labels("updated").inc(report.updated)
        if report.error:
            self.errors.labels(report.source).inc()

    def published(self, seconds: float) -> None:
        self.publish_seconds.observe(seconds)

    def exposition(self) -> tuple[str, bytes]:
        """(Content-Type, body) in the text format this prometheus_client version speaks."""
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)


class _StoredState:
    """Gauges read from the database at each scrape (a custom collector, as prometheus_client documents)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]):
        self.connect = connect

    def collect(self) -> Iterator[Metric]:
        last_success = GaugeMetricFamily("aggregator_source_last_success_timestamp_seconds",
                                         "When each source last fetched or read successfully (Unix time).",
                                         labels=["source"])
        up = GaugeMetricFamily("aggregator_source_up", "1 when the source's last attempt succeeded, else 0.",
                               labels=["source"])
        conn = self.connect()
        try:
            for name, status, success in conn.execute("SELECT name, status, last_success FROM sources"):
                if success:
                    last_success.add_metric([name], _unix(success))
                up.add_metric([name], 1.0 if status == "ok" else 0.0)
            articles, copies = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE cluster_id IS NOT NULL AND cluster_id != id) "
                "FROM articles").fetchone()
        finally:
            conn.close()
        yield last_success
        yield up
        yield GaugeMetricFamily("aggregator_articles", "Articles in the store.", value=articles)
        yield GaugeMetricFamily("aggregator_duplicates_merged",
                                "Stored articles that are copies of another story (joined to its cluster).",
                                value=copies)


def _unix(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0
