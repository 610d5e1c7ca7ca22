"""The SQL of duplicate detection: signatures, exact-key lookups and clusters.

In: dedup's rows (dedup.stored.DedupRows: a signature per (re)indexed
article, cluster renames), written in a batch's transaction. Out: what
dedup looks up (stored docs, ids by URL key or body hash, every signature
for the in-memory index), each article's other copies, and the repointing
of clusters whose representative is deleted.

Deciding what is a copy, and keeping the in-memory LSH index, is dedup's
(dedup/detect.py, dedup/shared_index.py). This module only tells the shared
index what a transaction wrote, so it stays current, and moves the
`dedup_version` counter (meta table) with every signature write and prune,
so other processes' indexes see they are behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from aggregator.storage.connection import CACHE_KIB, SCAN_CACHE_KIB, Connection
from aggregator.storage.rows import parse_iso

if TYPE_CHECKING:
    from aggregator.dedup.lsh_index import Row
    from aggregator.dedup.stored import DedupRows, StoredDocRow


class DuplicatesMixin(Connection):
    # --- written with a batch ---

    def _write_dedup(self, rows: "DedupRows") -> None:
        """Signatures of (re)indexed articles, then the copies a representative left, then cluster renames."""
        self.conn.executemany(
            "INSERT INTO dedup_signatures (article_id, body_hash, shingles, signature, content_hash) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(article_id) DO UPDATE SET body_hash = excluded.body_hash, "
            "shingles = excluded.shingles, signature = excluded.signature, content_hash = excluded.content_hash",
            rows.signatures)
        if rows.signatures:
            before = self._bump_dedup_version()
            self.duplicate_index.added(before, ((article_id, signature, shingles)
                                                for article_id, _, shingles, signature, _ in rows.signatures))
        for representative, copies in rows.split.items():
            self._regroup(representative, copies)
        for old, new in rows.renames.items():
            self.conn.execute("UPDATE articles SET cluster_id = ? WHERE cluster_id = ?", [new, old])

    def dedup_version(self) -> int:
        return int(self.meta("dedup_version") or 0)

    def _bump_dedup_version(self) -> int:
        """Move the counter (inside the caller's transaction); returns its value before."""
        before = self.dedup_version()
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('dedup_version', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [str(before + 1)])
        return before

    # --- what dedup looks up ---

    def stored_doc_rows(self, ids: list[str]) -> Iterator["StoredDocRow"]:
        """Stored articles as the duplicate index knows them (signature None if not indexed)."""
        for article_id, cluster, published, first_seen, length, content_hash, signature, shingles in self._rows_in(
                "SELECT a.id, a.cluster_id, a.published, a.first_seen, LENGTH(a.text), a.content_hash, "
                "s.signature, s.shingles FROM articles a LEFT JOIN dedup_signatures s ON s.article_id = a.id "
                "WHERE a.id IN ({marks})", ids):
            yield (article_id, cluster or article_id, parse_iso(published), parse_iso(first_seen), length or 0,
                   content_hash or "", signature, shingles or 0)

    def ids_by_canonical_urls(self, urls: list[str]) -> dict[str, list[str]]:
        return self._ids_by("SELECT canonical_url, id FROM articles WHERE canonical_url IN ({marks})", urls)

    def ids_by_body_hashes(self, hashes: list[str]) -> dict[str, list[str]]:
        return self._ids_by("SELECT body_hash, article_id FROM dedup_signatures WHERE body_hash IN ({marks})", hashes)

    def _ids_by(self, sql: str, keys: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key, article_id in self._rows_in(sql, keys):
            found.setdefault(key, []).append(article_id)
        return found

    def signature_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM dedup_signatures").fetchone()[0]

    def signature_rows(self) -> Iterator["Row"]:
        """Every stored (article id, signature, shingle count), in doc order.

        Read through a small page cache: one pass over every signature would
        fill the cache with pages no lookup needs again (60 MB at 100,000 articles).
        """
        self.conn.execute(f"PRAGMA cache_size = -{SCAN_CACHE_KIB}")
        try:
            yield from self.conn.execute("SELECT article_id, signature, shingles FROM dedup_signatures ORDER BY doc")
        finally:
            self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    # --- clusters ---

    def duplicate_ids(self, article_ids: list[str]) -> dict[str, list[str]]:
        """article id -> ids of the other copies in its cluster."""
        result: dict[str, list[str]] = {i: [] for i in article_ids}
        for article_id, other in self._rows_in(
                "SELECT a.id, b.id FROM articles a JOIN articles b ON b.cluster_id = a.cluster_id "
                "AND b.id != a.id WHERE a.id IN ({marks}) ORDER BY b.id", article_ids):
            result[article_id].append(other)
        return result

    def other_members(self, cluster_id: str) -> list[str]:
        """The articles of a cluster other than the one it is named after."""
        return [r[0] for r in self.conn.execute("SELECT id FROM articles WHERE cluster_id = ? AND id != ?",
                                                [cluster_id, cluster_id])]

    def _regroup(self, representative: str, copies: list[str]) -> None:
        """The copies a representative was edited away from, as one cluster under the oldest of them."""
        marks = ", ".join("?" for _ in copies)
        where = f"cluster_id = ? AND id IN ({marks})"
        heir = self.conn.execute(f"SELECT id FROM articles WHERE {where} ORDER BY first_seen, id LIMIT 1",
                                 [representative, *copies]).fetchone()
        if heir is not None:
            self.conn.execute(f"UPDATE articles SET cluster_id = ? WHERE {where}", [heir[0], representative, *copies])

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
