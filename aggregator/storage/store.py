"""SQLite storage: the only module that speaks SQL.

Queries run on the plain sqlite3 connection: every one is hand-written
SQL, and sqlite-utils (kept as `Store.db`, for inspecting tables from tests
and tools) costs 0.2 s to import because it imports numpy and dateutil,
which an unchanged refresh must not pay. Schema changes are numbered lists
of plain SQL statements, and every write runs inside one explicit BEGIN
IMMEDIATE ... COMMIT: a crash must never leave half a migration or half a
source batch behind.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from functools import cached_property
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from aggregator.enrich import terms
from aggregator.models import Article, FileState, RelatedCandidate, RelatedLink, SiteRelated

if TYPE_CHECKING:
    import sqlite_utils

    from aggregator.dedup.detect import DedupRows, StoredDoc
    from aggregator.dedup.lsh_index import LshIndex, Query, Similar
from aggregator.enrich.dates import iso_utc
from aggregator.enrich.text import fold_for_matching
from aggregator.enrich.urls import canonical_url

log = logging.getLogger("aggregator")

# How long a write waits for another process's write lock before failing with "database is locked".
# Every long write commits in batches (WRITE_BATCH articles, FTS_CATCH_UP_ROWS index rows) that hold
# the lock well under a second, so only a stuck or foreign process makes anyone wait this long.
BUSY_TIMEOUT_MS = 5_000
WRITE_BATCH = 500  # articles per transaction: 6,000 new ones in one held the write lock 0.8 s, 500 ~0.07 s
RETAG_BATCH = 5_000  # topic assignments per transaction
# A writer waiting for the lock polls it (SQLite's busy handler sleeps up to 100 ms between tries), so
# back-to-back transactions would starve it: after LOCK_HOLD seconds of them a long write pauses for
# longer than one such sleep, and the daemon's publish waits about a second at most, not the whole ingest.
LOCK_HOLD = 1.0
LOCK_PAUSE = 0.15
CACHE_KIB = 64 * 1024  # page cache per connection
SCAN_CACHE_KIB = 2 * 1024  # while reading every signature once
# Articles indexed for search per transaction when catching up: a backlog of 100,000 then
# holds the write lock for a few seconds at a time, not 7-18 s, for about the same total.
FTS_CATCH_UP_ROWS = 20_000
WAL_CHECKPOINT_PAGES = 20_000
PRUNED_MEMORY_DAYS = 365  # how long a pruned id is kept from coming back
ARTICLE_COLUMNS = (
    "id", "source", "site", "title", "title_key", "url", "canonical_url", "guid", "published",
    "updated", "first_seen", "authors", "categories", "summary", "text", "content_html",
    "image", "site_related", "origin", "content_hash", "cluster_id", "terms",
)


MIGRATION_1 = [
    # Articles, their topics, per-source state, seen files and full-text search.
    """CREATE TABLE articles (
        id TEXT PRIMARY KEY, source TEXT NOT NULL, site TEXT, title TEXT NOT NULL,
        title_key TEXT, url TEXT, canonical_url TEXT, guid TEXT, published TEXT, updated TEXT,
        first_seen TEXT, authors TEXT, categories TEXT, summary TEXT, text TEXT,
        content_html TEXT, image TEXT, site_related TEXT, origin TEXT, content_hash TEXT,
        cluster_id TEXT)""",
    "CREATE INDEX idx_articles_published ON articles (published)",
    "CREATE INDEX idx_articles_source ON articles (source)",
    "CREATE INDEX idx_articles_canonical_url ON articles (canonical_url)",
    "CREATE INDEX idx_articles_content_hash ON articles (content_hash)",
    "CREATE INDEX idx_articles_title_key ON articles (title_key)",
    "CREATE INDEX idx_articles_cluster ON articles (cluster_id)",
    """CREATE TABLE article_topics (
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        topic TEXT NOT NULL, PRIMARY KEY (article_id, topic))""",
    "CREATE INDEX idx_article_topics_topic ON article_topics (topic, article_id)",
    """CREATE TABLE sources (
        name TEXT PRIMARY KEY, kind TEXT, location TEXT, status TEXT, etag TEXT,
        last_modified TEXT, last_fetch TEXT, last_success TEXT, last_error TEXT,
        next_due TEXT, error_count INTEGER DEFAULT 0, http_status INTEGER, url TEXT,
        fingerprint TEXT)""",
    """CREATE TABLE files (
        path TEXT PRIMARY KEY, source TEXT, content_hash TEXT, article_ids TEXT, seen TEXT)""",
    """CREATE VIRTUAL TABLE articles_fts USING fts5 (
        title, text, content=articles, content_rowid=rowid,
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts (rowid, title, text) VALUES (new.rowid, new.title, new.text);
    END""",
    """CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, text)
        VALUES ('delete', old.rowid, old.title, old.text);
    END""",
    """CREATE TRIGGER articles_au AFTER UPDATE OF title, text ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, text)
        VALUES ('delete', old.rowid, old.title, old.text);
        INSERT INTO articles_fts (rowid, title, text) VALUES (new.rowid, new.title, new.text);
    END""",
]

MIGRATION_2 = [
    # Remote fetching (ingest/remote.py): when a server's Retry-After ends, and the interval
    # in use (the configured one, raised by Cache-Control, or learned for interval = "auto").
    "ALTER TABLE sources ADD COLUMN retry_after TEXT",
    "ALTER TABLE sources ADD COLUMN interval_seconds REAL",
]

MIGRATION_3 = [
    # Local files (ingest/local.py): size and mtime let an unchanged file be skipped unread.
    "ALTER TABLE files ADD COLUMN size INTEGER",
    "ALTER TABLE files ADD COLUMN mtime_ns INTEGER",
    "CREATE INDEX IF NOT EXISTS idx_files_source ON files (source)",
]

MIGRATION_4 = [
    # The duplicate index (dedup.py): one MinHash signature per article, and its LSH band
    # buckets keyed by a small integer doc number, so finding candidates is an index lookup.
    """CREATE TABLE IF NOT EXISTS dedup_signatures (
        doc INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE REFERENCES articles(id) ON DELETE CASCADE,
        body_hash TEXT, shingles INTEGER NOT NULL, signature BLOB NOT NULL, content_hash TEXT)""",
    "CREATE INDEX IF NOT EXISTS idx_dedup_body_hash ON dedup_signatures (body_hash)",
    """CREATE TABLE IF NOT EXISTS lsh_buckets (
        band INTEGER NOT NULL, bucket INTEGER NOT NULL, doc INTEGER NOT NULL,
        PRIMARY KEY (band, bucket, doc)) WITHOUT ROWID""",
]

MIGRATION_5 = [
    # Ids of articles removed by retention, so a feed that still lists one does not bring it back.
    "CREATE TABLE pruned (id TEXT PRIMARY KEY, source TEXT, pruned_at TEXT NOT NULL)",
    "CREATE INDEX idx_pruned_at ON pruned (pruned_at)",
]

MIGRATION_6 = [
    # Related posts (related.py), kept once computed: an entry's list changes only when the
    # article's own text does, so feeds do not churn and republishing costs no searches.
    """CREATE TABLE related_cache (
        article_id TEXT PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
        content_hash TEXT, size INTEGER NOT NULL, related_ids TEXT NOT NULL)""",
]

MIGRATION_7 = [
    # A counter that moves whenever anything a feed shows may have changed, so an
    # unchanged republish can be recognised without rendering (publish.py).
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "INSERT INTO meta (key, value) VALUES ('content_version', '0')",
    *[f"""CREATE TRIGGER {table}_version_{event[0].lower()} AFTER {event} ON {table} BEGIN
        UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'content_version';
    END""" for table in ("articles", "article_topics") for event in ("INSERT", "UPDATE", "DELETE")],
]

MIGRATION_8 = [
    # The LSH band buckets moved to memory (lsh_index.py): they are derived from the signatures.
    "DROP TABLE IF EXISTS lsh_buckets",
    "DELETE FROM meta WHERE key = 'lsh_layout'",
]

MIGRATION_9 = [
    # The full-text index is written in bulk when it is next read (Store.index_pending_text),
    # not row by row as articles arrive: tokenizing inside every batch made storing a first
    # ingest's 10,000 articles 5.5 s instead of 3.7-4.5 s. fts_pending lists the articles not
    # yet indexed (a rowid list, not a high-water mark: SQLite gives a deleted last rowid out again).
    "CREATE TABLE IF NOT EXISTS fts_pending (rowid INTEGER PRIMARY KEY)",
    "DROP TRIGGER IF EXISTS articles_ai",
    """CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
        INSERT OR IGNORE INTO fts_pending (rowid) VALUES (new.rowid);
    END""",
    "DROP TRIGGER IF EXISTS articles_ad",
    """CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, text)
            SELECT 'delete', old.rowid, old.title, old.text
            WHERE NOT EXISTS (SELECT 1 FROM fts_pending WHERE rowid = old.rowid);
        DELETE FROM fts_pending WHERE rowid = old.rowid;
    END""",
    "DROP TRIGGER IF EXISTS articles_au",
    # A pending article's new text is indexed when it is caught up; only an indexed one changes here.
    """CREATE TRIGGER articles_au AFTER UPDATE OF title, text ON articles
        WHEN NOT EXISTS (SELECT 1 FROM fts_pending WHERE rowid = old.rowid) BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, text)
        VALUES ('delete', old.rowid, old.title, old.text);
        INSERT INTO articles_fts (rowid, title, text) VALUES (new.rowid, new.title, new.text);
    END""",
]

MIGRATION_10 = [
    # Each article's salient words (terms.py), written with it: related posts match on these in
    # memory instead of one bm25 full-text search per list (5 ms each at 100,000 articles).
    # Older rows start NULL; Store.recent_terms works theirs out from the text and writes them back.
    "ALTER TABLE articles ADD COLUMN terms TEXT",
    # Newest first, the order every feed lists: the "all" feed at 100,000 articles read and
    # sorted every row (0.29 s); with this index it reads 50 entries.
    "CREATE INDEX IF NOT EXISTS idx_articles_newest ON articles (COALESCE(published, first_seen) DESC, id)",
]

MIGRATION_11 = [
    # Each topic's articles newest first, straight from an index: a topic feed read every one of
    # the topic's article rows to sort them (16 ms per topic at 100,000 articles, 2,000 per topic).
    # `newest` is the article's COALESCE(published, first_seen), set whenever its topics are written.
    "ALTER TABLE article_topics ADD COLUMN newest TEXT",
    "UPDATE article_topics SET newest = (SELECT COALESCE(published, first_seen) FROM articles WHERE id = article_id)",
    "DROP INDEX IF EXISTS idx_article_topics_topic",
    "CREATE INDEX idx_article_topics_newest ON article_topics (topic, newest DESC, article_id)",
]

MIGRATION_12 = [
    # Indexes no query reads: every date query and sort goes by COALESCE(published, first_seen)
    # (idx_articles_newest), and duplicate texts are found by dedup_signatures.body_hash. Each
    # still cost a random page write per stored article.
    "DROP INDEX IF EXISTS idx_articles_published",
    "DROP INDEX IF EXISTS idx_articles_content_hash",
]

MIGRATION_13 = [
    # The web page a remote source's feed was found on (ingest/remote.py), when its configured
    # url is a page linking to the feed: `aggregator sources` says so, rather than "moved".
    "ALTER TABLE sources ADD COLUMN found_on TEXT",
]

MIGRATION_14 = [
    # What a remote source's last feed read was read in spite of (entries past [ingest] max_entries,
    # ill-formed XML recovered), one line; `aggregator sources` shows it (ingest/remote.py).
    "ALTER TABLE sources ADD COLUMN warning TEXT",
]

MIGRATION_15 = [
    # Every stored article's URL key recomputed with canonical_url as it is now (issue 24: w3lib,
    # so caf%C3%A9 and café, ~ and %7E, xn-- and Unicode hosts give one key): a new copy of an old
    # story is found by URL. canonical_url_of is normalize.canonical_url, registered per connection.
    "UPDATE articles SET canonical_url = canonical_url_of(url) "
    "WHERE url IS NOT NULL AND canonical_url IS NOT canonical_url_of(url)",
]

# Numbered schema changes, applied in order. Append a new number; never edit one that has shipped.
MIGRATIONS: dict[int, list[str]] = {
    1: MIGRATION_1, 2: MIGRATION_2, 3: MIGRATION_3, 4: MIGRATION_4, 5: MIGRATION_5, 6: MIGRATION_6,
    7: MIGRATION_7, 8: MIGRATION_8, 9: MIGRATION_9, 10: MIGRATION_10,
    11: MIGRATION_11, 12: MIGRATION_12, 13: MIGRATION_13, 14: MIGRATION_14, 15: MIGRATION_15,
}


@dataclass
class SharedIndex:
    """The duplicate index's band buckets (lsh_index.LshIndex) of one database file, shared by
    every connection in this process: the daemon has a connection per thread, and one copy
    (84 MB at 100,000 articles) is enough.

    `version` is the `dedup_version` counter (meta table) the index reflects. Every signature
    write and prune by this code moves the counter in its own transaction, so an index whose
    version is behind the database's has missed another process's writes, and is rebuilt.
    One that is ahead holds a write of this process not yet visible to the asking connection
    (another thread's open transaction); it is used as it is, and dropped if that rolls back.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    index: "LshIndex | None" = None
    version: int = -1


# Held by the open Stores only: the index goes once the last connection to its file is gone.
_SHARED_INDEXES: "weakref.WeakValueDictionary[str, SharedIndex]" = weakref.WeakValueDictionary()
_SHARED_INDEXES_LOCK = threading.Lock()


def shared_index(path: Path) -> SharedIndex:
    with _SHARED_INDEXES_LOCK:
        key = str(path.resolve())
        shared = _SHARED_INDEXES.get(key)
        if shared is None:
            shared = _SHARED_INDEXES[key] = SharedIndex()
        return shared


@dataclass(frozen=True)
class WriteOutcome:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


class Store:
    """One database file shared by the daemon and CLI commands (WAL, busy timeout)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._commit_later = False  # inside one_commit
        self._index = shared_index(self.path)  # dedup's band buckets, built when first needed
        self._depth = 0  # transaction blocks open, outermost included
        self._uncommitted = 0  # articles written since BEGIN: one_commit commits early past WRITE_BATCH
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                    check_same_thread=False)
        try:
            self._configure()
        except BaseException:
            self.conn.close()  # not a database, unreadable, locked while migrating: no half-open store
            raise

    def _configure(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        # The FTS index is written at random places; with SQLite's 2 MB
        # default cache every insert re-reads pages once the store outgrows it.
        self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.conn.execute("PRAGMA temp_store = MEMORY")
        # Checkpoint the WAL every ~80 MB rather than every 4 MB: each checkpoint syncs the
        # database file, and at the default a first ingest spent a third of its time there.
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        self.conn.create_function("canonical_url_of", 1, canonical_url, deterministic=True)  # for migrations
        self.migrate()

    @cached_property
    def db(self) -> "sqlite_utils.Database":
        """sqlite-utils over the same connection: table names, counts and ad hoc queries."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                self._drop_index()  # may hold signatures that are no longer stored
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
            self._drop_index()  # may hold signatures that are no longer stored

    def _commit(self) -> None:
        try:
            self.conn.execute("COMMIT")  # where FTS5 writes the index segments it buffered
        except BaseException:
            self._rollback()  # a failed commit (a full disk) may have undone signatures written since BEGIN
            raise
        self._uncommitted = 0

    def _let_others_write(self, since: float) -> float:
        """Between the transactions of a long write: a pause once they have run LOCK_HOLD seconds."""
        if time.monotonic() - since < LOCK_HOLD:
            return since
        if not self.conn.in_transaction:  # inside one_commit, still holding the lock: a pause would not help
            time.sleep(LOCK_PAUSE)
        return time.monotonic()

    def check_writable(self) -> None:
        """A small write transaction: raises the storage fault while the database cannot be written."""
        self.set_meta("checked_writable", iso_utc(datetime.now(timezone.utc)))

    # --- schema ---

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        """Apply numbered migrations not yet applied, each in its own transaction."""
        for number, statements in sorted(MIGRATIONS.items()):
            if self.schema_version >= number:
                continue
            with self.transaction():
                if self.schema_version < number:  # another process may have won the race
                    for statement in statements:
                        self.conn.execute(statement)
                    self.conn.execute(f"PRAGMA user_version = {number}")

    # --- writing ---

    def write_articles(self, articles: Iterable[Article], topics: dict[str, list[str]],
                       dedup: "DedupRows | None" = None,
                       source_state: "tuple[str, dict[str, Any]] | None" = None,
                       files: "Iterable[FileState]" = ()) -> WriteOutcome:
        """Insert or update a source batch, in transactions of up to WRITE_BATCH articles.

        An article whose content hash is unchanged is not written at all, so a
        re-ingest of unchanged input costs reads only. `dedup` (from
        dedup.Deduplicator) is written with the articles: each signature in
        its article's transaction, cluster merges in the last one, so the
        index never disagrees with the rows. `source_state` (name, fields)
        goes into the last transaction: a feed's new ETag is never stored
        without the articles it covers (a crash before it means the feed is
        fetched again and what was stored is found unchanged). `files` (local
        files' new states) likewise: a file is stored with the last of the
        articles it produced, so it is never marked as read without them.
        Short transactions keep the write lock free for the daemon and other
        commands: a big ingest never makes them wait more than a moment.
        """
        articles = list(articles)
        chunks = [articles[start:start + WRITE_BATCH] for start in range(0, len(articles), WRITE_BATCH)] or [[]]
        chunk_of = {article.id: n for n, chunk in enumerate(chunks) for article in chunk}
        files_in: list[list[FileState]] = [[] for _ in chunks]
        for state in files:
            files_in[max((chunk_of[i] for i in state.article_ids if i in chunk_of), default=0)].append(state)
        signatures_in: list[list[tuple]] = [[] for _ in chunks]
        for row in dedup.signatures if dedup is not None else ():
            signatures_in[chunk_of.get(row[0], len(chunks) - 1)].append(row)
        new = updated = unchanged = 0
        since = time.monotonic()
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            since = self._let_others_write(since)
            rows = None if dedup is None else replace(dedup, signatures=signatures_in[n],
                                                      renames=dedup.renames if last else {})
            outcome = self._write_batch(chunk, topics, rows, source_state if last else None, files_in[n])
            new, updated, unchanged = new + outcome.new, updated + outcome.updated, unchanged + outcome.unchanged
        return WriteOutcome(new, updated, unchanged)

    def _write_batch(self, articles: list[Article], topics: dict[str, list[str]], dedup: "DedupRows | None",
                     source_state: "tuple[str, dict[str, Any]] | None", files: "list[FileState]") -> WriteOutcome:
        """One transaction of write_articles."""
        new = updated = unchanged = 0
        now = iso_utc(datetime.now(timezone.utc))
        with self.transaction():
            stored = self._write_states([a.id for a in articles])
            records, changed = [], []
            for article in articles:
                row = stored.get(article.id)
                if row and row[0] == article.content_hash:
                    unchanged += 1
                    continue
                record = _article_row(article, first_seen=row[1] if row else now, now=now)
                if row:
                    # Keep the first known date: a local file's date is its mtime, and an
                    # edit must move `updated` only, or readers re-sort a corrected story.
                    record["published"] = row[2] or record["published"]
                    record["cluster_id"] = article.cluster_id or row[3] or article.id
                    updated += 1
                    changed.append(article.id)
                else:
                    new += 1
                records.append(record)
            self._upsert(records)
            self._uncommitted += len(records)
            self._replace_topics(changed, {r["id"]: topics.get(r["id"], []) for r in records},
                                 {r["id"]: r["published"] or r["first_seen"] for r in records})
            if dedup is not None:
                self._write_dedup(dedup)
            if source_state is not None:
                self._upsert_source_state(*source_state)
            self._save_files(files, now)
        return WriteOutcome(new, updated, unchanged)

    def _save_files(self, files: "Iterable[FileState]", now: str) -> None:
        self.conn.executemany(
            "INSERT INTO files (path, source, content_hash, article_ids, seen, size, mtime_ns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET source = excluded.source, "
            "content_hash = excluded.content_hash, article_ids = excluded.article_ids, "
            "seen = excluded.seen, size = excluded.size, mtime_ns = excluded.mtime_ns",
            [(f.path, f.source, f.content_hash, json.dumps(f.article_ids), now, f.size, f.mtime_ns)
             for f in files],
        )

    def file_states(self, source: str) -> "dict[str, FileState]":
        """What was last stored from each of a source's local files, keyed by absolute path."""
        rows = self.conn.execute(
            "SELECT path, source, content_hash, article_ids, size, mtime_ns FROM files WHERE source = ?",
            [source])
        return {r[0]: FileState(path=r[0], source=r[1], content_hash=r[2] or "",
                                article_ids=json.loads(r[3] or "[]"), size=r[4] if r[4] is not None else -1,
                                mtime_ns=r[5]) for r in rows}

    def _write_dedup(self, rows: "DedupRows") -> None:
        """Signatures of (re)indexed articles, then cluster renames."""
        self.conn.executemany(
            "INSERT INTO dedup_signatures (article_id, body_hash, shingles, signature, content_hash) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(article_id) DO UPDATE SET body_hash = excluded.body_hash, "
            "shingles = excluded.shingles, signature = excluded.signature, content_hash = excluded.content_hash",
            rows.signatures)
        if rows.signatures:
            before = self._bump_dedup_version()
            with self._index.lock:
                shared = self._index
                if shared.index is not None and shared.version == before:
                    shared.index.add((article_id, signature, shingles)
                                     for article_id, _, shingles, signature, _ in rows.signatures)
                    shared.version = before + 1
                else:
                    shared.index = None  # it missed something: rebuilt at the next lookup
        for old, new in rows.renames.items():
            self.conn.execute("UPDATE articles SET cluster_id = ? WHERE cluster_id = ?", [new, old])

    def _write_states(self, ids: list[str]) -> dict[str, tuple]:
        """id -> (content_hash, first_seen, published, cluster_id) of those already stored."""
        return {row[0]: row[1:] for row in self._rows_in(
            "SELECT id, content_hash, first_seen, published, cluster_id FROM articles WHERE id IN ({marks})", ids)}

    def _upsert(self, records: list[dict[str, Any]]) -> None:
        columns = ", ".join(ARTICLE_COLUMNS)
        marks = ", ".join("?" for _ in ARTICLE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in ARTICLE_COLUMNS if c not in ("id", "first_seen"))
        self.conn.executemany(
            f"INSERT INTO articles ({columns}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}",
            [[record[c] for c in ARTICLE_COLUMNS] for record in records],
        )

    def _replace_topics(self, stale: list[str], assignments: dict[str, list[str]], newest: dict[str, str]) -> None:
        """Drop the topics of the `stale` ids, then insert every assignment of a stored article.

        `newest`: each article's COALESCE(published, first_seen), the date its topics are listed by.
        """
        for chunk in _chunks(stale, 500):
            self.conn.execute(f"DELETE FROM article_topics WHERE article_id IN ({', '.join('?' for _ in chunk)})",
                              chunk)
        self.conn.executemany(
            "INSERT OR IGNORE INTO article_topics (article_id, topic, newest) VALUES (?, ?, ?)",
            [(article_id, slug, newest[article_id]) for article_id, slugs in assignments.items() if article_id in newest
             for slug in slugs],
        )

    def replace_topics(self, assignments: dict[str, list[str]]) -> None:
        """Re-tag: replace the topics of many articles, RETAG_BATCH articles per transaction
        (each article's topics change whole; a re-tag cut short is finished by running it again)."""
        ids = list(assignments)
        since = time.monotonic()
        for start in range(0, len(ids), RETAG_BATCH):
            since = self._let_others_write(since)
            chunk = {article_id: assignments[article_id] for article_id in ids[start:start + RETAG_BATCH]}
            with self.transaction():
                newest = dict(self._rows_in("SELECT id, COALESCE(published, first_seen) FROM articles "
                                            "WHERE id IN ({marks})", list(chunk)))
                self._replace_topics(list(chunk), chunk, newest)

    # --- reading ---

    def get(self, article_id: str) -> Article | None:
        row = self.conn.execute("SELECT * FROM articles WHERE id = ?", [article_id]).fetchone()
        return self._hydrate([row])[0] if row else None

    def articles(self, topic: str | None = None, search: str | None = None,
                 limit: int | None = None, source: str | None = None) -> list[Article]:
        """Newest first; optionally one topic, one source, or matching a search."""
        where, params = [], []
        sql = "SELECT a.* FROM articles a"
        if search:
            self.index_pending_text()
            sql += " JOIN articles_fts f ON f.rowid = a.rowid"
            where.append("articles_fts MATCH ?")
            params.append(fts_query(search))
        if topic and limit and not (search or source):  # the newest few straight from the topic's index
            where.append("a.id IN (SELECT article_id FROM article_topics WHERE topic = ? "
                         "ORDER BY newest DESC, article_id LIMIT ?)")
            params += [topic, limit]
        elif topic:
            where.append("a.id IN (SELECT article_id FROM article_topics WHERE topic = ?)")
            params.append(topic)
        if source:
            where.append("a.source = ?")
            params.append(source)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY COALESCE(a.published, a.first_seen) DESC, a.id"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return self._hydrate(self.conn.execute(sql, params).fetchall())

    def all_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM articles")]

    def iter_articles(self, batch: int = 1000) -> Iterator[Article]:
        """Every stored article, in batches, without loading the table at once."""
        last = ""
        while True:
            rows = self.conn.execute(
                "SELECT * FROM articles WHERE id > ? ORDER BY id LIMIT ?", [last, batch]
            ).fetchall()
            if not rows:
                return
            yield from self._hydrate(rows)
            last = rows[-1][0]

    def topic_counts(self) -> dict[str, int]:
        return {t: n for t, n in self.conn.execute(
            "SELECT topic, COUNT(*) FROM article_topics GROUP BY topic")}

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

    def ids_by_title_keys(self, keys: list[str]) -> dict[str, str]:
        """title_key -> newest article id with that folded title."""
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        rows = self.conn.execute(
            f"SELECT title_key, id FROM articles WHERE title_key IN ({marks}) "
            "ORDER BY COALESCE(published, first_seen)", keys,
        )
        return {key: article_id for key, article_id in rows}

    # --- duplicate index and clusters (dedup.py decides; these only look up) ---

    def dedup_docs(self, ids: list[str]) -> dict[str, "StoredDoc"]:
        """Stored articles as the duplicate index knows them (signature None if not indexed)."""
        from aggregator.dedup.detect import StoredDoc, order_key, sig_from_bytes

        found: dict[str, StoredDoc] = {}
        rows = self._rows_in(
            "SELECT a.id, a.cluster_id, a.published, a.first_seen, LENGTH(a.text), a.content_hash, "
            "s.signature, s.shingles FROM articles a LEFT JOIN dedup_signatures s ON s.article_id = a.id "
            "WHERE a.id IN ({marks})", ids)
        for article_id, cluster, published, first_seen, length, chash, sig, shingles in rows:
            order = order_key(_parse_iso(published), _parse_iso(first_seen), length or 0, article_id)
            found[article_id] = StoredDoc(article_id, cluster or article_id, order, chash or "",
                                          sig_from_bytes(sig) if sig is not None else None, shingles or 0)
        return found

    def ids_by_canonical_urls(self, urls: list[str]) -> dict[str, list[str]]:
        return self._ids_by("SELECT canonical_url, id FROM articles WHERE canonical_url IN ({marks})", urls)

    def ids_by_body_hashes(self, hashes: list[str]) -> dict[str, list[str]]:
        return self._ids_by("SELECT body_hash, article_id FROM dedup_signatures WHERE body_hash IN ({marks})", hashes)

    def _ids_by(self, sql: str, keys: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key, article_id in self._rows_in(sql, keys):
            found.setdefault(key, []).append(article_id)
        return found

    def _rows_in(self, sql: str, keys: Iterable[Any]) -> Iterator[tuple]:
        """The rows of `sql` whose `IN ({marks})` takes every key: 500 distinct keys per query.

        SQLite caps the bound parameters of one statement; order holds within each query only.
        """
        for chunk in _chunks(list(dict.fromkeys(keys)), 500):
            yield from self.conn.execute(sql.format(marks=", ".join("?" for _ in chunk)), chunk)

    def similar_signatures(self, items: dict[str, "Query"], limit: int,
                           min_jaccard: float = 0.0) -> dict[str, list["Similar"]]:
        """For each item's (band keys, signature), up to `limit` stored articles sharing the most
        LSH buckets: (article id, buckets shared, Jaccard estimate, shingle count)."""
        if not items:
            return {}
        version = self._dedup_version()
        with self._index.lock:  # another thread may be adding to it
            return self._current_index(version).similar(items, limit, min_jaccard)

    def _candidate_index(self) -> "LshIndex":
        """The shared index, current for this connection (tests and benchmarks look inside)."""
        version = self._dedup_version()
        with self._index.lock:
            return self._current_index(version)

    def _current_index(self, version: int) -> "LshIndex":
        """The shared index, rebuilt from the signatures if it is behind `version` (or if most
        of its rows are replaced ones). The caller holds its lock."""
        from aggregator.dedup.lsh_index import LshIndex

        shared = self._index
        if shared.index is None or shared.version < version or shared.index.dead_rows > max(len(shared.index), 10_000):
            shared.index = None  # the old one's memory goes first
            count = self.conn.execute("SELECT COUNT(*) FROM dedup_signatures").fetchone()[0]
            # One pass over every signature would fill the page cache with pages no lookup needs
            # again (60 MB at 100,000 articles): read them through a small cache.
            self.conn.execute(f"PRAGMA cache_size = -{SCAN_CACHE_KIB}")
            try:
                shared.index = LshIndex.build(self.conn.execute(
                    "SELECT article_id, signature, shingles FROM dedup_signatures ORDER BY doc"), count)
            finally:
                self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            shared.version = version
        return shared.index

    def _dedup_version(self) -> int:
        return int(self.meta("dedup_version") or 0)

    def _bump_dedup_version(self) -> int:
        """Move the counter (inside the caller's transaction); returns its value before."""
        before = self._dedup_version()
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('dedup_version', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [str(before + 1)])
        return before

    def _drop_index(self) -> None:
        with self._index.lock:
            self._index.index = None

    def unindexed_ids(self) -> list[str]:
        """Articles stored before the duplicate index existed (or by an older version)."""
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM articles WHERE id NOT IN (SELECT article_id FROM dedup_signatures)")]

    def cluster_members(self, cluster_id: str) -> list[Article]:
        """Every stored copy in one cluster, representative first, then oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM articles WHERE cluster_id = ? ORDER BY id = ? DESC, "
            "COALESCE(published, first_seen), id", [cluster_id, cluster_id]).fetchall()
        return self._hydrate(rows)

    def clusters_of(self, cluster_ids: list[str]) -> dict[str, list[Article]]:
        """cluster id -> its members (representative first), for many clusters at once."""
        result: dict[str, list[Article]] = {c: [] for c in cluster_ids}
        rows = list(self._rows_in("SELECT * FROM articles WHERE cluster_id IN ({marks}) "
                                  "ORDER BY COALESCE(published, first_seen), id", cluster_ids))
        for article in self._hydrate(rows):
            result.setdefault(article.cluster_id, []).append(article)
        for cluster, members in result.items():
            members.sort(key=lambda a: a.id != cluster)
        return result

    def duplicate_ids(self, article_ids: list[str]) -> dict[str, list[str]]:
        """article id -> ids of the other copies in its cluster."""
        result: dict[str, list[str]] = {i: [] for i in article_ids}
        for article_id, other in self._rows_in(
                "SELECT a.id, b.id FROM articles a JOIN articles b ON b.cluster_id = a.cluster_id "
                "AND b.id != a.id WHERE a.id IN ({marks}) ORDER BY b.id", article_ids):
            result[article_id].append(other)
        return result

    def index_pending_text(self) -> None:
        """Index the articles stored since the full-text index was last read (migration 9).

        Every reader of articles_fts calls this first, and the daemon after
        each publish, while it is idle. Bulk inserts cost a fraction of
        indexing row by row inside each batch's transaction. On a database
        this process may only read, searches go on without the pending
        articles, and say so.
        """
        try:
            self._catch_up_text()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY":
                raise
            pending = self.conn.execute("SELECT count(*) FROM fts_pending").fetchone()[0]
            log.warning("%s is read-only here: a search cannot see the %d articles stored since the full-text "
                        "index was last updated; run any aggregator command with write access to index them",
                        self.path, pending)

    def _catch_up_text(self) -> None:
        since = time.monotonic()
        while self.conn.execute("SELECT EXISTS (SELECT 1 FROM fts_pending)").fetchone()[0]:
            since = self._let_others_write(since)
            with self.transaction():  # a concurrent catch-up may have drained the list meanwhile
                last = self.conn.execute("SELECT rowid FROM fts_pending ORDER BY rowid LIMIT 1 OFFSET ?",
                                         [FTS_CATCH_UP_ROWS - 1]).fetchone()
                bound = last[0] if last else 2**63 - 1
                self.conn.execute("INSERT INTO articles_fts (rowid, title, text) SELECT a.rowid, a.title, a.text "
                                  "FROM fts_pending p JOIN articles a ON a.rowid = p.rowid WHERE p.rowid <= ?", [bound])
                self.conn.execute("DELETE FROM fts_pending WHERE rowid <= ?", [bound])

    def topics_of(self, ids: list[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {i: [] for i in ids}
        for article_id, topic in self._rows_in(
                "SELECT article_id, topic FROM article_topics WHERE article_id IN ({marks}) ORDER BY topic", ids):
            result[article_id].append(topic)
        return result

    def get_many(self, ids: list[str]) -> dict[str, Article]:
        rows = list(self._rows_in("SELECT * FROM articles WHERE id IN ({marks})", ids))
        return {a.id: a for a in self._hydrate(rows)}

    def _hydrate(self, rows: list[tuple]) -> list[Article]:
        columns = [d[0] for d in self.conn.execute("SELECT * FROM articles LIMIT 0").description]
        records = [dict(zip(columns, row)) for row in rows]
        topics = self.topics_of([r["id"] for r in records]) if records else {}
        return [_article_from_row(r, topics.get(r["id"], [])) for r in records]

    # --- per-source state ---

    def source_state(self, name: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM sources WHERE name = ?", [name]).fetchone()
        if not row:
            return {}
        columns = [d[0] for d in self.conn.execute("SELECT * FROM sources LIMIT 0").description]
        return dict(zip(columns, row))

    def save_source_state(self, name: str, **fields: Any) -> None:
        with self.transaction():
            self._upsert_source_state(name, fields)

    def _upsert_source_state(self, name: str, fields: dict[str, Any]) -> None:
        columns = ["name", *fields]
        updates = ", ".join(f"{c} = excluded.{c}" for c in fields) or "name = name"
        self.conn.execute(
            f"INSERT INTO sources ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT(name) DO UPDATE SET {updates}",
            [name, *fields.values()],
        )

    def source_states(self) -> dict[str, dict[str, Any]]:
        """Every stored source row by name (for `aggregator sources`, and to plan a run's fetches)."""
        cursor = self.conn.execute("SELECT * FROM sources")
        columns = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}

    def source_counts(self) -> dict[str, int]:
        return {s: n for s, n in self.conn.execute("SELECT source, COUNT(*) FROM articles GROUP BY source")}

    # --- retention ---

    def prune(self, keep_days: int = 0, max_per_source: int = 0,
              now: datetime | None = None, forget_after_days: int = PRUNED_MEMORY_DAYS) -> list[str]:
        """Delete articles older than keep_days and beyond the newest max_per_source per source.

        One transaction: the ids are remembered in `pruned`, topics go with
        the article (ON DELETE CASCADE), full-text rows by trigger, and a
        cluster whose representative is deleted gets its oldest survivor as
        the new one, so no stored article points at a missing one.
        """
        now = now or datetime.now(timezone.utc)
        with self.transaction():
            doomed = self._prune_candidates(keep_days, max_per_source, now)
            for chunk in _chunks(doomed, 500):
                marks = ", ".join("?" for _ in chunk)
                self.conn.executemany(
                    "INSERT OR REPLACE INTO pruned (id, source, pruned_at) "
                    "SELECT id, source, ? FROM articles WHERE id = ?",
                    [(iso_utc(now), article_id) for article_id in chunk])
                self.conn.execute(f"DELETE FROM articles WHERE id IN ({marks})", chunk)
                self._repoint_clusters(chunk)
            if doomed:  # their signatures went with them: rebuilt here and in other processes
                self._bump_dedup_version()
                self._drop_index()
            forget = iso_utc(now - timedelta(days=forget_after_days))
            self.conn.execute("DELETE FROM pruned WHERE pruned_at < ?", [forget])
        return doomed

    def _prune_candidates(self, keep_days: int, max_per_source: int, now: datetime) -> list[str]:
        ids: set[str] = set()
        if keep_days > 0:
            cutoff = iso_utc(now - timedelta(days=keep_days))
            ids.update(r[0] for r in self.conn.execute(
                "SELECT id FROM articles WHERE COALESCE(published, first_seen) < ?", [cutoff]))
        if max_per_source > 0:
            ids.update(r[0] for r in self.conn.execute(
                "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY source "
                "ORDER BY COALESCE(published, first_seen) DESC, id) AS n FROM articles) WHERE n > ?",
                [max_per_source]))
        return sorted(ids)

    def _repoint_clusters_to_heirs(self, clusters: list[str]) -> None:
        """Clusters whose representative is gone get their oldest remaining member as the new one."""
        for cluster in clusters:
            heir = self.conn.execute("SELECT id FROM articles WHERE cluster_id = ? ORDER BY first_seen, id LIMIT 1",
                                     [cluster]).fetchone()[0]
            self.conn.execute("UPDATE articles SET cluster_id = ? WHERE cluster_id = ?", [heir, cluster])

    def _repoint_clusters(self, deleted: list[str]) -> None:
        marks = ", ".join("?" for _ in deleted)
        clusters = [r[0] for r in self.conn.execute(
            f"SELECT DISTINCT cluster_id FROM articles WHERE cluster_id IN ({marks})", deleted)]
        self._repoint_clusters_to_heirs(clusters)

    def content_version(self) -> int:
        """Moves on every change to articles or their topics (triggers, migration 7)."""
        return int(self.meta("content_version") or 0)

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])

    def headlines(self, ids: list[str]) -> dict[str, RelatedLink]:
        """id -> (id, title, url, site, published) as a RelatedLink, without loading the text."""
        return {article_id: candidate.link for article_id, candidate in self._headline_rows(ids, "")}

    def related_candidates(self, ids: list[str]) -> dict[str, RelatedCandidate]:
        """id -> link, cluster and topics: what ranking a related post needs, without the text."""
        rows = list(self._headline_rows(ids, ", cluster_id"))
        topics = self.topics_of([article_id for article_id, _ in rows])
        return {article_id: RelatedCandidate(candidate.link, candidate.cluster_id or article_id,
                                             tuple(topics[article_id]))
                for article_id, candidate in rows}

    def _headline_rows(self, ids: list[str], extra: str) -> Iterator[tuple[str, RelatedCandidate]]:
        for article_id, title, url, site, published, first_seen, *cluster in self._rows_in(
                f"SELECT id, title, url, site, published, first_seen{extra} FROM articles "
                "WHERE id IN ({marks})", ids):
            link = RelatedLink(article_id, title, url or "", site or "",
                               _parse_iso(published) or _parse_iso(first_seen))
            yield article_id, RelatedCandidate(link, cluster[0] if cluster else "")

    def content_hashes_of_source(self, source: str) -> dict[str, str]:
        """id -> content hash of every stored article of one source (full-text fetching skips these)."""
        return dict(self.conn.execute("SELECT id, content_hash FROM articles WHERE source = ?", [source]).fetchall())

    def cached_related(self, article_ids: list[str]) -> dict[str, tuple[str, int, list[str]]]:
        """article id -> (content hash, list size asked for, related ids) of stored lists."""
        return {article_id: (content_hash, size, json.loads(ids)) for article_id, content_hash, size, ids in
                self._rows_in("SELECT article_id, content_hash, size, related_ids FROM related_cache "
                              "WHERE article_id IN ({marks})", article_ids)}

    def save_related(self, lists: dict[str, tuple[str, int, list[str]]]) -> None:
        """Keep computed related lists (article id -> (content hash, size, ids)) in one transaction."""
        if not lists:
            return
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO related_cache (article_id, content_hash, size, related_ids) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(article_id) DO UPDATE SET content_hash = excluded.content_hash, "
                "size = excluded.size, related_ids = excluded.related_ids",
                [(i, h, n, json.dumps(ids)) for i, (h, n, ids) in lists.items()])

    def recent_terms(self, window: int) -> list[tuple[str, str, str]]:
        """(id, cluster id, encoded salient words) of the newest `window` articles, oldest first.

        Rows stored before the terms column existed (migration 10) get theirs
        from the text, once: they are written back, or every publish of an
        upgraded store would re-read and re-tokenize them (0.7 s per 10,000).
        """
        newest = self.conn.execute("SELECT MAX(rowid) FROM articles").fetchone()[0] or 0
        rows, worked_out = [], []
        for rowid, article_id, cluster_id, stored, title, text in self.conn.execute(
                "SELECT rowid, id, cluster_id, terms, CASE WHEN terms IS NULL THEN title END, "
                "CASE WHEN terms IS NULL THEN text END "
                "FROM articles WHERE rowid > ? ORDER BY rowid", [newest - window]).fetchall():
            if stored is None:
                stored = terms.encode(terms.salient_words(title, text or ""))
                worked_out.append((stored, rowid))
            rows.append((article_id, cluster_id or article_id, stored))
        if worked_out:
            with self.transaction():  # only where still missing: a row rewritten meanwhile has its own
                self.conn.executemany("UPDATE articles SET terms = ? WHERE rowid = ? AND terms IS NULL", worked_out)
        return rows

    def pruned_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of these ids retention has removed (and must not come back)."""
        return {r[0] for r in self._rows_in("SELECT id FROM pruned WHERE id IN ({marks})", ids)}

    def is_pruned(self, article_id: str) -> bool:
        return bool(self.pruned_ids([article_id]))

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- salvaging a damaged database (`aggregator recover`) ---

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
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
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
    source = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    target = Store(into)
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


def _salvage_table(source: sqlite3.Connection, target: Store, table: str, report: Salvage) -> None:
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


def _tidy_salvaged(target: Store, report: Salvage) -> None:
    conn = target.conn
    with target.transaction():
        for table, rowid, _parent, _key in conn.execute("PRAGMA foreign_key_check").fetchall():
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", [rowid])
            report.dropped += 1
        stored = {article_id for (article_id,) in conn.execute("SELECT id FROM articles")}
        orphaned = [cluster for (cluster,) in conn.execute(
            "SELECT DISTINCT cluster_id FROM articles WHERE cluster_id IS NOT NULL").fetchall() if cluster not in stored]
        for chunk in _chunks(orphaned, 500):  # a cluster whose representative was lost: its oldest member now
            target._repoint_clusters_to_heirs(chunk)
        lost_files = [path for path, ids in conn.execute("SELECT path, article_ids FROM files").fetchall()
                      if any(i not in stored for i in json.loads(ids or "[]"))]
        conn.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in lost_files])
        conn.execute("UPDATE sources SET etag = NULL, last_modified = NULL")
        conn.execute("DELETE FROM meta WHERE key LIKE 'published:%'")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('content_version', "
                     "CAST(COALESCE((SELECT value FROM meta WHERE key = 'content_version'), 0) AS INTEGER) + 1)")


def fts_query(text: str) -> str:
    """User text -> a safe FTS5 query: every word quoted, all required."""
    words = [w for w in fold_for_matching(text).replace('"', " ").split() if w]
    return " ".join(f'"{w}"' for w in words) or '""'


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _parse_iso(value: str | None) -> datetime | None:
    """A stored date; None for one a hand edit or an older version left unreadable, UTC if zoneless."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed and parsed.tzinfo is None else parsed


