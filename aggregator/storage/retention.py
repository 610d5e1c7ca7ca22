"""Retention: deleting old articles, and remembering their ids (`pruned`) so they do not come back.

In: how many days to keep, and how many articles per source. Out: the ids
deleted; and, for an ingest, which of a batch's ids were deleted before
(a feed that still lists one must not revive it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from aggregator.enrich.dates import iso_utc
from aggregator.storage.connection import IN_CLAUSE_KEYS, chunks
from aggregator.storage.duplicates import DuplicatesMixin

PRUNED_MEMORY_DAYS = 365  # how long a pruned id is kept from coming back


class RetentionMixin(DuplicatesMixin):
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
            for chunk in chunks(doomed, IN_CLAUSE_KEYS):
                marks = ", ".join("?" for _ in chunk)
                self.conn.executemany(
                    "INSERT OR REPLACE INTO pruned (id, source, pruned_at) "
                    "SELECT id, source, ? FROM articles WHERE id = ?",
                    [(iso_utc(now), article_id) for article_id in chunk])
                self.conn.execute(f"DELETE FROM articles WHERE id IN ({marks})", chunk)
                self._repoint_clusters(chunk)
            if doomed:  # their signatures went with them: rebuilt here and in other processes
                self._bump_dedup_version()
                self.duplicate_index.drop()
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

    def pruned_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of these ids retention has removed (and must not come back)."""
        return {r[0] for r in self._rows_in("SELECT id FROM pruned WHERE id IN ({marks})", ids)}

    def is_pruned(self, article_id: str) -> bool:
        return bool(self.pruned_ids([article_id]))
