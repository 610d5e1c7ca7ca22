"""The LSH band buckets of every stored signature, held in memory.

Finding a new article's near-duplicate candidates used to be an indexed
SQL lookup per band in an `lsh_buckets` table: 30 rows written and 30 index
probes per article, about a fifth of a first ingest's main thread. The
buckets are a pure function of the signatures, which stay in SQLite, so
they are rebuilt here instead, once per process (about 0.2 s for 10,000
articles, see bench/README.md), and kept current by the store's own writes.

Layout: one sorted array of (band, bucket) keys with the row each came
from, plus a dict of the rows added since the last merge (sorting millions
of keys for every batch of fifty would cost more than it saves). A row is
one stored signature; an article that is re-indexed gets a new row and its
old one is marked dead.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .dedup import NUM_PERM, band_key_matrix

# One salt per band, so equal bucket keys of different bands never meet in the one sorted array.
_BAND_SALT = np.random.default_rng(20251126).integers(1, 2**63, size=64, dtype=np.uint64)
MERGE_AT = 50_000  # recent (band, bucket) entries kept in the dict before they are sorted in
Similar = tuple[str, int, float, int]  # (article id, buckets shared, Jaccard estimate, shingle count)
Query = tuple[list[int], np.ndarray]  # (band keys, signature) of one new article


def _salted(keys: np.ndarray, bands: np.ndarray) -> np.ndarray:
    return keys.astype(np.uint64) ^ _BAND_SALT[bands]


class LshIndex:
    """Signatures by row, and which rows share each (band, bucket)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.signatures = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self.shingles = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.keys = np.zeros(0, dtype=np.uint64)  # sorted salted bucket keys ...
        self.key_rows = np.zeros(0, dtype=np.int32)  # ... and the row of each
        self.recent: dict[int, list[int]] = {}  # salted key -> rows, not yet merged into `keys`
        self.recent_entries = 0

    @classmethod
    def build(cls, rows: Iterable[tuple[str, bytes, int]]) -> "LshIndex":
        """From (article id, signature bytes, shingle count) rows, all sorted in one go."""
        index = cls()
        rows = [row for row in rows if len(row[1]) == NUM_PERM * 4]  # anything else cannot be compared
        if not rows:
            return index
        index.ids = [row[0] for row in rows]
        index.row_of = {article_id: i for i, article_id in enumerate(index.ids)}
        index.signatures = np.frombuffer(b"".join(row[1] for row in rows), dtype="<u4").reshape(
            len(rows), NUM_PERM).astype(np.uint32)
        index.shingles = np.fromiter((row[2] for row in rows), dtype=np.int64, count=len(rows))
        index.alive = np.ones(len(rows), dtype=bool)
        bands = band_key_matrix(index.signatures)
        salted = _salted(bands, np.arange(bands.shape[1])[None, :].repeat(len(rows), axis=0)).ravel()
        order = np.argsort(salted, kind="stable")
        index.keys = salted[order]
        index.key_rows = (order // bands.shape[1]).astype(np.int32)
        return index

    def __len__(self) -> int:
        return len(self.row_of)

    def add(self, rows: Iterable[tuple[str, bytes, int]]) -> None:
        """Index (article id, signature bytes, shingle count) rows, replacing earlier ones of those ids."""
        rows = list(rows)
        self.remove(row[0] for row in rows)
        latest: dict[str, tuple[str, bytes, int]] = {}
        for row in reversed(rows):  # an id given twice keeps its last row, in that row's place
            latest.setdefault(row[0], row)
        rows = [row for row in reversed(latest.values()) if len(row[1]) == NUM_PERM * 4]
        if not rows:
            return
        first = len(self.ids)
        self._reserve(first + len(rows))
        end = first + len(rows)
        self.signatures[first:end] = np.frombuffer(b"".join(row[1] for row in rows), dtype="<u4").reshape(
            len(rows), NUM_PERM)
        self.shingles[first:end] = [row[2] for row in rows]
        self.alive[first:end] = True
        for offset, row in enumerate(rows):
            self.ids.append(row[0])
            self.row_of[row[0]] = first + offset
        bands = band_key_matrix(self.signatures[first:end])
        salted = _salted(bands, np.arange(bands.shape[1])[None, :].repeat(len(rows), axis=0))
        for offset, keys in enumerate(salted.tolist()):
            for key in keys:
                self.recent.setdefault(key, []).append(first + offset)
        self.recent_entries += bands.size
        if self.recent_entries >= max(MERGE_AT, len(self.keys) // 4):
            self._merge()

    def _reserve(self, rows: int) -> None:
        """Room for `rows` signatures, growing by half again rather than one batch at a time."""
        if rows <= len(self.signatures):
            return
        extra = max(rows - len(self.signatures), len(self.signatures) // 2, 64)
        self.signatures = np.concatenate([self.signatures, np.zeros((extra, NUM_PERM), dtype=np.uint32)])
        self.shingles = np.concatenate([self.shingles, np.zeros(extra, dtype=np.int64)])
        self.alive = np.concatenate([self.alive, np.zeros(extra, dtype=bool)])

    def remove(self, article_ids: Iterable[str]) -> None:
        for article_id in article_ids:
            row = self.row_of.pop(article_id, None)
            if row is not None:
                self.alive[row] = False

    def _merge(self) -> None:
        """Sort the recent entries into the main arrays."""
        keys = np.fromiter((k for k, rows in self.recent.items() for _ in rows), dtype=np.uint64,
                           count=self.recent_entries)
        rows = np.fromiter((r for rows in self.recent.values() for r in rows), dtype=np.int32,
                           count=self.recent_entries)
        all_keys = np.concatenate([self.keys, keys])
        order = np.argsort(all_keys, kind="stable")
        self.keys = all_keys[order]
        self.key_rows = np.concatenate([self.key_rows, rows])[order]
        self.recent.clear()
        self.recent_entries = 0

    def similar(self, items: dict[str, Query], limit: int, min_jaccard: float = 0.0) -> dict[str, list[Similar]]:
        """For each item, the `limit` live rows sharing the most buckets (then the oldest), with
        their Jaccard estimates; those under `min_jaccard` are left out.

        Candidates are ranked and compared here, in a few array operations per
        batch: building a Python tuple per candidate cost more than the lookup.
        """
        names = list(items)
        item_of = np.fromiter((i for i, name in enumerate(names) for _ in items[name][0]), dtype=np.int64)
        bands = np.fromiter((b for name in names for b in range(len(items[name][0]))), dtype=np.int64)
        keys = np.fromiter((k for name in names for k in items[name][0]), dtype=np.uint64, count=len(bands))
        if not len(keys):
            return {}
        salted = _salted(keys, bands)
        found_items, found_rows = self._sorted_hits(salted, item_of)
        if self.recent:
            extra = [(i, row) for i, key in zip(item_of.tolist(), salted.tolist()) for row in self.recent.get(key, ())]
            if extra:
                pairs = np.array(extra, dtype=np.int64)
                found_items = np.concatenate([found_items, pairs[:, 0]])
                found_rows = np.concatenate([found_rows, pairs[:, 1]])
        live = self.alive[found_rows]
        top_items, top_rows, shared = self._top(found_items[live], found_rows[live], limit)
        if not len(top_items):
            return {}
        queries = np.stack([np.asarray(items[name][1], dtype=np.uint32) for name in names])
        jaccard = np.count_nonzero(self.signatures[top_rows] == queries[top_items], axis=1) / NUM_PERM
        kept = jaccard >= min_jaccard
        result: dict[str, list[Similar]] = {}
        for item, row, n, j, size in zip(top_items[kept].tolist(), top_rows[kept].tolist(), shared[kept].tolist(),
                                         jaccard[kept].tolist(), self.shingles[top_rows[kept]].tolist()):
            result.setdefault(names[item], []).append((self.ids[row], n, j, size))
        return result

    def _sorted_hits(self, salted: np.ndarray, item_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(item, row) for every stored entry equal to a query key, in the sorted arrays."""
        low = np.searchsorted(self.keys, salted, side="left")
        counts = np.searchsorted(self.keys, salted, side="right") - low
        total = int(counts.sum())
        if not total:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        starts = np.repeat(low - (np.cumsum(counts) - counts), counts)
        positions = starts + np.arange(total)
        return np.repeat(item_of, counts), self.key_rows[positions].astype(np.int64)

    def _top(self, found_items: np.ndarray, found_rows: np.ndarray,
             limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item, row, buckets shared) of each item's `limit` rows sharing the most buckets."""
        width = max(len(self.ids), 1)
        pairs, shared = np.unique(found_items * width + found_rows, return_counts=True)
        items, rows = pairs // width, pairs % width
        order = np.lexsort((rows, -shared, items))  # by item, most shared first, then oldest row
        items, rows, shared = items[order], rows[order], shared[order]
        first = np.searchsorted(items, items, side="left")  # where each item's run starts
        keep = (np.arange(len(items)) - first) < limit
        return items[keep], rows[keep], shared[keep]
