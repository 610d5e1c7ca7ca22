"""`aggregator run`: the long-running process people leave alone for months.

    start:    lock <database>.lock (flock; the kernel drops it when we die)
              one APScheduler job per source (interval + jitter, first run now,
              coalesced, never two runs of one source at once)
              the feed server in a thread
    each job: pipeline.ingest_source -> one log line -> publish requested if anything changed
    publish:  one debounced thread: prune per [storage] retention, then publish,
              so a burst of sources finishing together costs one publish
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
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import pipeline
from .config import Config, ConfigError, FetchConfig, SourceConfig, load_config
from .models import IngestReport
from .redact import redact
from .store import Store
from .topics import TopicRules

if TYPE_CHECKING:
    from .sources.http import Fetcher

log = logging.getLogger("aggregator.daemon")

DEFAULT_INTERVAL = 900.0      # a source whose interval is "auto" and not yet learned
MAX_JITTER = 60.0             # seconds; jitter is 10% of the interval up to this
PUBLISH_DELAY = 1.0           # quiet time after the last ingest before publishing
PUBLISH_MAX_DELAY = 30.0      # publish at least this often while sources keep changing
RETENTION_EVERY = 3600.0      # time-based pruning happens even when nothing is fetched
SHUTDOWN_GRACE = 5.0          # how long SIGTERM waits for running batches
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
    """One DaemonStore per thread, all closed at shutdown."""

    def __init__(self, database: Path):
        self.database = database
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    def get(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = DaemonStore(self.database)
            self._local.store = store
            with self._lock:
                self._all.append(store)
        return store

    def close_all(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for store in stores:
            try:
                store.close()
            except Exception:  # closing is best effort at exit
                pass


# --- debounced publishing ---


class DebouncedRunner:
    """Runs `action` once things go quiet: `delay` after the last request, at most `max_delay` after the first.

    A dedicated thread rather than a scheduler job, so a request that comes
    in while the action runs is never dropped: it simply causes one more run.
    """

    def __init__(self, action: Callable[[], None], delay: float, max_delay: float):
        self.action = action
        self.delay = delay
        self.max_delay = max_delay
        self.runs = 0
        self._first: float | None = None
        self._last: float | None = None
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
                self.action()
            except Exception:  # our bug: log it with its traceback, keep the daemon alive
                log.exception("publish failed")
            self.runs += 1

    def _wait_until_due(self) -> bool:
        with self._cond:
            while not self._stopping:
                if self._first is None:
                    self._cond.wait()
                    continue
                due = min(self._last + self.delay, self._first + self.max_delay)
                remaining = due - time.monotonic()
                if remaining <= 0:
                    self._first = self._last = None
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
    """Each configured source's last fetch, as /healthz shows it."""
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
        })
    failing = [s["name"] for s in sources if s["status"] in FAILING]
    return {"status": "degraded" if failing else "ok", "failing": failing,
            "articles": store.count(), "sources": sources}


def feed_urls(config: Config) -> list[tuple[str, str]]:
    """(title, URL) for each topic's Atom feed (or its first format), then the OPML of all."""
    from .publish import ALL_TOPIC, feed_url

    fmt = "atom" if "atom" in config.publish.formats else config.publish.formats[0]
    urls = [(t.title, feed_url(config.site.base_url, t.slug, fmt)) for t in [*config.topics, ALL_TOPIC]]
    urls.append(("All topics (OPML, import into a reader)", f"{config.site.base_url}topics.opml"))
    return urls


