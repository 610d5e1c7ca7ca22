"""The numbered schema changes that bring an older database to the current schema.

In: an open connection (connection.Connection) at some `PRAGMA user_version`.
Out: the same database at the latest version, each migration in its own
transaction. A new database skips them: schema.py creates the current
schema whole, and tests/test_store.py checks that both ways give the same
tables, indexes and triggers.

A migration is a list of plain SQL statements, kept as it shipped: it is
what older databases were given, so it is appended to, never edited.
A read-only store migrates nothing: `require_current` refuses a database
that is behind and names the command that upgrades it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aggregator import storage
from aggregator.storage.faults import OlderSchema
from aggregator.storage.views import VIEWS

if TYPE_CHECKING:
    from aggregator.storage.connection import Connection


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
    # The duplicate index (dedup/): one MinHash signature per article, and its LSH band
    # buckets keyed by a small integer doc number (dropped again by migration 8).
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
    # Related posts (publish/related.py), kept once computed: an entry's list changes only when
    # the article's own text does, so feeds do not churn and republishing costs no searches.
    """CREATE TABLE related_cache (
        article_id TEXT PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
        content_hash TEXT, size INTEGER NOT NULL, related_ids TEXT NOT NULL)""",
]

MIGRATION_7 = [
    # A counter that moves whenever anything a feed shows may have changed, so an
    # unchanged republish can be recognised without rendering (publish/last_publish.py).
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "INSERT INTO meta (key, value) VALUES ('content_version', '0')",
    *[f"""CREATE TRIGGER {table}_version_{event[0].lower()} AFTER {event} ON {table} BEGIN
        UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'content_version';
    END""" for table in ("articles", "article_topics") for event in ("INSERT", "UPDATE", "DELETE")],
]

MIGRATION_8 = [
    # No LSH bucket table: the buckets are derived from the signatures, in memory (dedup/lsh_index.py).
    "DROP TABLE IF EXISTS lsh_buckets",
    "DELETE FROM meta WHERE key = 'lsh_layout'",
]

MIGRATION_9 = [
    # The full-text index is written in bulk by the writing commands (fulltext.py), not row by
    # row inside every batch, which costs a first ingest a third more (docs/decisions/0008).
    # fts_pending lists the articles not yet indexed (a rowid list, not a high-water mark:
    # SQLite gives a deleted last rowid out again).
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
    # Each article's salient words (enrich/terms.py), written with it: related posts match on these
    # in memory instead of one bm25 full-text search per list (5 ms each at 100,000 articles).
    # Older rows start NULL; related_cache.recent_terms works theirs out from the text.
    "ALTER TABLE articles ADD COLUMN terms TEXT",
    # Newest first, the order every feed lists: without it the "all" feed reads and sorts every
    # row (0.29 s at 100,000 articles); with it, 50 entries.
    "CREATE INDEX IF NOT EXISTS idx_articles_newest ON articles (COALESCE(published, first_seen) DESC, id)",
]

MIGRATION_11 = [
    # Each topic's articles newest first, straight from an index, not by sorting all the topic's
    # rows (16 ms per topic at 100,000 articles, 2,000 per topic).
    # `newest` is the article's COALESCE(published, first_seen), set whenever its topics are written.
    "ALTER TABLE article_topics ADD COLUMN newest TEXT",
    "UPDATE article_topics SET newest = (SELECT COALESCE(published, first_seen) FROM articles WHERE id = article_id)",
    "DROP INDEX IF EXISTS idx_article_topics_topic",
    "CREATE INDEX idx_article_topics_newest ON article_topics (topic, newest DESC, article_id)",
]

MIGRATION_12 = [
    # Indexes no query reads: every date query and sort goes by COALESCE(published, first_seen)
    # (idx_articles_newest), and duplicate texts are found by dedup_signatures.body_hash. Each
    # costs a random page write per stored article.
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
    # Every stored article's URL key recomputed with canonical_url on w3lib (issue 24: caf%C3%A9
    # and café, ~ and %7E, xn-- and Unicode hosts give one key), so a new copy of an older story
    # is found by URL. canonical_url_of is normalize.canonical_url, registered per connection.
    "UPDATE articles SET canonical_url = canonical_url_of(url) "
    "WHERE url IS NOT NULL AND canonical_url IS NOT canonical_url_of(url)",
]

# Views for browsing with sqlite-utils and Datasette (issue 23). A later change to a view is a new
# migration that drops and creates it again.
MIGRATION_16 = [f"CREATE VIEW IF NOT EXISTS {name} AS {sql}" for name, sql in VIEWS.items()]

MIGRATION_17 = [
    # Each article's language, ISO 639-1 (enrich/language.py); older rows stay unknown until updated.
    "ALTER TABLE articles ADD COLUMN language TEXT",
]

MIGRATION_18 = [
    # Each article's related-post features (enrich/profile.py), written with it: judging a candidate
    # reads them instead of the candidate's whole text (0.65 ms each). Older rows start NULL;
    # related_cache.stored_profiles works theirs out from the text and writes them back.
    "ALTER TABLE articles ADD COLUMN profile TEXT",
]

# Numbered schema changes, applied in order. Append a new number; never edit one that has shipped.
MIGRATIONS: dict[int, list[str]] = {
    1: MIGRATION_1, 2: MIGRATION_2, 3: MIGRATION_3, 4: MIGRATION_4, 5: MIGRATION_5, 6: MIGRATION_6,
    7: MIGRATION_7, 8: MIGRATION_8, 9: MIGRATION_9, 10: MIGRATION_10,
    11: MIGRATION_11, 12: MIGRATION_12, 13: MIGRATION_13, 14: MIGRATION_14, 15: MIGRATION_15,
    16: MIGRATION_16, 17: MIGRATION_17, 18: MIGRATION_18,
}


def latest() -> int:
    return max(MIGRATIONS)


def migrate(store: "Connection") -> None:
    """Bring the database to the latest version: created whole if new, else each migration it lacks.

    Each step is one transaction that checks the version again once it holds
    the write lock: another process opening the same file may have done it.
    """
    if store.schema_version == 0:
        with store.transaction():
            if store.schema_version == 0:
                storage.schema.create(store.conn)
                store.conn.execute(f"PRAGMA user_version = {latest()}")
    for number, statements in sorted(MIGRATIONS.items()):
        if store.schema_version >= number:
            continue
        with store.transaction():
            if store.schema_version < number:
                for statement in statements:
                    store.conn.execute(statement)
                store.conn.execute(f"PRAGMA user_version = {number}")


def require_current(store: "Connection") -> None:
    """Raise OlderSchema when the database is behind: a read-only store cannot migrate it."""
    version = store.schema_version
    if version < latest():
        raise OlderSchema(store.path, version, latest())
