"""Run slow jobs on threads, bounded overall and per key (a feed's host).

A job is only taken when its key has a free slot, so threads never sit
blocked waiting for a busy host while other hosts' jobs queue behind them:
one slow or rate-limited site cannot stall the rest. Results come back to
the calling thread in batches, everything that finished since the last
batch, which is where the caller does its SQLite writes (one connection,
one thread). A worker takes its next job as soon as it has handed over a
result, so the threads keep fetching while the caller writes, but at most
`limit` jobs are running or waiting for the caller at any time: when the
caller writes more slowly than the threads fetch and parse (a first ingest
of thousands of feeds), finished results do not pile up in memory.

Plain threads and one result queue, not an executor and futures: an
unchanged refresh is hundreds of jobs of about a millisecond each, and
`wait()` over every running future for each result adds up to a tenth of
its time (docs/decisions/0016).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from queue import SimpleQueue
from typing import Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_bounded(items: Iterable[T], key: Callable[[T], str], work: Callable[[T], R],
                limit: int, per_key: int) -> Iterator[list[tuple[T, R]]]:
    """Yield lists of (item, work(item)) in completion order; an exception in work (our bug) propagates."""
    board = _Board(items, key, max(1, per_key), max(1, limit))
    results: SimpleQueue[tuple[T, R] | BaseException] = SimpleQueue()

    def worker() -> None:
        item = board.take()
        while item is not None:
            try:
                results.put((item, work(item)))
            except BaseException as exc:  # handed to the caller's thread, which raises it
                results.put(exc)
            item = board.finished_and_take(item)

    threads = [threading.Thread(target=worker, name=f"fetch-{n}", daemon=True)
               for n in range(min(max(1, limit), board.total))]
    for thread in threads:
        thread.start()
    try:
        for received in _batches(results, board):
            yield received
    finally:
        board.stop()  # on an exception or an early close: no new job starts
        for thread in threads:
            thread.join()


def _batches(results: SimpleQueue, board: "_Board") -> Iterator[list]:
    """Everything that finished since the last batch; waits only while nothing has. The batch's
    places go back to the board as it is handed over: the threads fetch on while the caller writes."""
    left = board.total
    while left:
        batch = [results.get()]
        while not results.empty():
            batch.append(results.get())
        board.consumed(len(batch))
        for received in batch:
            if isinstance(received, BaseException):
                raise received
        left -= len(batch)
        yield batch


class _Board(Generic[T]):
    """The jobs not yet started, by key, how many of each key are running, and how many jobs are
    out (running, or finished and not yet handed to the caller); one lock over all three."""

    def __init__(self, items: Iterable[T], key: Callable[[T], str], per_key: int, limit: int) -> None:
        self._key, self._per_key, self._limit = key, per_key, limit
        self._out = 0
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()
        for item in items:
            self._queues.setdefault(key(item), deque()).append(item)
        self.total = sum(len(q) for q in self._queues.values())
        self._active = {k: 0 for k in self._queues}
        self._changed = threading.Condition()
        self._stopped = False

    def take(self) -> T | None:
        """The next job whose key has a free slot, waiting for one; None when none is left to start."""
        with self._changed:
            return self._take_locked()

    def finished_and_take(self, item: T) -> T | None:
        with self._changed:
            self._active[self._key(item)] -= 1
            self._changed.notify()  # a worker waiting on this key's slot may go on
            return self._take_locked()

    def consumed(self, count: int) -> None:
        """`count` results reached the caller: as many jobs may start."""
        with self._changed:
            self._out -= count
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _take_locked(self) -> T | None:
        """Waits while `limit` jobs are out or every key left is at its cap."""
        while not self._stopped and self._queues:
            k = self._free_key() if self._out < self._limit else None
            if k is None:
                self._changed.wait()
                continue
            queue = self._queues.pop(k)  # the key goes to the back of the line: round robin across hosts
            item = queue.popleft()
            if queue:
                self._queues[k] = queue
            elif not self._queues:
                self._changed.notify_all()  # the last job is out: every waiting worker may end
            self._active[k] += 1
            self._out += 1
            return item
        return None

    def _free_key(self) -> str | None:
        """The first key in line with a free slot."""
        return next((k for k in self._queues if self._active[k] < self._per_key), None)
