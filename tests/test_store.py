"""The SQLite store: migrations, WAL, FTS5, stable ids and one transaction per batch."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aggregator.models import Article, SiteRelated
from aggregator.enrich.text import content_hash
from aggregator.storage import store as store_module
from aggregator.storage.store import MIGRATIONS, Store


def article(article_id: str, title: str = "Iraq talks resume", text: str = "Talks in Baghdad resumed.") -> Article:
    return Article(id=article_id, source="s", title=title, site="Site", text=text,
                   published=datetime(2024, 2, 8, 12, tzinfo=timezone.utc),
                   categories=["Middle East"], site_related=[SiteRelated("Other", "AP")],
                   content_hash=content_hash(title, text))


def test_new_database_has_wal_fts_and_every_migration(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        assert store.schema_version == max(MIGRATIONS)
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = set(store.db.table_names())
        assert {"articles", "article_topics", "sources", "files", "articles_fts"} <= tables
    with Store(tmp_path / "a.db") as again:  # reopening applies nothing twice
        assert again.schema_version == max(MIGRATIONS)


def test_migration_12_drops_the_indexes_no_query_reads(tmp_path: Path, monkeypatch) -> None:
    """Dates are always read as COALESCE(published, first_seen), which has its own index."""
    # A database as migration 11 left it (later migrations are not all re-runnable).
    monkeypatch.setattr(store_module, "MIGRATIONS", {n: m for n, m in MIGRATIONS.items() if n <= 11})
    with Store(tmp_path / "a.db") as store:
        store.write_articles([article("a1")], {})
        indexes = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"idx_articles_published", "idx_articles_content_hash"} <= indexes
    monkeypatch.undo()
    with Store(tmp_path / "a.db") as store:
        indexes = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert not {"idx_articles_published", "idx_articles_content_hash"} & indexes
        assert [a.id for a in store.articles(limit=5)] == ["a1"]
        plan = " ".join(r[3] for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM articles WHERE COALESCE(published, first_seen) < ?", ["2025"]))
        assert "idx_articles_newest" in plan


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        original = article("a1")
        store.write_articles([original], {"a1": ["middle-east"]})
        loaded = store.get("a1")
    assert loaded is not None
    assert (loaded.title, loaded.site, loaded.text, loaded.categories) == (
        original.title, original.site, original.text, original.categories)
    assert loaded.site_related == [SiteRelated("Other", "AP")]
    assert loaded.published == original.published
    assert loaded.topics == ["middle-east"]


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
        assert store.articles(search='"; DROP TABLE articles; --') == []


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
    older = article("old")
    older.published = datetime(2023, 1, 1, tzinfo=timezone.utc)
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
                item.published = None if rng.random() < 0.2 else datetime(
                    2024, 1, 1 + rng.randrange(28), rng.randrange(24), tzinfo=timezone.utc)
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

    monkeypatch.setattr(store_module, "FTS_CATCH_UP_ROWS", per_transaction)
    rng = random.Random(5)
    vocabulary = ["harbour", "ferry", "minister", "budget", "storm", "vaccine", "election", "bridge"]
    texts: dict[str, str] = {}
    with Store(tmp_path / "a.db") as store:

        def write(article_id: str, text: str, age: int) -> None:
            item = article(article_id, title="Item", text=text)
            item.published -= timedelta(days=age)  # each new article older: retention drops the newest row
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
