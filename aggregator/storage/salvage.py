"""Salvaging a damaged database (`aggregator recover`): every readable row, copied into a new one.

In: the path of a damaged database file. Out: a new database at the current
schema holding every row that could be read, and a `Salvage` report (rows
per table, unreadable stretches, rows dropped for pointing at lost ones).
`quick_check` tells first whether there is any damage, reading only.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import storage
from aggregator.storage.connection import BUSY_TIMEOUT_MS, IN_CLAUSE_KEYS, chunks

if TYPE_CHECKING:
    from aggregator.storage.store import Store

MAX_ROWID = 2**63 - 1
NOT_SALVAGED = ("fts_pending", "related_cache")  # rebuilt: the search index from the articles, lists at publish


@dataclass
class Salvage:
    """What `salvage` saved: rows per table, and the stretches it could not read."""

    rows: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)  # table -> stretches of rows skipped
    dropped: int = 0  # rows saved but pointing at lost ones (topics, signatures of lost articles)

    @property
    def articles(self) -> int:
        return self.rows.get("articles", 0)


def quick_check(path: Path) -> str:
    """SQLite's quick_check of a database file, read-only: "ok", or what it found wrong (first line)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return conn.execute("PRAGMA quick_check").fetchone()[0].splitlines()[0]
    finally:
        conn.close()


def salvage(damaged: Path, into: Path) -> Salvage:
    """Every readable row of a damaged database, copied into a new one at `into` (our current schema).

    Tables are read by rowid in order; a stretch whose pages cannot be read
    is stepped over (an exponential then binary search for the next readable
    rowid), so one bad page costs the rows on it, not the table. What would
    keep lost articles from coming back is dropped: the state of local files
    that produced a lost article (read again at the next run), every feed's
    ETag (fetched whole again), the last publish's record (all rewritten).
    """
    report = Salvage()
    source = sqlite3.connect(f"{damaged.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    target = storage.store.Store(into)
    try:
        target.conn.execute("PRAGMA foreign_keys = OFF")  # rows whose parent was lost are dropped at the end
        tables = [name for (name,) in target.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'articles_fts%' ORDER BY rootpage") if name not in NOT_SALVAGED]
        for table in tables:
            _salvage_table(source, target, table, report)
        _tidy_salvaged(target, report)
    finally:
        source.close()
        target.close()
    return report


def _salvage_table(source: sqlite3.Connection, target: "Store", table: str, report: Salvage) -> None:
    wanted = [row[1] for row in target.conn.execute(f"PRAGMA table_info({table})")]
    try:
        present = {row[1] for row in source.execute(f"PRAGMA table_info({table})")}
    except sqlite3.DatabaseError:
        present = set()
    columns = [c for c in wanted if c in present]
    if not columns:
        return
    select = f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
    insert = (f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
              f"VALUES ({', '.join('?' for _ in columns)})")
    with target.transaction():
        target.conn.execute(f"DELETE FROM {table}")  # what migrations seeded (meta) comes from the old file
        last, saved, skipped = -MAX_ROWID - 1, 0, 0
        while True:
            rows = _read_rows(source, select, last, 500) or _read_rows(source, select, last, 1)
            if rows is None:  # the next row cannot be read: step over the bad stretch
                skipped += 1
                last = _next_readable(source, select, last)
                if last is None:
                    break
                continue
            if not rows:
                break
            target.conn.executemany(insert, [row[1:] for row in rows])
            saved += len(rows)
            last = rows[-1][0]
    report.rows[table] = saved
    if skipped:
        report.unreadable[table] = skipped


def _read_rows(source: sqlite3.Connection, select: str, after: int, limit: int) -> list[tuple] | None:
    try:
        return source.execute(select, [after, limit]).fetchall()
    except sqlite3.DatabaseError:
        return None


def _next_readable(source: sqlite3.Connection, select: str, bad: int) -> int | None:
    """The smallest rowid bound past `bad` from which rows can be read again; None if none is."""
    step = 1
    while _read_rows(source, select, bad + step, 1) is None:
        if bad + step >= MAX_ROWID:
            return None
        step = min(step * 2, MAX_ROWID - bad)
    low, high = bad + step // 2, bad + step  # unreadable from low, readable from high
    while high - low > 1:
        middle = (low + high) // 2
        if _read_rows(source, select, middle, 1) is None:
            low = middle
        else:
            high = middle
    return high


def _tidy_salvaged(target: "Store", report: Salvage) -> None:
    conn = target.conn
    with target.transaction():
        for table, rowid, _parent, _key in conn.execute("PRAGMA foreign_key_check").fetchall():
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", [rowid])
            report.dropped += 1
        stored = {article_id for (article_id,) in conn.execute("SELECT id FROM articles")}
        orphaned = [cluster for (cluster,) in conn.execute(
            "SELECT DISTINCT cluster_id FROM articles WHERE cluster_id IS NOT NULL").fetchall() if cluster not in stored]
        for chunk in chunks(orphaned, IN_CLAUSE_KEYS):  # lost representatives: the oldest member heads
            target._repoint_clusters_to_heirs(chunk)
        lost_files = [path for path, ids in conn.execute("SELECT path, article_ids FROM files").fetchall()
                      if any(i not in stored for i in json.loads(ids or "[]"))]
        conn.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in lost_files])
        conn.execute("UPDATE sources SET etag = NULL, last_modified = NULL")
        conn.execute("DELETE FROM meta WHERE key LIKE 'published:%'")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('content_version', "
                     "CAST(COALESCE((SELECT value FROM meta WHERE key = 'content_version'), 0) AS INTEGER) + 1)")
