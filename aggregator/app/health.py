"""What /healthz reports: each source's last read, from the database, and from the daemon what fails now.

    health_report     the `sources` rows as /healthz lists them; "degraded" while any source fails
    database_health   the same from a connection of its own; "failing" when the database cannot be read
    Faults            the daemon's storage and publishing faults: a frozen value, each
                      transition a method returning the next one (the daemon swaps it under a lock)
    daemon_health     database_health with the daemon's faults and publisher on top

Fields are only ever added (scripts read them): status, reason, failing,
articles, sources, and from the daemon pid, publishes, storage, publishing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.config import Config
from aggregator.redact import redact
from aggregator.storage.faults import storage_fault
from aggregator.storage.store import BUSY_TIMEOUT_MS, Store

if TYPE_CHECKING:
    from aggregator.app.debounce import DebouncedRunner

FAILING = ("error", "backing off", "gone")  # source statuses /healthz reports as failing


def health_report(config: Config, store: Store) -> dict[str, Any]:
    """Each configured source's last fetch, as /healthz shows it; "degraded" while any source fails."""
    counts = store.source_counts()
    sources = []
    for source in config.sources:
        state = store.source_state(source.name)
        sources.append({
            "name": source.name, "kind": source.kind, "location": redact(source.location),
            "enabled": source.enabled, "interval": source.interval,
            "status": state.get("status") or ("disabled" if not source.enabled else "pending"),
            "last_fetch": state.get("last_fetch"), "last_success": state.get("last_success"),
            "last_error": redact(state["last_error"]) if state.get("last_error") else None,
            "error_count": state.get("error_count") or 0,
            "http_status": state.get("http_status"), "articles": counts.get(source.name, 0),
            "warning": redact(state["warning"]) if state.get("warning") else None,  # read in spite of (entry cap)
        })
    failing = [s["name"] for s in sources if s["status"] in FAILING]
    reason = f"{len(failing)} of {len(sources)} sources failing: {', '.join(failing)}" if failing else None
    return {"status": "degraded" if failing else "ok", "reason": reason, "failing": failing,
            "articles": store.count(), "sources": sources}


def database_health(config: Config) -> dict[str, Any]:
    """health_report from a connection of its own; "failing" with the fault's line when the database
    cannot be read (corrupt, not a database, unreadable), sources then listed from the config alone."""
    database = config.storage.database
    try:
        with Store(database) as store:
            return health_report(config, store)
    except Exception as exc:
        fault = storage_fault(exc, database, config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
        if fault is None:
            raise
        sources = [{"name": s.name, "kind": s.kind, "location": redact(s.location), "enabled": s.enabled,
                    "interval": s.interval, "status": "unknown", "last_fetch": None, "last_success": None,
                    "last_error": None, "error_count": 0, "http_status": None, "articles": None}
                   for s in config.sources]
        return {"status": "failing", "reason": fault.line, "failing": [], "articles": None, "sources": sources}


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Faults:
    """What is failing now, for /healthz. Each transition returns the next value and touches nothing,
    so the daemon decides what to log by comparing the value before with the line it meets."""

    storage: str | None = None  # the storage fault's line, until a write succeeds again
    publish: str | None = None  # why the last publish failed, until one succeeds
    since: str | None = None  # when the failing began
    last_publish: str | None = None  # when a publish last succeeded
    stopped: frozenset[str] = frozenset()  # sources a storage fault stopped: fetched again after

    def storage_failed(self, line: str, source: str | None, now: str) -> Faults:
        stopped = self.stopped | {source} if source is not None else self.stopped
        return replace(self, storage=line, since=self.since or now, stopped=stopped)

    def publish_failed(self, line: str, database: bool, now: str) -> Faults:
        """`database`: the fault is the database's, so storage fails too, not only publishing."""
        return replace(self, publish=line, since=self.since or now, storage=line if database else self.storage)

    def publish_is_news(self, line: str, database: bool) -> bool:
        """Whether a failed publish's line is worth logging: neither publishing nor (for the
        database's fault) storage already failed with it."""
        return self.publish != line and not (database and self.storage == line)

    def published(self, now: str) -> Faults:
        """A publish succeeded: nothing fails any more."""
        return Faults(last_publish=now)


def daemon_health(config: Config, faults: Faults, publisher: "DebouncedRunner", database: Path) -> dict[str, Any]:
    """/healthz: "failing" (HTTP 503) while storage or publishing fails, else "degraded" while a
    source fails, else "starting" until the first publish has run, else "ok"; "reason" says why."""
    report = database_health(config)
    retry = publisher.retry_in()
    if faults.storage or faults.publish:
        report["status"], report["reason"] = "failing", faults.storage or faults.publish
    elif report["status"] == "ok" and publisher.runs == 0:  # a source failing already is "degraded"
        report["status"], report["reason"] = "starting", "the first fetch and publish are under way"
    report["pid"] = os.getpid()
    report["publishes"] = publisher.runs
    report["storage"] = {"status": "failing" if faults.storage else "ok", "error": faults.storage,
                         "failing_since": faults.since if faults.storage else None,
                         "database": str(database)}
    report["publishing"] = {"status": "failing" if faults.publish else "ok" if faults.last_publish else "pending",
                            "error": faults.publish, "failing_since": faults.since if faults.publish else None,
                            "last_success": faults.last_publish, "failures": publisher.failures,
                            "next_retry_in": round(retry, 1) if retry is not None else None}
    return report
