"""Stored articles (`articles`): a source batch written whole, and every way articles are read.

In: a batch of articles with their topics, dedup rows, the source's new
state and the local files read (`write_articles`). Out: articles newest
first by topic, source or search; single articles; clusters; headlines and
related-post candidates without the text.

A batch is written in transactions of up to WRITE_BATCH articles, and what
belongs to it (topics, signatures, source state, file states) goes into the
transaction of the articles it covers: the rows never disagree.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from aggregator.enrich.dates import iso_utc
from aggregator.models import Article, FileState, RelatedCandidate, RelatedLink
from aggregator.storage.connection import WRITE_BATCH
from aggregator.storage.duplicates import DuplicatesMixin
from aggregator.storage.files import FilesMixin
from aggregator.storage.fulltext import FullTextMixin, fts_query, search_error
from aggregator.storage.rows import ARTICLE_COLUMNS, article_from_row, article_row, parse_iso
from aggregator.storage.sources import SourcesMixin
from aggregator.storage.topics import TopicsMixin

if TYPE_CHECKING:
    from aggregator.dedup.stored import DedupRows


@dataclass(frozen=True)
class WriteOutcome:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


class ArticlesMixin(TopicsMixin, SourcesMixin, FilesMixin, DuplicatesMixin, FullTextMixin):
    # --- writing ---

    def write_articles(self, articles: Iterable[Article], topics: dict[str, list[str]],
                       dedup: "DedupRows | None" = None,
                       source_state: "tuple[str, dict[str, Any]] | None" = None,
                       files: Iterable[FileState] = ()) -> WriteOutcome:
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
                                                      renames=dedup.renames if last else {},
                                                      split=dedup.split if last else {})
            outcome = self._write_batch(chunk, topics, rows, source_state if last else None, files_in[n])
            new, updated, unchanged = new + outcome.new, updated + outcome.updated, unchanged + outcome.unchanged
        return WriteOutcome(new, updated, unchanged)

    def _write_batch(self, articles: list[Article], topics: dict[str, list[str]], dedup: "DedupRows | None",
                     source_state: "tuple[str, dict[str, Any]] | None", files: list[FileState]) -> WriteOutcome:
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
                record = article_row(article, first_seen=row[1] if row else now, now=now,
                                     canonical_urls=dedup.url_keys if dedup is not None else {})
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

    # --- reading ---

    def get(self, article_id: str) -> Article | None:
        row = self.conn.execute("SELECT * FROM articles WHERE id = ?", [article_id]).fetchone()
        return self._hydrate([row])[0] if row else None

    def get_many(self, ids: list[str]) -> dict[str, Article]:
        rows = list(self._rows_in("SELECT * FROM articles WHERE id IN ({marks})", ids))
        return {a.id: a for a in self._hydrate(rows)}

    def articles(self, topic: str | None = None, search: str | None = None,
                 limit: int | None = None, source: str | None = None, by_relevance: bool = False) -> list[Article]:
        """Newest first (or best match first); optionally one topic, one source, or matching a search.

        `search` takes FTS5 query syntax (fulltext.fts_query); a query SQLite
        cannot read raises SearchError, which names it and shows the syntax.
        """
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
        order = "f.rank, " if search and by_relevance else ""  # rank: FTS5's bm25, best first
        sql += f" ORDER BY {order}COALESCE(a.published, a.first_seen) DESC, a.id"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if search and (error := search_error(search, exc)):
                raise error from None
            raise
        return self._hydrate(rows)

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

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]

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

    def _hydrate(self, rows: list[tuple]) -> list[Article]:
        columns = [d[0] for d in self.conn.execute("SELECT * FROM articles LIMIT 0").description]
        records = [dict(zip(columns, row)) for row in rows]
        topics = self.topics_of([r["id"] for r in records]) if records else {}
        return [article_from_row(r, topics.get(r["id"], [])) for r in records]

    # --- what related posts read, without the text ---

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
                               parse_iso(published) or parse_iso(first_seen))
            yield article_id, RelatedCandidate(link, cluster[0] if cluster else "")

    def content_hashes(self, ids: list[str]) -> dict[str, str]:
        """id -> content hash of those stored: one with the same hash is not written again (_write_batch)."""
        return dict(self._rows_in("SELECT id, content_hash FROM articles WHERE id IN ({marks})", ids))

    def content_hashes_of_source(self, source: str) -> dict[str, str]:
        """id -> content hash of every stored article of one source (full-text fetching skips these)."""
        return dict(self.conn.execute("SELECT id, content_hash FROM articles WHERE source = ?", [source]).fetchall())
