"""One SQLite connection and its transactions: what every table family's mixin builds on.

In: a database path, and whether this process may write it. Out: `conn`, the
plain sqlite3 connection every query runs on; `transaction()` and
`one_commit()`, inside which every write happens; the `meta` key-value table.

Queries run on the plain connection, not through sqlite-utils: sqlite-utils
imports numpy and dateutil (0.1-0.2 s), which an unchanged refresh and a
read command must not pay; it creates new databases only (schema.py).
Every write runs inside one explicit BEGIN IMMEDIATE ... COMMIT: a crash
never leaves half a migration or half a source batch behind.

A read-only store (`read_only=True`, for the commands that only list,
search and explain) opens the file with SQLite's `mode=ro`, runs no
migration and writes nothing: the database files stay byte-identical. A
database an older aggregator wrote is refused there (faults.OlderSchema),
since only a writing command may upgrade it; a missing one reads as empty.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, TypeVar

from aggregator.dedup.shared_index import shared_index
from aggregator.enrich.dates import iso_utc
from aggregator.enrich.urls import canonical_url
from aggregator.storage import migrations

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger("aggregator")
T = TypeVar("T")

# How long a write waits for another process's write lock before failing with "database is locked".
# Every long write commits in batches (WRITE_BATCH articles, fulltext.FTS_CATCH_UP_ROWS index rows) that
# hold the lock well under a second, so only a stuck or foreign process makes anyone wait this long.
BUSY_TIMEOUT_MS = 5_000
WRITE_BATCH = 500  # articles per transaction: the write lock is held about 0.07 s (docs/decisions/0002)
# A writer waiting for the lock polls it (SQLite's busy handler sleeps up to 100 ms between tries), so
# back-to-back transactions would starve it: after LOCK_HOLD seconds of them a long write pauses for
# longer than one such sleep, and the daemon's publish waits about a second at most, not the whole ingest.
LOCK_HOLD = 1.0
LOCK_PAUSE = 0.15
CACHE_KIB = 64 * 1024  # page cache per connection
SCAN_CACHE_KIB = 2 * 1024  # while reading every signature once
# Checkpoint the WAL every ~80 MB rather than every 4 MB: each checkpoint syncs the database file,
# and at SQLite's default a first ingest spends a third of its time there.
WAL_CHECKPOINT_PAGES = 20_000
IN_CLAUSE_KEYS = 500  # SQLite caps the parameters one statement binds


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Connection:
    """One database file shared by the daemon and CLI commands (WAL, busy timeout)."""

    def __init__(self, path: Path | str, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self.wrote = False  # a transaction committed: close() then leaves derived indexes current
        self._commit_later = False  # inside one_commit
        self._depth = 0  # transaction blocks open, outermost included
        self._uncommitted = 0  # articles written since BEGIN: one_commit commits early past WRITE_BATCH
        self.duplicate_index = shared_index(self.path)  # dedup's band buckets, built when first needed
        self.in_memory = read_only and not self.path.exists()  # nothing stored yet: read as an empty database
        self.conn = self._connect()
        try:
            self._configure()
        except BaseException:
            self.conn.close()  # not a database, unreadable, locked while migrating: no half-open store
            raise

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        elif self.in_memory:  # an empty database answers every query, and no file appears
            target, uri = ":memory:", False
        else:
            target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
        return sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)

    def _configure(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not self.read_only:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        # The FTS index is written at random places; with SQLite's 2 MB
        # default cache every insert re-reads pages once the store outgrows it.
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.conn.create_function("canonical_url_of", 1, canonical_url, deterministic=True)  # for migrations
        if self.read_only and not self.in_memory:
            migrations.require_current(self)
        else:
            migrations.migrate(self)
        if self.read_only:
            self.conn.execute("PRAGMA query_only = ON")  # a write by mistake fails here, not on disk

    @cached_property
    def db(self) -> "sqlite_utils.Database":
        """sqlite-utils over the same connection: table names, counts and ad hoc queries."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # --- transactions ---

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception.

        Inside another transaction it is a savepoint: the inner part rolls
        back alone. Inside `one_commit`, the commit waits for that block's end.
        """
        if self.conn.in_transaction:
            outermost = self._depth == 0  # in one_commit's open transaction, not inside another block
            self.conn.execute("SAVEPOINT nested")
            self._depth += 1
            try:
                yield
            except BaseException:
                if self.conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                    self.conn.execute("ROLLBACK TO nested")
                    self.conn.execute("RELEASE nested")
                self.duplicate_index.drop()  # may hold signatures that are no longer stored
                raise
            finally:
                self._depth -= 1
            self.conn.execute("RELEASE nested")
            if outermost and self._commit_later and self._uncommitted >= WRITE_BATCH:
                self._commit()  # one_commit has gathered a batch's worth: others may write meanwhile
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        finally:
            self._depth -= 1
        if not self._commit_later:
            self._commit()

    @contextmanager
    def one_commit(self) -> Iterator[None]:
        """The transactions run inside this block commit together at its end, or every WRITE_BATCH articles.

        Several feeds' batches in one commit cost far less than one commit
        each (FTS5 writes its index segments at commit). Nothing begins until
        the first transaction does, so a block that writes nothing takes no
        lock; and no commit waits for more than about a batch of articles, so
        no other process waits long for the write lock. A failure rolls back
        what is not yet committed; each transaction block inside is whole.
        """
        self._commit_later = True
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        finally:
            self._commit_later = False
        if self.conn.in_transaction:
            self._commit()

    def _rollback(self) -> None:
        self._uncommitted = 0
        try:
            if self.conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:  # the error that led here says more; the next BEGIN starts afresh
            log.debug("%s: rollback failed", self.path, exc_info=True)
        finally:
            self.duplicate_index.drop()  # may hold signatures that are no longer stored

    def _commit(self) -> None:
        try:
            self.conn.execute("COMMIT")  # where FTS5 writes the index segments it buffered
        except BaseException:
            self._rollback()  # a failed commit (a full disk) may have undone signatures written since BEGIN
            raise
        self._uncommitted = 0
        self.wrote = True

    def _let_others_write(self, since: float) -> float:
        """Between the transactions of a long write: a pause once they have run LOCK_HOLD seconds."""
        if time.monotonic() - since < LOCK_HOLD:
            return since
        if not self.conn.in_transaction:  # inside one_commit, still holding the lock: a pause would not help
            time.sleep(LOCK_PAUSE)
        return time.monotonic()

    def _rows_in(self, sql: str, keys: Iterable[Any]) -> Iterator[tuple]:
        """The rows of `sql` whose `IN ({marks})` takes every key: IN_CLAUSE_KEYS distinct keys per query.

        Order holds within each query only.
        """
        for chunk in chunks(list(dict.fromkeys(keys)), IN_CLAUSE_KEYS):
            yield from self.conn.execute(sql.format(marks=", ".join("?" for _ in chunk)), chunk)

    # --- the meta table: counters and small records ---

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                              "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])

    def content_version(self) -> int:
        """Moves on every change to articles or their topics (triggers: schema.py, migration 7)."""
        return int(self.meta("content_version") or 0)

    def check_writable(self) -> None:
        """A small write transaction: raises the storage fault while the database cannot be written."""
        self.set_meta("checked_writable", iso_utc(datetime.now(timezone.utc)))

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