def _json_list(value: str | None) -> list:
    """A stored JSON list; empty for anything else (a hand edit must not stop every publish)."""
    try:
        loaded = json.loads(value) if value else []
    except (ValueError, TypeError):
        return []
    return loaded if isinstance(loaded, list) else []


def _texts(value: str | None) -> list[str]:
    return [item for item in _json_list(value) if isinstance(item, str)]


def _article_row(article: Article, first_seen: str, now: str) -> dict[str, Any]:
    return {
        "id": article.id, "source": article.source, "site": article.site,
        "title": article.title, "title_key": fold_for_matching(article.title),
        "url": article.url, "canonical_url": canonical_url(article.url), "guid": article.guid,
        "published": iso_utc(article.published), "updated": iso_utc(article.updated) or now,
        "first_seen": first_seen, "authors": json.dumps(article.authors),
        "categories": json.dumps(article.categories, ensure_ascii=False),
        "summary": article.summary, "text": article.text, "content_html": article.content_html,
        "image": article.image,
        "site_related": json.dumps([{"title": r.title, "author": r.author} for r in article.site_related],
                                   ensure_ascii=False),
        "origin": article.origin, "content_hash": article.content_hash,
        "cluster_id": article.cluster_id or article.id,
        "terms": terms.encoded(article),
    }


def _article_from_row(row: dict[str, Any], topics: list[str]) -> Article:
    return Article(
        id=row["id"], source=row["source"], title=row["title"], site=row["site"] or "",
        url=row["url"], guid=row["guid"],
        published=_parse_iso(row["published"]) or _parse_iso(row["first_seen"]),
        updated=_parse_iso(row["updated"]),
        authors=_texts(row["authors"]),
        categories=_texts(row["categories"]),
        summary=row["summary"] or "", text=row["text"] or "",
        content_html=row["content_html"] or "", image=row["image"],
        site_related=[SiteRelated(str(r.get("title") or ""), str(r.get("author") or ""))
                      for r in _json_list(row["site_related"]) if isinstance(r, dict) and r.get("title")],
        origin=row["origin"] or "", content_hash=row["content_hash"] or "", topics=topics,
        cluster_id=row["cluster_id"] or row["id"], terms=row.get("terms") or "",
    )
