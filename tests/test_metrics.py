"""/metrics: counters from this process, gauges from a real database, parsed by prometheus_client's own parser."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from aggregator.app.cli import cli
from aggregator.app.metrics import Metrics
from aggregator.config import load_config
from aggregator.models import IngestReport


def samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    text = metrics.exposition()[1].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_follow_what_happened() -> None:
    metrics = Metrics()
    for status in (200, 304, 304, None):
        metrics.fetched(status)
    metrics.ingested(IngestReport("Wire", new=3, updated=1))
    metrics.ingested(IngestReport("Dead", error="network error"))
    metrics.published(0.2)
    got = samples(metrics)
    assert got[("aggregator_fetches_total", (("status", "304"),))] == 2
    assert got[("aggregator_fetches_total", (("status", "error"),))] == 1
    assert got[("aggregator_articles_stored_total", (("change", "new"),))] == 3
    assert got[("aggregator_source_errors_total", (("source", "Dead"),))] == 1
    assert got[("aggregator_publish_duration_seconds_count", ())] == 1


def test_stored_state_is_read_at_scrape_time(project: Path) -> None:
    assert CliRunner().invoke(cli, ["-c", str(project / "config.toml"), "run", "--once"]).exit_code == 0
    database = load_config(project / "config.toml").storage.database
    metrics = Metrics(connect=lambda: sqlite3.connect(f"file:{database}?mode=ro", uri=True))
    got = samples(metrics)
    db = sqlite3.connect(database)
    assert got[("aggregator_articles", ())] == db.execute("SELECT count(*) FROM articles").fetchone()[0] == 36
    copies = db.execute("SELECT count(*) FROM articles WHERE cluster_id != id").fetchone()[0]
    assert got[("aggregator_duplicates_merged", ())] == copies
    assert got[("aggregator_source_up", (("source", "Local newsroom"),))] == 1.0
    assert got[("aggregator_source_last_success_timestamp_seconds", (("source", "Local newsroom"),))] > 1.7e9
