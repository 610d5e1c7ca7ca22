"""The SQLite store: schema and migrations, WAL, FTS5, stable ids, one transaction per batch, read-only use."""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aggregator.models import Article, SiteRelated
from aggregator.enrich.text import content_hash
from aggregator.enrich.urls import canonical_url
from aggregator.storage import fulltext
from aggregator.storage.faults import OlderSchema, storage_fault
from aggregator.storage.migrations import MIGRATIONS
from aggregator.storage.store import SearchError, Store


def article(article_id: str, title: str = "Iraq talks resume", text: str = "Talks in Baghdad resumed.") -> Article:
    return Article(id=article_id, source="s", title=title, site="Site", text=text,
                   published=datetime(2024, 2, 8, 12, tzinfo=timezone.utc),
                   categories=["Middle East"], site_related=[SiteRelated("Other", "AP")],
                   content_hash=content_hash(title, text))


def database_at(path: Path, version: int) -> None:
    """A database as an older aggregator left it: the numbered migrations 1..version, nothing else."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("canonical_url_of", 1, canonical_url, deterministic=True)
    conn.execute("PRAGMA journal_mode = WAL")
    for number in range(1, version + 1):
        for statement in MIGRATIONS[number]:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def file_contents(path: Path) -> dict[str, str]:
    """sha256 of the database file and of its write-ahead log (none and empty alike: no content)."""
    wal = Path(f"{path}-wal")
    return {"db": hashlib.sha256(path.read_bytes()).hexdigest(),
            "wal": hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest()}


def test_new_database_has_wal_fts_and_every_migration(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        assert store.schema_version == max(MIGRATIONS)
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = set(store.db.table_names())
        assert {"articles", "article_topics", "sources", "files", "articles_fts"} <= tables
    with Store(tmp_path / "a.db") as again:  # reopening applies nothing twice
        assert again.schema_version == max(MIGRATIONS)


def test_migration_12_drops_the_indexes_no_query_reads(tmp_path: Path) -> None:
    """Dates are always read as COALESCE(published, first_seen), which has its own index."""
    database_at(tmp_path / "a.db", 11)
    with sqlite3.connect(tmp_path / "a.db") as old:
        old.execute("INSERT INTO articles (id, source, title, published) VALUES ('a1', 's', 'T', '2024-02-08')")
        indexes = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"idx_articles_published", "idx_articles_content_hash"} <= indexes
    with Store(tmp_path / "a.db") as store:
        assert store.schema_version == max(MIGRATIONS)
        indexes = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert not {"idx_articles_published", "idx_articles_content_hash"} & indexes
        assert [a.id for a in store.articles(limit=5)] == ["a1"]
        plan = " ".join(r[3] for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM articles WHERE COALESCE(published, first_seen) < ?", ["2025"]))
        assert "idx_articles_newest" in plan


def schema_of(path: Path) -> dict[str, object]:
    """Every table's columns, keys and indexes, every trigger, and the full-text index's options:
    what a query or a write can tell apart, not how the CREATE statements were spelled."""
    conn = sqlite3.connect(path)

    def normal(sql: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r'["\[\]]', "", sql)).strip().lower()

    tables = {}
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'articles_fts%'"):
        indexes = {}
        for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})"):
            columns = [row[1:] for row in conn.execute(f"PRAGMA index_xinfo({index})")]
            indexes[index] = (unique, origin, partial, columns)
        tables[name] = {
            "columns": [(c[1], c[2].upper(), c[3], c[4], c[5]) for c in conn.execute(f"PRAGMA table_info({name})")],
            "foreign keys": [fk[2:] for fk in conn.execute(f"PRAGMA foreign_key_list({name})")],
            "indexes": indexes,
        }
    triggers = {name: normal(sql) for name, sql in conn.execute("SELECT name, sql FROM sqlite_master "
                                                                "WHERE type = 'trigger'")}
    fts_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'articles_fts'").fetchone()[0]
    options = {part.strip() for part in normal(fts_sql[fts_sql.index("(") + 1:fts_sql.rindex(")")]).split(",")}
    options.add("content_rowid=rowid")  # FTS5's default when not given
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    meta = conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
    conn.close()
    return {"tables": tables, "triggers": triggers, "full text": options, "version": version, "meta": meta}


def test_a_new_database_has_the_schema_the_migrations_give_an_old_one(tmp_path: Path) -> None:
    """schema.py creates the current schema whole; migrations.py brings a version-1 database to it.
    Both must give the same tables, columns, keys, indexes, triggers and full-text options."""
    database_at(tmp_path / "old.db", 1)
    with Store(tmp_path / "old.db") as old, Store(tmp_path / "new.db") as new:
        assert old.schema_version == new.schema_version == max(MIGRATIONS)
        for store in (old, new):  # the same tokenizer: stemmed, accents folded
            store.write_articles([article("a1", "Voters in Zürich", "The café voted.")], {})
            assert [a.id for a in store.articles(search="zurich cafe vote")] == ["a1"]
    assert schema_of(tmp_path / "old.db") == schema_of(tmp_path / "new.db")


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        original = article("a1")
        store.write_articles([original], {"a1": ["middle-east"]})
        loaded = store.get("a1")
    assert loaded is not None
    assert (loaded.title, loaded.site, loaded.text, loaded.categories) == (
        original.title, original.site, original.text, original.categories)
    assert loaded.site_related == (SiteRelated("Other", "AP"),)
    assert loaded.published == original.published
    assert loaded.topics == ("middle-east",)


def test_same_id_twice_is_one_article_and_unchanged_costs_no_write(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        first = store.write_articles([article("a1")], {})
        changes_before = store.db.conn.total_changes
        second = store.write_articles([article("a1")], {})
        assert store.db.conn.total_changes == changes_before
        third = store.write_articles([article("a1", text="Talks in Baghdad resumed on Sunday.")], {})
        assert (first.new, second.unchanged, third.updated) == (1, 1, 1)
        assert store.count() == 1


def test_full_text_search_finds_words_and_follows_updates(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        store.write_articles([article("a1"), article("a2", "Greek vote", "Parliament in Athens voted.")], {})
        assert [a.id for a in store.articles(search="baghdad")] == ["a1"]
        assert [a.id for a in store.articles(search="ATHENS")] == ["a2"]
        store.write_articles([article("a2", "Greek vote", "Parliament in Thessaloniki voted.")], {})
        assert store.articles(search="athens") == []
        assert [a.id for a in store.articles(search="thessaloniki")] == ["a2"]
        with pytest.raises(SearchError, match="not a valid query"):  # FTS5 syntax, never SQL: a clear error
            store.articles(search='"; DROP TABLE articles; --')
        assert store.count() == 2


def test_a_search_on_a_read_only_connection_sees_what_is_indexed_and_says_what_is_not(tmp_path: Path,
                                                                                       caplog) -> None:
    with Store(tmp_path / "a.db") as store:
        store.write_articles([article("a1")], {})
        assert [a.id for a in store.articles(search="baghdad")] == ["a1"]  # indexed now
        store.write_articles([article("a2", "Baghdad talks", "Talks in Baghdad again.")], {})  # pending
        store.conn.execute("PRAGMA query_only = ON")  # as a reader without write access
        assert [a.id for a in store.articles(search="baghdad")] == ["a1"]
        assert "read-only" in caplog.text and "1 articles stored since" in caplog.text
        store.conn.execute("PRAGMA query_only = OFF")
        assert sorted(a.id for a in store.articles(search="baghdad")) == ["a1", "a2"]


def test_a_failing_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    def batch():
        yield article("ok1")
        raise Boom()

    with Store(tmp_path / "a.db") as store:
        store.write_articles([article("kept")], {})
        with pytest.raises(Boom):
            store.write_articles(batch(), {})
        assert store.all_ids() == ["kept"]
        assert store.integrity_ok()


def test_one_commit_writes_several_batches_together_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as store, Store(path) as other:
        with store.one_commit():
            store.write_articles([article("a1")], {})
            store.write_articles([article("a2")], {})
            assert other.count() == 0, "nothing is visible before the block commits"
        assert other.count() == 2
        with pytest.raises(RuntimeError), store.one_commit():
            store.write_articles([article("a3")], {})
            raise RuntimeError("a bug between two feeds")
        assert store.all_ids() == ["a1", "a2"] and not store.conn.in_transaction


def test_a_failing_batch_inside_one_commit_rolls_back_alone_when_caught(tmp_path: Path) -> None:
    def failing():
        yield article("half")
        raise ValueError("bad batch")

    with Store(tmp_path / "a.db") as store:
        with store.one_commit():
            store.write_articles([article("a1")], {})
            with pytest.raises(ValueError):
                store.write_articles(failing(), {})  # a savepoint: only this batch is undone
            store.write_articles([article("a2")], {})
        assert store.all_ids() == ["a1", "a2"] and store.integrity_ok()


def test_one_commit_that_writes_nothing_takes_no_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as store, Store(path) as other:
        with store.one_commit():
            other.write_articles([article("from-elsewhere")], {})  # would wait for a held lock
        assert not store.conn.in_transaction and store.count() == 1


def test_second_connection_reads_while_first_writes(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as writer, Store(path) as reader:
        writer.write_articles([article("a1")], {})
        assert reader.count() == 1
        raw = sqlite3.connect(path)
        assert raw.execute("SELECT title FROM articles").fetchone()[0] == "Iraq talks resume"
        raw.close()


def test_newest_first_and_topic_filter(tmp_path: Path) -> None:
    older = replace(article("old"), published=datetime(2023, 1, 1, tzinfo=timezone.utc))
    with Store(tmp_path / "a.db") as store:
        store.write_articles([older, article("new")], {"old": ["t"], "new": ["t", "u"]})
        assert [a.id for a in store.articles()] == ["new", "old"]
        assert [a.id for a in store.articles(topic="u")] == ["new"]
        assert store.topic_counts() == {"t": 2, "u": 1}


def test_a_topics_newest_articles_come_from_its_index_in_the_same_order_as_a_full_sort(tmp_path: Path) -> None:
    """The topic index's dates (migration 11) follow new articles, edits, dates that arrive
    later, re-tagging and deletions: every topic's newest N equal a sort of all its rows."""
    import random

    rng = random.Random(11)
    topics = ["t1", "t2", "t3"]

    def expected(store: Store, topic: str, limit: int) -> list[str]:
        return [r[0] for r in store.db.execute(
            "SELECT a.id FROM articles a JOIN article_topics t ON t.article_id = a.id WHERE t.topic = ? "
            "ORDER BY COALESCE(a.published, a.first_seen) DESC, a.id LIMIT ?", [topic, limit])]

    with Store(tmp_path / "a.db") as store:
        for step in range(12):
            batch = []
            for _ in range(15):
                item = article(f"a{rng.randrange(60):02d}", text=f"Story {rng.random()}")
                item = replace(item, published=None if rng.random() < 0.2 else datetime(
                    2024, 1, 1 + rng.randrange(28), rng.randrange(24), tzinfo=timezone.utc))
                batch.append(item)
            store.write_articles(batch, {a.id: rng.sample(topics, rng.randint(0, 2)) for a in batch})
            if step % 4 == 3:
                ids = store.all_ids()
                store.replace_topics({i: rng.sample(topics, rng.randint(1, 3)) for i in rng.sample(ids, 10)})
                with store.transaction():
                    store.db.execute("DELETE FROM articles WHERE id = ?", [rng.choice(ids)])
            for topic in topics:
                for limit in (1, 5, 50):
                    assert [a.id for a in store.articles(topic=topic, limit=limit)] == expected(store, topic, limit)
        assert all(store.articles(topic=t, limit=5) for t in topics)