# --- the daemon ---


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

    @property
    def config(self) -> Config:
        return self._current[0]

    # --- lifecycle ---

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit status."""
        self.lock.acquire()  # AlreadyRunning propagates to the CLI as one line
        try:
            self._install_signals()
            store = self.stores.get()  # migrates before any job runs
            _remove_temp_files(self.config.storage.feeds_dir)
            if self.serve:
                self._start_server()
            self._start_scheduler()
            self.publisher.start()
            self.publisher.request()  # feeds exist even if no source has anything new
            self._announce()
            self._main_loop()
            return self._shutdown(store)
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
        from .server import make_server, start_in_thread

        self.server = make_server(self.config.server.listen, self.config.storage.feeds_dir, self.health,
                                  published=lambda: self.publisher.runs > 0)
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

    def _shutdown(self, store: Store) -> int:
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
            store = self.stores.get()
            started = time.monotonic()
            http_status = None
            try:
                report, http_status = self._ingest(config, store, source, rules)
            except Exception as exc:  # our bug or a locked database: this source fails, the daemon goes on
                log.debug("fetch %s raised", name, exc_info=True)
                report = IngestReport(source=name, error=f"{type(exc).__name__}: {exc}")
            if report is None:
                return  # a remote source backing off or told to wait: nothing happened
            if source.kind == "local":
                self._save_local_state(store, source, report)
            self._log_fetch(source, report, http_status, time.monotonic() - started)
        if report.new or report.updated:
            self.publisher.request()

    def _ingest(self, config: Config, store: Store, source: SourceConfig,
                rules: TopicRules) -> tuple[IngestReport | None, int | None]:
        """One source's batch; a remote one honours its backoff and Retry-After (None: not fetched)."""
        if source.kind == "local":
            return pipeline.ingest_source(config, store, source, rules), None
        from .sources.remote import plan_from_store, run_fetch

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
        from .sources.remote import new_fetcher

        with self._fetcher_lock:
            if self._fetcher is None or self._fetcher[0] != config.fetch:
                old, self._fetcher = self._fetcher, (config.fetch, new_fetcher(config))
                if old is not None:
                    old[1].close()
            return self._fetcher[1]

    def _save_local_state(self, store: Store, source: SourceConfig, report: IngestReport) -> None:
        """Remote sources store their own state with their batch; a local one's is recorded here."""
        now = _now()
        try:
            if report.error:
                count = (store.source_state(source.name).get("error_count") or 0) + 1
                store.save_source_state(source.name, kind=source.kind, location=source.location,
                                        status="error", last_fetch=now, last_error=report.error,
                                        error_count=count)
            else:
                store.save_source_state(source.name, kind=source.kind, location=source.location,
                                        status="ok", last_fetch=now, last_success=now,
                                        last_error=None, error_count=0)
        except Exception as exc:  # e.g. the database is locked by a long CLI write
            log.warning("%s: could not save fetch status: %s", source.name, exc)

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

    def _publish_cycle(self) -> None:
        config = self.config
        store = self.stores.get()
        keep, most = config.storage.keep_days, config.storage.max_articles_per_source
        if keep or most:
            pruned = store.prune(keep, most)
            if pruned:
                log.info("retention: pruned %d articles (keep_days=%d, max_articles_per_source=%d)",
                         len(pruned), keep, most)
        pipeline.publish(config, store)  # logs its own line
        store.index_pending_text()  # now, while idle, so that a search later finds the index current

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
            changes = pipeline.retag(new, self.stores.get())
            log.info("reload: topics changed; re-tagged: %s",
                     ", ".join(f"{slug} +{g}/-{l}" for slug, (g, l) in changes.items()) or "no article changed")
        self.publisher.request()
        log.info("reload: %d sources (%d added, %d removed, %d changed)",
                 len([s for s in new.sources if s.enabled]), added, removed, changed)
        return True

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
        with Store(self.database) as store:
            report = health_report(self.config, store)
        report["pid"] = os.getpid()
        report["publishes"] = self.publisher.runs
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
                path.unlink(missing_ok=True)


def run_daemon(config_file: Path, config: Config, *, explicit_log_level: bool, serve: bool = True) -> int:
    """The CLI entry: one clear line and status 1 for a second instance or a busy port."""
    from .gcpolicy import usual_passes

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
        raise
