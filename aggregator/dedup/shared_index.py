"""The duplicate index's lifecycle: one in-memory LshIndex per database file, per process.

In: the signatures storage keeps (`SignatureSource`: a version counter, a
count, every row in doc order) and, after each transaction that wrote some,
those rows. Out: near-duplicate candidates (`similar`) from an index that is
current with every write of this process and of others.

The band buckets are derived from the signatures, so they live in memory
only (lsh_index.py): built at the first lookup, added to by this process's
own writes, rebuilt when another process has written signatures (the
database's `dedup_version` counter is ahead) and dropped when a transaction
that added to it rolls back. Every connection to one file shares one index:
the daemon has a connection per thread, and one copy (84 MB at 100,000
articles) is enough.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol

from aggregator import dedup

if TYPE_CHECKING:
    from aggregator.dedup.lsh_index import LshIndex, Query, Row, Similar


class SignatureSource(Protocol):
    """What building the index reads from storage (storage/duplicates.py)."""

    def dedup_version(self) -> int: ...
    def signature_count(self) -> int: ...
    def signature_rows(self) -> Iterator["Row"]: ...


@dataclass(eq=False)
class SharedIndex:
    """The band buckets of one database file, and the `dedup_version` they reflect.

    Every signature write and prune moves the counter in its own transaction,
    so an index whose version is behind the database's has missed another
    process's writes, and is rebuilt. One that is ahead holds a write of this
    process not yet visible to the asking connection (another thread's open
    transaction); it is used as it is, and dropped if that rolls back.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    index: "LshIndex | None" = None
    version: int = -1

    def similar(self, source: SignatureSource, items: dict[str, "Query"], limit: int,
                min_jaccard: float = 0.0) -> dict[str, list["Similar"]]:
        """For each item's (band keys, signature), up to `limit` stored articles sharing the most
        LSH buckets: (article id, buckets shared, Jaccard estimate, shingle count)."""
        if not items:
            return {}
        version = source.dedup_version()
        with self.lock:  # another thread may be adding to it
            return self._current(source, version).similar(items, limit, min_jaccard)

    def current(self, source: SignatureSource) -> "LshIndex":
        """The index, current for `source`'s connection (tests and benchmarks look inside)."""
        version = source.dedup_version()
        with self.lock:
            return self._current(source, version)

    def _current(self, source: SignatureSource, version: int) -> "LshIndex":
        """Rebuilt from the signatures if it is behind `version` (or if most of its rows are
        replaced ones). The caller holds the lock."""
        index = self.index
        if index is None or self.version < version or index.dead_rows > max(len(index), 10_000):
            self.index = index = None  # the old one's memory goes first
            self.index = dedup.lsh_index.LshIndex.build(source.signature_rows(), source.signature_count())
            self.version = version
        return self.index

    def added(self, before: int, rows: Iterable["Row"]) -> None:
        """Signatures one transaction wrote while moving the counter from `before` to `before + 1`."""
        with self.lock:
            if self.index is not None and self.version == before:
                self.index.add(rows)
                self.version = before + 1
            else:
                self.index = None  # it missed something: rebuilt at the next lookup

    def drop(self) -> None:
        """Forget the index (a rollback, a prune): the next lookup rebuilds it from the stored rows."""
        with self.lock:
            self.index = None


# Held by the open Stores only: the index goes once the last connection to its file is gone.
_SHARED: "weakref.WeakValueDictionary[str, SharedIndex]" = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_index(path: Path) -> SharedIndex:
    """The index of the database file at `path`, shared by every connection to it in this process."""
    with _SHARED_LOCK:
        key = str(path.resolve())
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = SharedIndex()
        return shared
