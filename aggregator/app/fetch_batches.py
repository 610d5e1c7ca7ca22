"""Sources that come due close together, fetched back to back on a few threads.

Each source's schedule (schedule.py) fires on its own, spread by jitter, so
200 sources on one interval come due one every few milliseconds. Run as
they come, each fetch wakes a thread on its own and runs with cold caches:
on two cores an unchanged 304 costs 1.6-2.0 ms of CPU that way against
0.5-0.7 ms back to back (docs/decisions/0018). So a source that comes due
waits for the others, until none has come due for QUIET_SECONDS or for
GATHER_SECONDS at most, and then they all go to the worker threads
together. A second is nothing next to an interval of minutes.

A source is never queued twice nor run twice at once: one that comes due
again while it is still waiting or running is coalesced into that run, as
APScheduler's coalesce and max_instances=1 did for one job per source.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

log = logging.getLogger("aggregator.app.daemon")
GATHER_SECONDS = 1.0  # the longest a due source waits for others
QUIET_SECONDS = 0.05  # a batch goes once no other source has come due for this long


class FetchBatches:
    """`add(name)` when a source comes due; `run_source(name)` runs on `workers` threads, in batches."""

    def __init__(self, run_source: Callable[[str], None], workers: int,
                 gather_seconds: float = GATHER_SECONDS) -> None:
        self._run_source = run_source
        self._gather = gather_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="source")
        self._waiting: dict[str, None] = {}  # in the order they came due
        self._queued: set[str] = set()  # waiting, or handed to the pool and not finished
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._gather_loop, name="fetch-batches", daemon=True)
        self._thread.start()

    def add(self, name: str) -> None:
        with self._changed:
            if self._stopping or name in self._queued:
                return
            self._queued.add(name)
            self._waiting[name] = None
            self._changed.notify()

    def stop(self) -> None:
        """No batch starts after this; the runs already handed over finish (the daemon waits for them)."""
        with self._changed:
            self._stopping = True
            self._waiting.clear()
            self._changed.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _gather_loop(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._stopping:
                    self._changed.wait()
                self._wait_for_the_rest()
                if self._stopping:
                    return
                batch, self._waiting = list(self._waiting), {}
            try:
                for name in batch:
                    self._pool.submit(self._run, name)
            except RuntimeError:  # stopped meanwhile: the pool takes no more
                return

    def _wait_for_the_rest(self) -> None:
        """Until no source has come due for QUIET_SECONDS, or GATHER_SECONDS since the first did
        (the caller holds the lock): a burst (the start, a reload) goes at once, a trickle waits."""
        deadline = time.monotonic() + self._gather
        while not self._stopping:
            count = len(self._waiting)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.wait(min(QUIET_SECONDS, left))
            if len(self._waiting) == count:  # none came meanwhile: the burst is over
                return

    def _run(self, name: str) -> None:
        try:
            self._run_source(name)
        except Exception:  # our bug: logged with its traceback; the other sources and the daemon go on
            log.exception("fetch %s raised", name)
        finally:
            with self._changed:
                self._queued.discard(name)
