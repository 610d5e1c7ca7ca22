"""The daemon's database connections: one per thread, writes serialized across them."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from aggregator.storage.store import Store


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
