"""Feed parsing in worker processes, one per core.

Fetching runs on threads and storing on the main thread, all under one GIL;
parsing a large feed is pure CPU (decode, sanitize, extract text, fingerprint,
tag), so it goes to worker processes. The main thread's deduplication and
SQLite need about half a core while the workers need more than one, so there
is a worker for every core, the main thread's included (docs/decisions/0010
has the measurements). Small feeds are parsed in place: sending them costs
more than it saves.

Each worker is one process with its own pipe, lent to one fetch thread at a
time. A worker that dies (out of memory, killed) fails only the feed it was
given, and the next feed gets a fresh worker. A `ProcessPoolExecutor` is not
used: one dead worker breaks the whole executor and fails every feed queued
on it, and on Python 3.11 a `submit` racing that break-up (the executor's
manager thread marks it broken without the lock `submit` holds) raises
`OSError: handle is closed` or returns a future that never completes.
Workers come from a forkserver (never a fork of this threaded process) that
preloads the parser, and ignore Ctrl-C (the parent stops them).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Callable, Iterator

from aggregator import dedup, enrich
from aggregator.config import TopicConfig
from aggregator.enrich.topics import TopicRules
from aggregator.gcpolicy import fewer_passes
from aggregator.ingest.feed import MAX_ENTRIES, parse_feed
from aggregator.models import Article, ParseResult

log = logging.getLogger("aggregator")
POOL_MIN_BYTES = 64 * 1024
HANDOVER_ATTEMPTS = 3  # workers tried for one feed when each turns out to have died while idle
STOP_TIMEOUT = 2.0  # seconds a worker told to stop gets to exit before SIGKILL
# A worker runs the enrich chain over CHUNK articles, then fingerprints them: each loop's code stays
# in the CPU's caches (alternating the two per article is slower), and the chunk's folded texts
# stay among the 256 that enrich/text.py remembers, which fingerprinting folds again.
CHUNK = 64
PRELOAD = ["aggregator.ingest.feed", "aggregator.dedup.detect", "aggregator.enrich.chain"]
_lock = threading.Lock()
_pool: "Workers | None" = None


class WorkerDied(Exception):
    """The worker process ended while it held a task; str() says how (signal or exit status)."""


class WorkerGone(WorkerDied):
    """The worker had ended before it took the whole task: the task is not to blame, another worker gets it."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, chained to it as its cause."""


def parse_feed_bytes(data: bytes, *, source: str, url: str | None, content_type: str | None,
                     topics: tuple[TopicConfig, ...] = (), source_topics: tuple[str, ...] = (),
                     max_entries: int = MAX_ENTRIES) -> ParseResult:
    """parse_feed, in a worker process when the feed is large and a second core exists.

    There the articles also go through the enrich chain, tagged with `topics`
    (`source_topics`: the topics the source puts every article in), and are
    fingerprinted for dedup. A worker that dies or cannot be started is this
    feed's error, never the run's.
    """
    if len(data) < POOL_MIN_BYTES or (os.cpu_count() or 1) < 2:
        return parse_feed(data, source=source, url=url, content_type=content_type, max_entries=max_entries)
    try:
        return _parse_in_worker(workers(), data, source, url, content_type, topics, source_topics, max_entries)
    except WorkerDied as died:
        return ParseResult(error=f"the feed parser's worker process died on this feed: {died}; "
                                 "a fresh worker parses it at the next fetch")
    except OSError as exc:  # no process or pipe to be had: the machine is out of something
        return ParseResult(error=f"could not start a feed parser worker process ({exc.strerror or exc}); "
                                 "the feed is parsed again at the next fetch")


def _parse_in_worker(pool: "Workers", data: bytes, source: str, *args: Any) -> ParseResult:
    """_parse on a worker. One found dead at the handover is replaced and the feed handed to another.

    A feed is blamed (WorkerDied) only for a death after the whole feed was
    handed over; the debug line says which worker has which feed.
    """
    attempts_left = HANDOVER_ATTEMPTS
    while True:
        attempts_left -= 1
        with pool.lend() as worker:
            try:
                worker.give(_parse, data, source, *args)
            except WorkerGone:
                if attempts_left:
                    continue
                raise
            log.debug("%s: parse worker %s has the feed (%d bytes)", source, worker.process.pid, len(data))
            return worker.result()


def _parse(data: bytes, source: str, url: str | None, content_type: str | None,
           topics: tuple[TopicConfig, ...], source_topics: tuple[str, ...],
           max_entries: int = MAX_ENTRIES) -> ParseResult:
    """In the worker: parse, run the enrich chain, fingerprint (pure CPU, off the main thread).

    The chain is the one the main thread runs on a feed parsed in place
    (enrich/chain.py). dedup.detect and enrich.chain load on first use (the
    worker's forkserver preloads them): parsing a feed in place loads neither.
    """
    result = parse_feed(data, source=source, url=url, content_type=content_type, max_entries=max_entries)
    chain = enrich.chain.steps(TopicRules(topics, {source: source_topics}))  # topics compiled once per process
    articles: list[Article] = []
    fingerprints: dict[str, Any] = {}
    for start in range(0, len(result.articles), CHUNK):
        enriched = [enrich.chain.enrich(article, chain) for article in result.articles[start:start + CHUNK]]
        fingerprints.update((article.id, dedup.detect.Fingerprint.of(article)) for article in enriched)
        articles += enriched
    return replace(result, articles=articles, fingerprints=fingerprints, enriched=True)


