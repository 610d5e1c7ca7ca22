"""`aggregator run`: the long-running process people leave alone for months.

    start:    lock <database>.lock (flock; the kernel drops it when we die)
              one APScheduler job per source (interval + jitter, first run now,
              coalesced, never two runs of one source at once)
              the feed server in a thread
    each job: pipeline.ingest_source -> one log line -> publish requested if anything changed
    publish:  one debounced thread: prune per [storage] retention, then publish,
              so a burst of sources finishing together costs one publish; a failed
              publish is retried with backoff (1 s doubling to 30 s) until one succeeds
    faults:   a storage fault (disk full, read-only, corrupt, locked) is logged once,
              /healthz says "failing" with the reason, the daemon goes on; once a
              write succeeds again it publishes what is stored and fetches again the
              sources the fault stopped
    signals:  SIGHUP reload config.toml (a bad edit is logged, the old config keeps running)
              SIGTERM / SIGINT stop scheduling, let running batches finish, close, exit

Crash safety comes from the layers below: each source batch is one SQLite
transaction and every feed file is replaced atomically, so a SIGKILL at any
moment loses at most the batch in flight, which the next start fetches again.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from aggregator import pipeline
from aggregator.config import Config, ConfigError, FetchConfig, SourceConfig, load_config
from aggregator.models import IngestReport
from aggregator.redact import redact
from aggregator.storage.faults import StorageFault, storage_fault
from aggregator.storage.store import BUSY_TIMEOUT_MS, Store
from aggregator.enrich.topics import TopicRules

if TYPE_CHECKING:
    from aggregator.ingest.http import Fetcher

log = logging.getLogger("aggregator.app.daemon")

DEFAULT_INTERVAL = 900.0      # a source whose interval is "auto" and not yet learned
MAX_JITTER = 60.0             # seconds; jitter is 10% of the interval up to this
PUBLISH_DELAY = 1.0           # quiet time after the last ingest before publishing
PUBLISH_MAX_DELAY = 30.0      # publish at least this often while sources keep changing
RETENTION_EVERY = 3600.0      # time-based pruning happens even when nothing is fetched
SHUTDOWN_GRACE = 5.0          # how long SIGTERM waits for running batches
RETRY_FIRST = 1.0             # a failed publish is tried again after this many seconds,
RETRY_MAX = 30.0              # doubling up to this, until one succeeds: recovered within a minute of a fault clearing
MAX_WORKERS = 8
FAILING = ("error", "backing off", "gone")  # source statuses /healthz reports as failing


class AlreadyRunning(Exception):
    """Another daemon holds the database's lock; str() is the message for the user."""


# --- single instance ---


