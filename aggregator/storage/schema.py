"""The current schema, created whole in a new database.

In: the connection to an empty database, inside migrations.migrate's
transaction. Out: every table, index and trigger of the latest schema
version, and the full-text index. Older databases reach the same shape
through the numbered migrations (migrations.py); tests/test_store.py checks
that both ways agree.

Tables, plain indexes and the full-text index are declared with
sqlite-utils. What it cannot declare is SQL: the UNIQUE article_id of
dedup_signatures (a constraint, as older databases have it), the expression
index every date query reads, and the triggers. sqlite-utils imports numpy
and dateutil, so this module is loaded only when a database is created
(storage/__init__.py loads submodules on first use).
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils.db import DescIndex, ForeignKey

from aggregator.storage.views import VIEWS

# An article's own text and title, searchable by word: stemmed, accents folded.
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

# The index every date query and every feed's newest-first order reads.
NEWEST_INDEX = "CREATE INDEX idx_articles_newest ON articles (COALESCE(published, first_seen) DESC, id)"

# A signature per article, whose doc number is a small integer row id.
DEDUP_SIGNATURES = """CREATE TABLE dedup_signatures (
    doc INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE REFERENCES articles(id) ON DELETE CASCADE,
    body_hash TEXT, shingles INTEGER NOT NULL, signature BLOB NOT NULL, content_hash TEXT)"""

# The full-text index is written in bulk by writing commands (fulltext.py): an insert only lists
# the new row in fts_pending. A delete or edit of an indexed row updates the index at once.
FULL_TEXT_TRIGGERS = [
    """CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
        INSERT OR IGNORE INTO fts_pending (rowid) VALUES (new.rowid);
    END""",
    """CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, text)
            SELECT 'delete', old.rowid, old.title, old.text
            WHERE NOT EXISTS (SELECT 1 FROM fts_pending WHERE rowid = old.rowid);
        DELETE FROM fts_pending WHERE rowid = old.rowid;
    END""",
    # A pending article's new text is indexed when it is caught up; only an indexed one changes here.
    """CREATE TRIGGER articles_au AFTER UPDATE OF title, text ON articles
        WHEN NOT EXISTS (SELECT 1 FROM fts_pending WHERE rowid = old.rowid) BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, text)
        VALUES ('delete', old.rowid, old.title, old.text);
        INSERT INTO articles_fts (rowid, title, text) VALUES (new.rowid, new.title, new.text);
    END""",
]

# A counter that moves whenever anything a feed shows may have changed, so an unchanged
# republish is recognised without rendering (publish/last_publish.py).
CONTENT_VERSION_TRIGGERS = [
    f"""CREATE TRIGGER {table}_version_{event[0].lower()} AFTER {event} ON {table} BEGIN
        UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'content_version';
    END""" for table in ("articles", "article_topics") for event in ("INSERT", "UPDATE", "DELETE")]


def _cascade(table: str, column: str, other: str = "articles", other_column: str = "id") -> ForeignKey:
    """A row that goes with the row it names."""
    return ForeignKey(table, column, other, other_column, on_delete="CASCADE")


def create(conn: sqlite3.Connection) -> None:
    """Every table, index, trigger and view of the current schema (the caller holds a transaction)."""
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    _articles(db)
    _topics(db)
    _sources_and_files(db)
    _duplicates_and_retention(db)
    _derived(db)
    for statement in [*FULL_TEXT_TRIGGERS, *CONTENT_VERSION_TRIGGERS]:
        conn.execute(statement)
    for name, sql in VIEWS.items():
        db.create_view(name, sql)


def _articles(db: sqlite_utils.Database) -> None:
    """Stored articles, searchable by title and text."""
    text = ["source", "site", "title", "title_key", "url", "canonical_url", "guid", "published", "updated",
            "first_seen", "authors", "categories", "summary", "text", "content_html", "image", "site_related",
            "origin", "content_hash", "cluster_id", "terms", "language", "profile"]
    articles = db.table("articles")
    articles.create({"id": str, **{name: str for name in text}}, pk="id", not_null=["source", "title"])
    articles.create_index(["source"], "idx_articles_source")
    articles.create_index(["canonical_url"], "idx_articles_canonical_url")
    articles.create_index(["title_key"], "idx_articles_title_key")
    articles.create_index(["cluster_id"], "idx_articles_cluster")
    db.execute(NEWEST_INDEX)
    db.table("fts_pending").create({"rowid": int}, pk="rowid")  # stored, not yet searchable
    articles.enable_fts(["title", "text"], tokenize=FTS_TOKENIZER)


def _topics(db: sqlite_utils.Database) -> None:
    """Each article's topics, with its date (`newest`), so a topic's newest come straight from an index."""
    topics = db.table("article_topics")
    topics.create({"article_id": str, "topic": str, "newest": str}, pk=("article_id", "topic"),
                  not_null=["article_id", "topic"], foreign_keys=[_cascade("article_topics", "article_id")])
    topics.create_index(["topic", DescIndex("newest"), "article_id"], "idx_article_topics_newest")


def _sources_and_files(db: sqlite_utils.Database) -> None:
    """Each source's fetch state, and each local file's last stored state."""
    db.table("sources").create({
        "name": str, "kind": str, "location": str, "status": str, "etag": str, "last_modified": str,
        "last_fetch": str, "last_success": str, "last_error": str, "next_due": str, "error_count": int,
        "http_status": int, "url": str, "fingerprint": str, "retry_after": str, "interval_seconds": float,
        "found_on": str, "warning": str,
    }, pk="name", defaults={"error_count": 0})
    files = db.table("files")
    files.create({"path": str, "source": str, "content_hash": str, "article_ids": str, "seen": str,
                  "size": int, "mtime_ns": int}, pk="path")
    files.create_index(["source"], "idx_files_source")


def _duplicates_and_retention(db: sqlite_utils.Database) -> None:
    """The duplicate index's signatures, and the ids retention removed (kept from coming back)."""
    db.execute(DEDUP_SIGNATURES)
    db.table("dedup_signatures").create_index(["body_hash"], "idx_dedup_body_hash")
    pruned = db.table("pruned")
    pruned.create({"id": str, "source": str, "pruned_at": str}, pk="id", not_null=["pruned_at"])
    pruned.create_index(["pruned_at"], "idx_pruned_at")


def _derived(db: sqlite_utils.Database) -> None:
    """Kept results: related-post lists, and counters (content_version)."""
    db.table("related_cache").create(
        {"article_id": str, "content_hash": str, "size": int, "related_ids": str}, pk="article_id",
        not_null=["size", "related_ids"], foreign_keys=[_cascade("related_cache", "article_id")])
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("meta").insert({"key": "content_version", "value": "0"})