@pytest.mark.parametrize("per_transaction", [3, 20_000])
def test_full_text_index_caught_up_late_matches_the_articles_exactly(tmp_path: Path, per_transaction: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Articles are indexed for search in bulk when it is next read (migration 9). Inserts,
    edits and deletions, of rows already indexed and of rows still waiting, and a deleted
    last rowid given out again, must leave the index equal to the stored text."""
    import random
    from datetime import timedelta

    monkeypatch.setattr(fulltext, "FTS_CATCH_UP_ROWS", per_transaction)
    rng = random.Random(5)
    vocabulary = ["harbour", "ferry", "minister", "budget", "storm", "vaccine", "election", "bridge"]
    texts: dict[str, str] = {}
    with Store(tmp_path / "a.db") as store:

        def write(article_id: str, text: str, age: int) -> None:
            base = article(article_id, title="Item", text=text)
            # Each new article older: retention drops the newest row.
            item = replace(base, published=base.published - timedelta(days=age))
            store.write_articles([item], {})
            texts[article_id] = text

        for step in range(240):
            roll = rng.random()
            if roll < 0.55 or not texts:
                write(f"a{step}", " ".join(rng.sample(vocabulary, 3)), age=step)
            elif roll < 0.85:
                changed = rng.choice(sorted(texts))
                write(changed, " ".join(rng.sample(vocabulary, 3)), age=int(changed[1:]))
            else:
                for gone in store.prune(max_per_source=max(1, len(texts) - 2)):
                    del texts[gone]
            if step % 7 == 0:
                for word in vocabulary:
                    expected = {i for i, text in texts.items() if word in text.split()}
                    assert {a.id for a in store.articles(search=word)} == expected, (step, word)
        store.articles(search="harbour")  # catch up, then ask SQLite to check the index against the rows
        store.conn.execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)")
        assert store.conn.execute("SELECT COUNT(*) FROM fts_pending").fetchone()[0] == 0


def test_a_store_that_wrote_indexes_the_stored_text_when_it_closes(tmp_path: Path) -> None:
    """Writing commands catch the full-text index up, so a read-only search later sees every article."""
    with Store(tmp_path / "a.db") as store:
        store.write_articles([article("a1"), article("a2", "Greek vote", "Parliament in Athens voted.")], {})
        assert store.conn.execute("SELECT COUNT(*) FROM fts_pending").fetchone()[0] == 2  # not per batch
    with Store(tmp_path / "a.db", read_only=True) as reader:
        assert reader.conn.execute("SELECT COUNT(*) FROM fts_pending").fetchone()[0] == 0
        assert [a.id for a in reader.articles(search="athens")] == ["a2"]


def test_a_read_only_store_reads_everything_and_leaves_the_files_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store(path) as store:
        store.write_articles([article("a1"), article("a2", "Greek vote", "Parliament in Athens voted.")],
                             {"a1": ["middle-east"]}, source_state=("s", {"status": "ok"}))
        store.conn.execute("UPDATE articles SET terms = NULL WHERE id = 'a1'")  # as stored before migration 10
    before = file_contents(path)
    with Store(path, read_only=True) as reader:
        assert reader.read_only and reader.count() == 2
        assert [a.id for a in reader.articles(search="baghdad")] == ["a1"]
        assert [a.id for a in reader.articles(topic="middle-east", limit=5)] == ["a1"]
        assert reader.topic_counts() == {"middle-east": 1} and reader.source_states()["s"]["status"] == "ok"
        assert reader.duplicate_ids(["a1"]) == {"a1": []} and reader.get("a2").title == "Greek vote"
        assert [i for i, _, words in reader.recent_terms(10) if words] == ["a1", "a2"]  # worked out, not written
        reader.save_related({"a1": ("hash", 3, ["a2"])})  # kept lists are the writers' to keep
        assert reader.cached_related(["a1"]) == {}
        with pytest.raises(sqlite3.OperationalError):
            reader.set_meta("x", "y")
    assert file_contents(path) == before


def test_a_read_only_store_without_a_database_reads_as_empty_and_creates_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "data" / "a.db", read_only=True) as reader:
        assert reader.count() == 0 and reader.articles(search="anything") == [] and reader.source_states() == {}
    assert not (tmp_path / "data").exists()


def test_a_read_only_store_refuses_an_older_schema_and_names_the_command_that_upgrades_it(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    database_at(path, 11)
    before = file_contents(path)
    with pytest.raises(OlderSchema) as refused:
        Store(path, read_only=True)
    fault = storage_fault(refused.value, path)
    assert fault is not None and fault.kind == "older schema"
    assert str(fault) == (f"{path}: the database was written by an older aggregator (schema version 11 of "
                          f"{max(MIGRATIONS)}); run a command that writes, such as `aggregator run --once`, "
                          "to upgrade it (nothing stored is lost)")
    assert file_contents(path) == before
    with Store(path):  # a writing store migrates it
        pass
    with Store(path, read_only=True) as reader:
        assert reader.schema_version == max(MIGRATIONS)


def test_a_read_only_search_sees_what_is_indexed_and_says_what_is_not(tmp_path: Path, caplog) -> None:
    """Articles a writer has stored but not yet indexed (it is still running) are left out, and counted."""
    path = tmp_path / "a.db"
    with Store(path) as writer:
        writer.write_articles([article("a1")], {})
        writer.index_pending_text()
        writer.write_articles([article("a2", "Baghdad talks", "Talks in Baghdad again.")], {})  # pending
        with caplog.at_level(logging.WARNING, logger="aggregator"), Store(path, read_only=True) as reader:
            assert [a.id for a in reader.articles(search="baghdad")] == ["a1"]
        assert "read-only" in caplog.text and "1 articles stored since" in caplog.text
