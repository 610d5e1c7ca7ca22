"""What one scheduled run of one source does in the daemon.

The ingest itself is pipeline.ingest_one, the path `run --once` and `ingest`
take too, so a source's row in `sources` is written by the same code
whichever command read it. What is the daemon's own is here:

    the fetcher   one Fetcher for the daemon's life, so connections and TLS set-up
                  are reused from one cycle to the next
    a raise       our bug in a parser does not stop the daemon: the source's row
                  records it as the source's error (pipeline.record_raised)
    a storage     fault is the daemon's, not the source's: reported once, and the
                  source runs again once storage recovers
    the log       one line per fetch; an error loudly only when it changes
    publishing    requested when the run stored something new or updated
    shutdown      running jobs are counted, so SIGTERM can wait for them
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from aggregator import ingest, pipeline
from aggregator.app.schedule import due_by
from aggregator.app.thread_stores import ThreadStores
from aggregator.config import Config, FetchConfig, SourceConfig
from aggregator.enrich.topics import TopicRules
from aggregator.models import IngestReport
from aggregator.storage.faults import StorageFault, storage_fault
from aggregator.storage.store import BUSY_TIMEOUT_MS, Store

if TYPE_CHECKING:
    from aggregator.app.metrics import Metrics
    from aggregator.ingest.http import Fetcher

log = logging.getLogger("aggregator.app.daemon")


def fetch_line_level(error: str | None, previous: str | None) -> tuple[int, str]:
    """The level of a fetch's log line and what follows it: an error is logged loudly only when it
    changes, a recovery as a warning, anything else at info."""
    if error and error != previous:
        return logging.ERROR, f" error={error} (will retry; logged again only if the error changes)"
    if error:
        return logging.INFO, " still failing"
    if previous:
        return logging.WARNING, " recovered"
    return logging.INFO, ""


class SourceJobs:
    """The job each source's schedule runs (`run(name)`), and what it shares between runs."""

    def __init__(self, current: Callable[[], tuple[Config, TopicRules]], stores: ThreadStores,
                 on_storage_fault: Callable[[StorageFault, str], None], on_stored: Callable[[], None],
                 stopping: Callable[[], bool], metrics: Metrics | None = None):
        self.current = current  # the running config and its topic rules (a reload replaces both at once)
        self.stores = stores
        self.on_storage_fault = on_storage_fault
        self.on_stored = on_stored  # something new or updated: publish
        self.stopping = stopping
        self.metrics = metrics
        self._errors: dict[str, str | None] = {}  # each source's last error, to log a changed one loudly
        self._fetcher: tuple[FetchConfig, Fetcher] | None = None
        self._fetcher_lock = threading.Lock()
        self._active = 0
        self._active_cond = threading.Condition()

    def run(self, name: str) -> None:
        config, rules = self.current()
        source = config.source(name)
        if source is None or not source.enabled or self.stopping():
            return
        with self._busy():
            started = time.monotonic()
            turn = self._ingest(config, rules, source)
            if turn is None or turn.report is None:
                return  # a storage fault, or a feed backing off or told to wait: nothing to log
            self._log_fetch(source, turn.report, turn.http_status, time.monotonic() - started)
            if self.metrics is not None:
                if source.url:
                    self.metrics.fetched(turn.http_status)
                self.metrics.ingested(turn.report)
        if turn.report.new or turn.report.updated:
            self.on_stored()

    def _ingest(self, config: Config, rules: TopicRules, source: SourceConfig) -> pipeline.SourceTurn | None:
        store: Store | None = None
        try:
            store = self.stores.get()
            fetcher = self.fetcher(config) if source.url else None  # a folder-only daemon never loads HTTP
            turn = pipeline.ingest_one(config, store, source, rules, fetcher, due_by=due_by(source))
        except Exception as exc:  # a storage fault, or our bug (a parser that raised): the daemon goes on
            fault = self._fault(config, exc)
            if fault is not None:  # not the source's fault: it is fetched again once storage recovers
                log.debug("fetch %s: storage fault", source.name, exc_info=True)
                self.on_storage_fault(fault, source.name)
                return None
            log.debug("fetch %s raised", source.name, exc_info=True)
            report = IngestReport(source=source.name, error=f"{type(exc).__name__}: {exc} (raised while fetching "
                                                            "or parsing; --log-level debug shows the traceback)")
            self._record_raised(config, store, source, report)  # failed, not "pending"
            return pipeline.SourceTurn(report)
        if turn.skip:
            log.debug("fetch %s: not fetched: %s", source.name, turn.skip)
        return turn

    def _record_raised(self, config: Config, store: Store | None, source: SourceConfig,
                       report: IngestReport) -> None:
        """The source's error on record (a storage fault meeting that write is the daemon's, reported once)."""
        if store is None:
            return
        try:
            pipeline.record_raised(store, source, report)
        except Exception as exc:
            fault = self._fault(config, exc)
            if fault is None:
                raise
            self.on_storage_fault(fault, source.name)

    def _fault(self, config: Config, exc: Exception) -> StorageFault | None:
        return storage_fault(exc, self.stores.database, config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)

    def fetcher(self, config: Config) -> Fetcher:
        """The daemon's one Fetcher, kept for its whole life so connections and TLS set-up are reused.

        A reload that changes [fetch] gets a new one; the old one's idle
        connections close, and fetches still running on it finish first.
        """
        with self._fetcher_lock:
            if self._fetcher is None or self._fetcher[0] != config.fetch:
                old, self._fetcher = self._fetcher, (config.fetch, ingest.remote.new_fetcher(config))
                if old is not None:
                    old[1].close()
            return self._fetcher[1]

    def forget(self, name: str) -> None:
        """A source a reload removed: a source added later under its name starts with no error."""
        self._errors.pop(name, None)

    def _log_fetch(self, source: SourceConfig, report: IngestReport, http_status: int | None,
                   elapsed: float) -> None:
        previous = self._errors.get(source.name)
        self._errors[source.name] = report.error
        line = (f"fetch {source.name}: status={http_status or '-'} new={report.new} updated={report.updated} "
                f"unchanged={report.unchanged} skipped={len(report.skipped)} time={elapsed:.2f}s")
        level, tail = fetch_line_level(report.error, previous)
        log.log(level, "%s%s", line, tail)

    # --- shutdown ---

    def wait_idle(self, deadline: float) -> bool:
        """Whether every running job finished by `deadline` (time.monotonic())."""
        with self._active_cond:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._active_cond.wait(remaining)
        return True

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher[1].close()

    @contextmanager
    def _busy(self) -> Iterator[None]:
        with self._active_cond:
            self._active += 1
        try:
            yield
        finally:
            with self._active_cond:
                self._active -= 1
                self._active_cond.notify_all()