# --- in the worker process ---


def _start_worker() -> None:
    """Ignore Ctrl-C (the parent stops the pool) and collect garbage less often (gcpolicy.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fewer_passes()


def _serve(conn: Connection) -> None:
    """The worker's loop: run each task sent, send back its value or its exception, until told to stop.

    The pipe closing (the parent exited, even by SIGKILL) ends the loop too,
    so no worker outlives its parent.
    """
    _start_worker()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        function, args = task
        try:
            reply = (True, function(*args))
        except Exception as exc:  # the parent raises it: a bug stays a bug
            reply = (False, (exc, traceback.format_exc()))
        _reply(conn, reply)


def _reply(conn: Connection, reply: tuple[bool, Any]) -> None:
    """Send a task's reply; a value or exception that cannot be pickled is sent as its traceback."""
    try:
        conn.send(reply)
    except (EOFError, OSError):
        raise SystemExit(0) from None  # the parent has gone
    except Exception:  # pickling failed before a byte was written
        conn.send((False, (RuntimeError("a parse worker's reply could not be sent back"),
                           traceback.format_exc())))


# --- in the parent ---


@dataclass
class Worker:
    """One worker process and the parent's end of its pipe; used by one thread at a time."""

    process: BaseProcess
    conn: Connection
    settled: bool = True  # False while a task is out: a worker interrupted mid-task is never lent again

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """give, then result."""
        self.give(function, *args)
        return self.result()

    def give(self, function: Callable[..., Any], *args: Any) -> None:
        """Hand function(*args) to the worker; WorkerGone if it had already ended (the task is not to blame)."""
        self.settled = False
        try:
            self.conn.send((function, args))
        except OSError:
            raise WorkerGone(self.how_it_ended()) from None

    def result(self) -> Any:
        """The value of the task given, or its exception raised here; WorkerDied if the process ends first.

        Waiting on the pipe and the process sentinel together means a death
        is noticed at once, whether it comes while working or replying.
        """
        try:
            wait([self.conn, self.process.sentinel])
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerDied(self.how_it_ended()) from None
        self.settled = True
        if ok:
            return value
        exc, remote_traceback = value
        raise exc from RemoteTraceback(remote_traceback)

    def alive(self) -> bool:
        return self.process.exitcode is None

    def how_it_ended(self) -> str:
        """'killed by SIGKILL (out of memory?)' or 'exit status 1', once the process is gone."""
        self.process.join(STOP_TIMEOUT)
        code = self.process.exitcode
        if code is None:
            return "its pipe closed while it still ran"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        return f"exit status {code}"

    def stop(self) -> None:
        """Ask it to exit (SIGKILL if it does not, or if a task was cut short), then release its handles."""
        if self.settled and self.alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(STOP_TIMEOUT)
        if self.process.exitcode is None:
            self.process.kill()  # SIGKILL: also ends a stopped or stuck worker
            self.process.join(STOP_TIMEOUT)
        self.conn.close()
        if self.process.exitcode is not None:
            self.process.close()


class Workers:
    """Up to `size` workers, each lent to one thread at a time; a dead one is replaced on next use."""

    def __init__(self, size: int, context: Any) -> None:
        self.size = size
        self._context = context
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._lent: dict[int, Worker] = {}  # by id(): the workers threads hold, for pids()
        self._closed = False

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """function(*args) in a worker (waiting for a free one); WorkerDied if that worker dies."""
        with self.lend() as worker:
            return worker.call(function, *args)

    def pids(self) -> list[int]:
        """Process ids of the live workers, idle or lent (tests kill them to check the recovery)."""
        with self._lock:
            return [w.process.pid for w in [*self._idle, *self._lent.values()]
                    if w.process.pid is not None]

    def lent_pids(self) -> list[int]:
        """Process ids of the workers threads hold right now."""
        with self._lock:
            return [w.process.pid for w in self._lent.values() if w.process.pid is not None]

    def close(self) -> None:
        """Stop the idle workers now, and each lent one when its thread gives it back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    @contextmanager
    def lend(self) -> Iterator[Worker]:
        """A worker of one's own until the block ends (waiting while all are lent)."""
        with self._slots:
            worker = self._take()
            try:
                yield worker
            finally:
                self._give_back(worker)

    def _take(self) -> Worker:
        """An idle live worker, or a new one. A worker that died while idle failed no feed: it is replaced."""
        while True:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
                if worker is not None and worker.alive():
                    self._lent[id(worker)] = worker
                    return worker
            if worker is None:
                break
            worker.stop()
        worker = self._start()
        with self._lock:
            self._lent[id(worker)] = worker
        return worker

    def _give_back(self, worker: Worker) -> None:
        with self._lock:
            self._lent.pop(id(worker), None)
            keep = worker.settled and worker.alive() and not self._closed
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.stop()

    def _start(self) -> Worker:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child_end,), name="aggregator-parser", daemon=True)
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # only the worker holds it now: its death closes the pipe for us
        return Worker(process, parent_end)


def workers() -> Workers:
    """The process-wide pool, started on first use."""
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _pool = Workers(os.cpu_count() or 1, context)
        return _pool


def worker_pids() -> list[int]:
    """Process ids of the running parse workers (none before the first large feed)."""
    with _lock:
        pool = _pool
    return pool.pids() if pool is not None else []


def shutdown() -> None:
    """Stop the workers (tests call this; interpreter exit stops them too: they are daemonic)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()
