"""`aggregator run`: the long-running process people leave alone for months.

    start:    lock <database>.lock (instance.py: flock, the kernel drops it when we die)
              one APScheduler job per source (schedule.py: interval + jitter, first run
              now, coalesced, never two runs of one source at once)
              the feed server in a thread (server.py)
    each job: pipeline.ingest_one, the ingest path `run --once` takes too, on the
              daemon's long-lived fetcher -> one log line -> publish requested if
              anything changed (source_jobs.py)
    publish:  one debounced thread (debounce.py): prune per [storage] retention, then
              publish, so a burst of sources finishing together costs one publish; a
              failed publish is retried with backoff (1 s doubling to 30 s) until one succeeds
    faults:   a storage fault (disk full, read-only, corrupt, locked) is logged once,
              /healthz says "failing" with the reason (health.py), the daemon goes on;
              once a write succeeds again it publishes what is stored and fetches again
              the sources the fault stopped
    signals:  SIGHUP reload config.toml (a bad edit is logged, the old config keeps running)
              SIGTERM / SIGINT stop scheduling, let running batches finish, close, exit
    systemd:  READY=1 once serving and scheduled, WATCHDOG=1 from the main loop,
              RELOADING=1 / STOPPING=1 around a reload and a stop (systemd.py)
    metrics:  /metrics (metrics.py): fetches, errors, articles stored, publish durations

Crash safety comes from the layers below: each source batch is one SQLite
transaction and every feed file is replaced atomically, so a SIGKILL at any
moment loses at most the batch in flight, which the next start fetches again.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from aggregator import pipeline
from aggregator.app import systemd
from aggregator.app.daemon_logging import configure_logging
from aggregator.app.debounce import DebouncedRunner
from aggregator.app.health import Faults, daemon_health, now_utc
from aggregator.app.instance import AlreadyRunning, InstanceLock
from aggregator.app.metrics import Metrics
from aggregator.app.schedule import Schedule
from aggregator.app.server import make_server, start_in_thread
from aggregator.app.source_jobs import SourceJobs
from aggregator.app.thread_stores import ThreadStores
from aggregator.config import Config, ConfigError, load_config
from aggregator.enrich.topics import TopicRules
from aggregator.gcpolicy import usual_passes
from aggregator.publish.names import ALL_TOPIC, feed_url
from aggregator.storage.faults import StorageFault, storage_fault
from aggregator.storage.store import BUSY_TIMEOUT_MS

log = logging.getLogger("aggregator.app.daemon")

PUBLISH_DELAY = 1.0           # quiet time after the last ingest before publishing
PUBLISH_MAX_DELAY = 30.0      # publish at least this often while sources keep changing
SHUTDOWN_GRACE = 5.0          # how long SIGTERM waits for running batches


class Daemon:
    def __init__(self, config_file: Path, config: Config, *, serve: bool = True,
                 publish_delay: float = PUBLISH_DELAY, out: Callable[[str], None] | None = None):
        self.config_file = config_file
        self.database = config.storage.database
        self._current: tuple[Config, TopicRules] = (config, pipeline.topic_rules(config))
        self.serve = serve
        self.out = out or (lambda line: print(line, flush=True))
        self.stores = ThreadStores(self.database)
        self.metrics = Metrics(connect=self._read_only_connection)
        self.lock = InstanceLock(self.database)
        self.publisher = DebouncedRunner(self._publish_cycle, publish_delay, PUBLISH_MAX_DELAY)
        self.jobs = SourceJobs(lambda: self._current, self.stores, self._storage_failed, self.publisher.request,
                               lambda: self._stop_requested, self.metrics)
        self.schedule = Schedule(self.jobs.run, self.publisher.request)
        self.server = None
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self.faults = Faults()
        self._faults_lock = threading.Lock()

    @property
    def config(self) -> Config:
        return self._current[0]

    # --- lifecycle ---

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit status."""
        self.lock.acquire()  # AlreadyRunning, or a storage fault, propagates to the CLI as one line
        try:
            self._install_signals()
            try:
                self.stores.get()  # migrates before any job runs
            except Exception as exc:  # a storage fault: logged, on /healthz, retried; the feeds are still served
                self._storage_failed(self._fault_of(exc))
            _remove_temp_files(self.config.storage.feeds_dir)
            if self.serve:
                self._start_server()
            self.schedule.start(self.config)
            self.publisher.start()
            self.publisher.request()  # feeds exist even if no source has anything new
            self._announce()
            systemd.ready(f"{len(self.config.sources)} sources")
            self._main_loop()
            systemd.stopping()
            return self._shutdown()
        finally:
            self.lock.release()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: Any) -> None:
        if self._stop_requested:  # a second Ctrl-C: the user means it
            os._exit(130)
        self._stop_requested = True
        self._wake.set()

    def _on_hup(self, signum: int, frame: Any) -> None:
        self._reload_requested = True
        self._wake.set()

    def _main_loop(self) -> None:
        ping = systemd.watchdog_interval()  # None unless the unit sets WatchdogSec=
        while not self._stop_requested:
            # Only a signal (it sets _wake) or the watchdog needs this thread: an idle daemon
            # with nothing due does not wake at all (docs/decisions/0018).
            self._wake.wait(min(1.0, ping) if ping else None)
            self._wake.clear()
            if ping:
                systemd.watchdog()
            if self._reload_requested and not self._stop_requested:
                self._reload_requested = False
                systemd.notify("RELOADING=1")
                self.reload()
                systemd.ready(f"{len(self.config.sources)} sources")

    def _start_server(self) -> None:
        self.server = make_server(self.config.server.listen, self.config.storage.feeds_dir, self.health,
                                  published=lambda: self.faults.last_publish is not None,
                                  metrics=self.metrics.exposition)
        start_in_thread(self.server)

    def _announce(self) -> None:
        config = self.config
        enabled = [s for s in config.sources if s.enabled]
        self.out(f"aggregator: {len(enabled)} sources, database {self.database}, pid {os.getpid()}")
        if self.server is not None:
            self.out(f"serving {config.storage.feeds_dir} at {self.server.url} (health: {self.server.url}healthz)")
        self.out("subscribe to:")
        for title, url in feed_urls(config):
            self.out(f"  {url}  {title}")

    def _shutdown(self) -> int:
        log.info("stopping: waiting up to %.0fs for running fetches", SHUTDOWN_GRACE)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        self.schedule.shutdown()
        finished = self.jobs.wait_idle(deadline)
        finished = self.publisher.stop(max(0.1, deadline - time.monotonic())) and finished
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if not finished:
            # A batch still in flight is one uncommitted transaction: SQLite rolls it back.
            log.warning("stopping without waiting for a fetch still in progress; it runs again next start")
            logging.shutdown()
            os._exit(0)
        self.stores.close_all()
        self.jobs.close()
        log.info("stopped")
        return 0

    def _read_only_connection(self) -> sqlite3.Connection:
        """For /metrics: its own read-only connection, so a scrape never waits on a writer's transaction."""
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)

    def health(self) -> dict[str, Any]:
        """/healthz (health.daemon_health): the database's view with this process's faults on top."""
        return daemon_health(self.config, self.faults, self.publisher, self.database)

    # --- publishing ---

    def _publish_cycle(self) -> bool:
        """Prune, publish, index for search; False (tried again with backoff) on a storage fault or our bug."""
        config = self.config
        try:
            store = self.stores.get()
            if self.faults.storage:
                store.check_writable()  # the database may have been the fault, not only publishing
            keep, most = config.storage.keep_days, config.storage.max_articles_per_source
            if keep or most:
                pruned = store.prune(keep, most)
                if pruned:
                    log.info("retention: pruned %d articles (keep_days=%d, max_articles_per_source=%d)",
                             len(pruned), keep, most)
            started = time.monotonic()
            pipeline.publish(config, store)  # logs its own line
            self.metrics.published(time.monotonic() - started)
            store.index_pending_text()  # now, while idle, so that a search later finds the index current
        except Exception as exc:
            self._publish_failed(exc)
            return False
        self._publish_succeeded()
        return True

    # --- faults ---

    def _fault_of(self, exc: Exception) -> StorageFault:
        """The storage fault exc is; anything else is our bug and raises on."""
        fault = storage_fault(exc, self.database, self.config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
        if fault is None:
            raise exc
        return fault

    def _storage_failed(self, fault: StorageFault, source: str | None = None) -> None:
        """Log a new fault once; /healthz fails; the publisher retries (its first write is the probe)."""
        with self._faults_lock:
            before, self.faults = self.faults, self.faults.storage_failed(fault.line, source, now_utc())
        if before.storage != fault.line:
            log.error("%s; the daemon goes on, retrying with backoff (1 s doubling to 30 s) and publishing once "
                      "it can write (logged again only if the fault changes)", fault)
        self.stores.reopen_all()  # a repaired or replaced file is opened afresh
        self.publisher.request()

    def _publish_failed(self, exc: Exception) -> None:
        fault = storage_fault(exc, self.database, self.config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
        line = fault.line if fault is not None else f"publish failed: {type(exc).__name__}: {exc}"
        database = fault is not None and fault.database
        with self._faults_lock:
            before, self.faults = self.faults, self.faults.publish_failed(line, database, now_utc())
        if before.publish_is_news(line, database):  # our bug (no storage fault) comes with its traceback
            log.error("%s; publishing is retried with backoff (1 s doubling to 30 s) until it succeeds "
                      "(logged again only if the error changes)", line, exc_info=exc if fault is None else None)
        else:
            log.debug("publish still failing: %s", line)
        if fault is not None:
            self.stores.reopen_all()

    def _publish_succeeded(self) -> None:
        with self._faults_lock:
            before, self.faults = self.faults, self.faults.published(now_utc())
        if not (before.publish or before.storage):
            return
        stopped = before.stopped
        log.warning("recovered: writing and publishing work again (failing since %s)%s", before.since,
                    f"; fetching again the {len(stopped)} source{'s' if len(stopped) > 1 else ''} the fault stopped"
                    if stopped else "")
        self.schedule.run_now(stopped)

    # --- reload ---

    def reload(self) -> bool:
        """SIGHUP: the edited config replaces the running one only if it is entirely valid."""
        try:
            new = load_config(self.config_file, require_sources=True)  # an emptied file must not wipe the feeds
        except ConfigError as exc:
            for line in exc.problems:
                log.error("reload refused: %s", line)
            log.error("reload refused: still running the previous config; fix the file and send SIGHUP again")
            return False
        old = self.config
        new = self._keep_unchangeable(old, new)
        self._current = (new, pipeline.topic_rules(new))
        changes = self.schedule.resync(old, new)
        for name in changes.removed:
            self.jobs.forget(name)
        if _tagging(old) != _tagging(new):
            self._retag(new)
        self.publisher.request()
        log.info("reload: %d sources (%d added, %d removed, %d changed)",
                 len([s for s in new.sources if s.enabled]), len(changes.added), len(changes.removed),
                 changes.changed)
        return True

    def _retag(self, config: Config) -> None:
        """Stored articles re-tagged for the reloaded topics; a storage fault is reported, not raised."""
        try:
            changes = pipeline.retag(config, self.stores.get())
        except Exception as exc:
            self._storage_failed(self._fault_of(exc))
            log.error("reload: topics changed, but stored articles could not be re-tagged (see above); new "
                      "articles get the new topics; send SIGHUP again once storage works to re-tag the others")
            return
        log.info("reload: topics changed; re-tagged: %s",
                 ", ".join(f"{slug} +{g}/-{l}" for slug, (g, l) in changes.items()) or "no article changed")

    def _keep_unchangeable(self, old: Config, new: Config) -> Config:
        if new.storage.database != old.storage.database:
            log.error("reload: [storage] database cannot change while running; restart to use %s",
                      new.storage.database)
            new = replace(new, storage=replace(new.storage, database=old.storage.database))
        if new.server.listen != old.server.listen and self.server is not None:
            log.warning("reload: [server] listen changes on restart; still serving at %s", self.server.url)
        return new


def _tagging(config: Config) -> tuple:
    return config.topics, tuple((s.name, s.topics) for s in config.sources)


def feed_urls(config: Config) -> list[tuple[str, str]]:
    """(title, URL) for each topic's Atom feed (or its first format), then the OPML of all."""
    fmt = "atom" if "atom" in config.publish.formats else config.publish.formats[0]
    urls = [(t.title, feed_url(config.site.base_url, t.slug, fmt)) for t in [*config.topics, ALL_TOPIC]]
    urls.append(("All topics (OPML, import into a reader)", f"{config.site.base_url}topics.opml"))
    return urls


def _remove_temp_files(feeds_dir: Path) -> None:
    """Temp files of a publish that was killed mid-write (the real files were never touched)."""
    if not feeds_dir.is_dir():
        return
    for folder in (feeds_dir, feeds_dir / "articles"):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:  # a read-only feeds/: the first publish says so
                    log.debug("could not remove %s: %s", path, exc)


def run_daemon(config_file: Path, config: Config, *, explicit_log_level: bool, serve: bool = True) -> int:
    """The CLI entry: one clear line and status 1 for a second instance or a busy port."""
    usual_passes()  # memory stays flat over weeks; the daemon's work is small at a time
    configure_logging(explicit_log_level)
    daemon = Daemon(config_file, config, serve=serve)
    try:
        return daemon.run()
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if daemon.server is None and daemon.serve and "listen" in str(exc):
            print(f"error: {exc.strerror or exc}", file=sys.stderr)
            return 1
        fault = storage_fault(exc, config.storage.database, config.storage.feeds_dir)
        if fault is None:
            raise
        print(f"error: {fault}", file=sys.stderr)  # the <database>.lock file cannot be written
        return 3
