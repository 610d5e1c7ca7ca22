"""Run an action once things go quiet, and again until it succeeds: the daemon's publishing."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger("aggregator.app.daemon")

RETRY_FIRST = 1.0             # a failed run is tried again after this many seconds,
RETRY_MAX = 30.0              # doubling up to this, until one succeeds: recovered within a minute of a fault clearing


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