class InstanceLock:
    """An flock on `<database>.lock`: exclusive while we live, released by the kernel when we die.

    The file itself is never deleted (deleting it would let two processes
    lock two different inodes); it only holds the owner's pid for the message.
    """

    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning(
                    f"{self.database}: another aggregator daemon (pid {owner}) is already running "
                    f"on this database; stop it first, or give this config its own [storage] database"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --- storage shared by worker threads ---


class DaemonStore(Store):
    """A Store whose write transactions are serialized across the daemon's threads.

    Every thread has its own connection (SQLite connections must not run two
    transactions at once); fetching and parsing run in parallel and only the
    short write of a batch waits for the others. CLI processes still share
    the file through WAL and the busy timeout.
    """

    _write_lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._write_lock:
            with super().transaction():
                yield


class ThreadStores:
    """One DaemonStore per thread, all closed at shutdown.

    After a storage fault every thread opens its connection afresh (reopen_all):
    a database file that was replaced (restored from a backup, recovered) is
    then the one used, not the old file the connection still holds.
    """

    def __init__(self, database: Path):
        self.database = database
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()
        self._generation = 0

    def get(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is not None and self._local.generation != self._generation:
            self._local.store = None
            with self._lock:
                if store in self._all:
                    self._all.remove(store)
            _close_quietly(store)
            store = None
        if store is None:
            generation = self._generation
            store = DaemonStore(self.database)  # a storage fault raises here too
            self._local.store, self._local.generation = store, generation
            with self._lock:
                self._all.append(store)
        return store

    def reopen_all(self) -> None:
        """Each thread's next get() opens a new connection (each closes its own: connections are not shared)."""
        self._generation += 1

    def close_all(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for store in stores:
            _close_quietly(store)


def _close_quietly(store: Store) -> None:
    try:
        store.close()
    except Exception:  # closing is best effort: at exit, or a connection to a broken file
        pass


# --- debounced publishing ---


class DebouncedRunner:
    """Runs `action` once things go quiet: `delay` after the last request, at most `max_delay` after the first.

    A dedicated thread rather than a scheduler job, so a request that comes
    in while the action runs is never dropped: it simply causes one more run.
    A run that fails (`action` returns False or raises) is run again after
    `retry_first` seconds, doubling up to `retry_max`, until one succeeds;
    requests meanwhile do not cut that wait short.
    """

    def __init__(self, action: Callable[[], bool | None], delay: float, max_delay: float,
                 retry_first: float = RETRY_FIRST, retry_max: float = RETRY_MAX):
        self.action = action
        self.delay = delay
        self.max_delay = max_delay
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.runs = 0  # finished runs, failed ones included
        self.failures = 0  # failed runs since the last that succeeded
        self._first: float | None = None
        self._last: float | None = None
        self._retry_at: float | None = None
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        with self._cond:
            now = time.monotonic()
            self._first = self._first if self._first is not None else now
            self._last = now
            self._cond.notify()

    def retry_in(self) -> float | None:
        """Seconds until a failed run is tried again; None when none failed."""
        with self._cond:
            return None if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())

    def stop(self, timeout: float) -> bool:
        """Stop after the run in progress (a pending one is left for the next start); True if stopped."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while self._wait_until_due():
            try:
                ok = self.action() is not False
            except Exception:  # our bug: log it with its traceback, keep the daemon alive, try again later
                log.exception("publish failed")
                ok = False
            with self._cond:
                self.runs += 1
                self.failures = 0 if ok else self.failures + 1
                self._retry_at = None if ok else time.monotonic() + min(
                    self.retry_max, self.retry_first * 2 ** (self.failures - 1))

    def _wait_until_due(self) -> bool:
        with self._cond:
            while not self._stopping:
                due = None
                if self._first is not None:
                    due = min(self._last + self.delay, self._first + self.max_delay)
                if self._retry_at is not None:
                    due = self._retry_at if due is None else max(due, self._retry_at)
                if due is None:
                    self._cond.wait()
                    continue
                remaining = due - time.monotonic()
                if remaining <= 0:
                    self._first = self._last = self._retry_at = None
                    return True
                self._cond.wait(remaining)
            return False


# --- logging ---


class RepeatFilter(logging.Filter):
    """Drop a warning identical to one already logged: a broken file is reported once, not every run."""

    def __init__(self, remember: int = 10_000):
        super().__init__()
        self.remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not record.name == "aggregator":
            return True
        message = record.getMessage()
        with self._lock:
            if message in self._seen:
                self._seen.move_to_end(message)
                return False
            self._seen[message] = None
            if len(self._seen) > self.remember:
                self._seen.popitem(last=False)
        return True


def configure_logging(explicit_level: bool) -> None:
    """journald-friendly lines on stderr: no timestamps (journald adds them), no tracebacks for user errors."""
    root = logging.getLogger()
    if not explicit_level:
        root.setLevel(logging.INFO)
    repeat = RepeatFilter()
    for handler in root.handlers:
        handler.addFilter(repeat)
    if root.level > logging.DEBUG:
        # APScheduler warns on every skipped overlapping run; our own fetch lines say enough.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)


# --- health ---


def health_report(config: Config, store: Store) -> dict[str, Any]:
    """Each configured source's last fetch, as /healthz shows it; "degraded" while any source fails.

    Fields are only ever added (scripts read them): status, reason, failing,
    articles, sources, and from the daemon pid, publishes, storage, publishing.
    """
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


def feed_urls(config: Config) -> list[tuple[str, str]]:
    """(title, URL) for each topic's Atom feed (or its first format), then the OPML of all."""
    from aggregator.publish.render import ALL_TOPIC, feed_url

    fmt = "atom" if "atom" in config.publish.formats else config.publish.formats[0]
    urls = [(t.title, feed_url(config.site.base_url, t.slug, fmt)) for t in [*config.topics, ALL_TOPIC]]
    urls.append(("All topics (OPML, import into a reader)", f"{config.site.base_url}topics.opml"))
    return urls


# --- the daemon ---


@dataclass
class Faults:
    """What is failing now, for /healthz; replaced whole when a publish succeeds."""

    storage: str | None = None  # the storage fault's line, until a write succeeds again
    publish: str | None = None  # why the last publish failed, until one succeeds
    since: str | None = None  # when the failing began
    last_publish: str | None = None  # when a publish last succeeded
    stopped: set[str] = field(default_factory=set)  # sources a storage fault stopped: fetched again after


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def job_id(name: str) -> str:
    return f"source:{name}"


def interval_of(source: SourceConfig) -> float:
    return source.interval or DEFAULT_INTERVAL


class Daemon:
    def __init__(self, config_file: Path, config: Config, *, serve: bool = True,
                 publish_delay: float = PUBLISH_DELAY, out: Callable[[str], None] | None = None):
        self.config_file = config_file
        self.database = config.storage.database
        self._current: tuple[Config, TopicRules] = (config, pipeline.topic_rules(config))
        self.serve = serve
        self.out = out or (lambda line: print(line, flush=True))
        self.stores = ThreadStores(self.database)
        self.lock = InstanceLock(self.database)
        self.publisher = DebouncedRunner(self._publish_cycle, publish_delay, PUBLISH_MAX_DELAY)
        self.scheduler = None
        self.server = None
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._active = 0
        self._active_cond = threading.Condition()
        self._errors: dict[str, str | None] = {}
        self._fetcher: tuple[FetchConfig, Fetcher] | None = None
        self._fetcher_lock = threading.Lock()
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
            self._start_scheduler()
            self.publisher.start()
            self.publisher.request()  # feeds exist even if no source has anything new
            self._announce()
            self._main_loop()
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
        while not self._stop_requested:
            self._wake.wait(1.0)
            self._wake.clear()
            if self._reload_requested and not self._stop_requested:
                self._reload_requested = False
                self.reload()

    def _start_server(self) -> None:
        from aggregator.app.server import make_server, start_in_thread

        self.server = make_server(self.config.server.listen, self.config.storage.feeds_dir, self.health,
                                  published=lambda: self.faults.last_publish is not None)
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
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        finished = self._wait_idle(deadline)
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
        if self._fetcher is not None:
            self._fetcher[1].close()
        log.info("stopped")
        return 0

    def _wait_idle(self, deadline: float) -> bool:
        with self._active_cond:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._active_cond.wait(remaining)
        return True

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

    # --- scheduling ---

    def _start_scheduler(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        workers = max(2, min(self.config.fetch.concurrency, MAX_WORKERS))
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        for source in self.config.sources:
            if source.enabled:
                self._add_job(source)
        self.scheduler.add_job(self.publisher.request, "interval", seconds=RETENTION_EVERY,
                               id="retention", name="retention")
        self.scheduler.start()

    def _trigger(self, source: SourceConfig):
        from apscheduler.triggers.interval import IntervalTrigger

        seconds = interval_of(source)
        return IntervalTrigger(seconds=seconds, jitter=min(seconds * 0.1, MAX_JITTER), timezone=timezone.utc)

    def _add_job(self, source: SourceConfig) -> None:
        self.scheduler.add_job(
            self._ingest_job, self._trigger(source), args=[source.name], id=job_id(source.name),
            name=source.name, next_run_time=datetime.now(timezone.utc),
            misfire_grace_time=max(1, int(interval_of(source))), replace_existing=True,
        )

    def _ingest_job(self, name: str) -> None:
        config, rules = self._current
        source = config.source(name)
        if source is None or not source.enabled or self._stop_requested:
            return
        with self._busy():
            started = time.monotonic()
            http_status = None
            store: Store | None = None
            try:
                store = self.stores.get()
                report, http_status = self._ingest(config, store, source, rules)
            except Exception as exc:  # a storage fault, or our bug (a parser that raised): the daemon goes on
                fault = storage_fault(exc, self.database, config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
                if fault is not None:  # not the source's fault: it is fetched again once storage recovers
                    log.debug("fetch %s: storage fault", name, exc_info=True)
                    self._storage_failed(fault, source=name)
                    return
                log.debug("fetch %s raised", name, exc_info=True)
                report = IngestReport(source=name, error=f"{type(exc).__name__}: {exc} (raised while fetching or "
                                                          "parsing; --log-level debug shows the traceback)")
                self._save_failure(store, source, report)  # failed, not "pending"
                self._log_fetch(source, report, http_status, time.monotonic() - started)
                return
            if report is None:
                return  # a remote source backing off or told to wait: nothing happened
            self._log_fetch(source, report, http_status, time.monotonic() - started)
        if report.new or report.updated:
            self.publisher.request()

    def _ingest(self, config: Config, store: Store, source: SourceConfig,
                rules: TopicRules) -> tuple[IngestReport | None, int | None]:
        """One source's batch; a remote one honours its backoff and Retry-After (None: not fetched)."""
        if source.kind == "local":
            return pipeline.ingest_source(config, store, source, rules), None
        from aggregator.ingest.remote import plan_from_store, run_fetch

        # The job fires on the interval plus jitter; do not call that early and skip a whole interval.
        slack = timedelta(seconds=min(interval_of(source) * 0.1, MAX_JITTER) + 1)
        job = plan_from_store(config, store, source, honour_schedule=True,
                              now=datetime.now(timezone.utc) + slack)
        if job.skip:
            log.debug("fetch %s: not fetched: %s", source.name, job.skip)
            return None, None
        outcome = run_fetch(job, self.fetcher(config))
        report = pipeline.store_results(store, source.name, outcome, rules, None, config.dedup.threshold,
                                        source_state=outcome.state)  # state and articles: one transaction
        return report, outcome.http_status

    def fetcher(self, config: Config) -> Fetcher:
        """The daemon's one Fetcher, kept for its whole life so connections and TLS set-up are reused.

        A reload that changes [fetch] gets a new one; the old one's idle
        connections close, and fetches still running on it finish first.
        """
        from aggregator.ingest.remote import new_fetcher

        with self._fetcher_lock:
            if self._fetcher is None or self._fetcher[0] != config.fetch:
                old, self._fetcher = self._fetcher, (config.fetch, new_fetcher(config))
                if old is not None:
                    old[1].close()
            return self._fetcher[1]

    def _save_failure(self, store: Store | None, source: SourceConfig, report: IngestReport) -> None:
        """The source's error, on record for `aggregator sources` and /healthz (a storage fault meeting
        that write is the daemon's, reported once)."""
        if store is None:
            return
        try:
            pipeline.save_source_status(store, source, report)
        except Exception as exc:
            fault = storage_fault(exc, self.database, self.config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
            if fault is None:
                raise
            self._storage_failed(fault, source=source.name)

    def _log_fetch(self, source: SourceConfig, report: IngestReport, http_status: int | None,
                   elapsed: float) -> None:
        """One line per fetch; an error is logged loudly only when it changes."""
        previous = self._errors.get(source.name)
        self._errors[source.name] = report.error
        line = (f"fetch {source.name}: status={http_status or '-'} new={report.new} updated={report.updated} "
                f"unchanged={report.unchanged} skipped={len(report.skipped)} time={elapsed:.2f}s")
        if report.error and report.error != previous:
            log.error("%s error=%s (will retry; logged again only if the error changes)", line, report.error)
        elif report.error:
            log.info("%s still failing", line)
        elif previous:
            log.warning("%s recovered", line)
        else:
            log.info("%s", line)

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
            pipeline.publish(config, store)  # logs its own line
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
            changed = self.faults.storage != fault.line
            self.faults.storage = fault.line
            self.faults.since = self.faults.since or _now()
            if source is not None:
                self.faults.stopped.add(source)
        if changed:
            log.error("%s; the daemon goes on, retrying with backoff (1 s doubling to 30 s) and publishing once "
                      "it can write (logged again only if the fault changes)", fault)
        self.stores.reopen_all()  # a repaired or replaced file is opened afresh
        self.publisher.request()

    def _publish_failed(self, exc: Exception) -> None:
        fault = storage_fault(exc, self.database, self.config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
        line = fault.line if fault is not None else f"publish failed: {type(exc).__name__}: {exc}"
        with self._faults_lock:
            changed = self.faults.publish != line
            self.faults.publish = line
            self.faults.since = self.faults.since or _now()
            if fault is not None and fault.database:
                changed = changed and self.faults.storage != line
                self.faults.storage = line
        if changed:  # our bug (no storage fault) comes with its traceback
            log.error("%s; publishing is retried with backoff (1 s doubling to 30 s) until it succeeds "
                      "(logged again only if the error changes)", line, exc_info=exc if fault is None else None)
        else:
            log.debug("publish still failing: %s", line)
        if fault is not None:
            self.stores.reopen_all()

    def _publish_succeeded(self) -> None:
        with self._faults_lock:
            failed = self.faults.publish or self.faults.storage
            since, stopped = self.faults.since, self.faults.stopped
            self.faults = Faults(last_publish=_now())
        if not failed:
            return
        log.warning("recovered: writing and publishing work again (failing since %s)%s", since,
                    f"; fetching again the {len(stopped)} source{'s' if len(stopped) > 1 else ''} the fault stopped"
                    if stopped else "")
        for name in sorted(stopped):
            try:
                self.scheduler.modify_job(job_id(name), next_run_time=datetime.now(timezone.utc))
            except Exception:  # removed by a reload meanwhile
                pass

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
        added, removed, changed = self._sync_jobs(old, new)
        if _tagging(old) != _tagging(new):
            self._retag(new)
        self.publisher.request()
        log.info("reload: %d sources (%d added, %d removed, %d changed)",
                 len([s for s in new.sources if s.enabled]), added, removed, changed)
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

    def _sync_jobs(self, old: Config, new: Config) -> tuple[int, int, int]:
        before = {s.name: s for s in old.sources if s.enabled}
        after = {s.name: s for s in new.sources if s.enabled}
        for name in before.keys() - after.keys():
            self.scheduler.remove_job(job_id(name))
            self._errors.pop(name, None)
        for name in after.keys() - before.keys():
            self._add_job(after[name])
        changed = 0
        for name in before.keys() & after.keys():
            if before[name] == after[name]:
                continue
            changed += 1
            if interval_of(before[name]) != interval_of(after[name]):
                self.scheduler.reschedule_job(job_id(name), trigger=self._trigger(after[name]))
            self.scheduler.modify_job(job_id(name), next_run_time=datetime.now(timezone.utc),
                                      misfire_grace_time=max(1, int(interval_of(after[name]))))
        return len(after.keys() - before.keys()), len(before.keys() - after.keys()), changed

    def health(self) -> dict[str, Any]:
        """/healthz: "failing" (HTTP 503) while storage or publishing fails, else "degraded" while a
        source fails, else "starting" until the first publish has run, else "ok"; "reason" says why."""
        report = database_health(self.config)
        faults = self.faults
        retry = self.publisher.retry_in()
        if faults.storage or faults.publish:
            report["status"], report["reason"] = "failing", faults.storage or faults.publish
        elif report["status"] == "ok" and self.publisher.runs == 0:  # a source failing already is "degraded"
            report["status"], report["reason"] = "starting", "the first fetch and publish are under way"
        report["pid"] = os.getpid()
        report["publishes"] = self.publisher.runs
        report["storage"] = {"status": "failing" if faults.storage else "ok", "error": faults.storage,
                             "failing_since": faults.since if faults.storage else None,
                             "database": str(self.database)}
        report["publishing"] = {"status": "failing" if faults.publish else "ok" if faults.last_publish else "pending",
                                "error": faults.publish, "failing_since": faults.since if faults.publish else None,
                                "last_success": faults.last_publish, "failures": self.publisher.failures,
                                "next_retry_in": round(retry, 1) if retry is not None else None}
        return report


def _tagging(config: Config) -> tuple:
    return config.topics, tuple((s.name, s.topics) for s in config.sources)


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
    from aggregator.gcpolicy import usual_passes

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
