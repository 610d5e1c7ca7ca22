"""Related-post lists once computed (`related_cache`), and what they are computed from.

In: lists publish/related.py computed (article id -> content hash, size,
related ids). Out: the kept lists, the newest articles' salient words
(`recent_terms`) for the related-post search window, and the candidates'
features (`stored_profiles`) for judging them.

A list is kept until its article's own text changes, so feeds do not churn.
It is a cache: a read-only store computes what it needs and keeps nothing,
and the next publish keeps its own.
"""

from __future__ import annotations

import json

from aggregator.enrich import profile, terms
from aggregator.storage.rows import texts
from aggregator.storage.connection import Connection


class RelatedCacheMixin(Connection):
    def cached_related(self, article_ids: list[str]) -> dict[str, tuple[str, int, list[str]]]:
        """article id -> (content hash, list size asked for, related ids) of stored lists."""
        return {article_id: (content_hash, size, json.loads(ids)) for article_id, content_hash, size, ids in
                self._rows_in("SELECT article_id, content_hash, size, related_ids FROM related_cache "
                              "WHERE article_id IN ({marks})", article_ids)}

    def save_related(self, lists: dict[str, tuple[str, int, list[str]]]) -> None:
        """Keep computed related lists (article id -> (content hash, size, ids)) in one transaction;
        a read-only store keeps none."""
        if not lists or self.read_only:
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
        from the text. A writable store writes them back, once, or every
        publish of an upgraded store would re-read and re-tokenize them
        (0.7 s per 10,000); a read-only store works them out each time.
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
        if worked_out and not self.read_only:
            with self.transaction():  # only where still missing: a row rewritten meanwhile has its own
                self.conn.executemany("UPDATE articles SET terms = ? WHERE rowid = ? AND terms IS NULL", worked_out)
        return rows

    def stored_profiles(self, article_ids: list[str]) -> dict[str, tuple[str, list[str], list[str]]]:
        """article id -> (encoded profile, categories, topics), without reading the texts.

        Rows stored before the profile column existed (migration 18) get theirs
        from the text; a writable store writes them back, once.
        """
        rows, worked_out = {}, []
        for article_id, stored, categories, title, text in self._rows_in(
                "SELECT id, profile, categories, CASE WHEN profile IS NULL THEN title END, "
                "CASE WHEN profile IS NULL THEN text END FROM articles WHERE id IN ({marks})", article_ids):
            if stored is None:
                stored = profile.worked_out(title, text or "")
                worked_out.append((stored, article_id))
            rows[article_id] = (stored, texts(categories))
        if worked_out and not self.read_only:
            with self.transaction():  # only where still missing: a row rewritten meanwhile has its own
                self.conn.executemany("UPDATE articles SET profile = ? WHERE id = ? AND profile IS NULL",
                                      worked_out)
        topics = self.topics_of(list(rows))
        return {i: (stored, categories, topics.get(i, [])) for i, (stored, categories) in rows.items()}
