"""The LSH band buckets of every stored signature, held in memory.

In: signature rows (article id, signature bytes, shingle count), at build
and then as they are written. Out: for each new article's band keys and
signature, the stored rows sharing the most buckets, with their Jaccard
estimates. The buckets are a pure function of the signatures, which stay in
SQLite, so they are built here once per process (shared_index.py keeps
them per database file) and not written row by row: 30 bucket rows and 30
index probes per article in SQL cost about a fifth of a first ingest's main
thread (docs/decisions/0007 has the build time and memory).

Layout: a row is one stored signature (an article re-indexed gets a new row
and its old one is marked dead). Each (band, bucket) of a row is one 64-bit
entry: 40 bits of the salted bucket key above 24 bits of row number, so one
sorted array, sorted in place, answers "which rows are in this bucket" with
two binary searches. Entries added since the last merge go into a second,
small sorted array: inserting a batch of fifty into millions would copy
them all every time. 40-bit keys let unrelated buckets meet about once in 300,000
lookups at 100,000 articles; such a stray candidate only costs a signature
comparison, which rejects it.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator

import numpy as np

from aggregator.dedup.minhash import BANDS, NUM_PERM, band_key_matrix

ROW_BITS = 24
MAX_ROWS = 1 << ROW_BITS  # rows, dead ones included, between rebuilds: 16.7 million
_ROW_MASK = np.uint64(MAX_ROWS - 1)
_SHIFT = np.uint64(ROW_BITS)
# One salt per band, so equal bucket keys of different bands do not meet in the one sorted array.
_BAND_SALT = np.random.default_rng(20251126).integers(1, 2**63, size=64, dtype=np.uint64)
# Recent entries kept apart before they are merged in: a merge copies the whole array
# (about 0.05 s at 100,000 articles), once per 1,700 new articles.
MERGE_AT = 50_000
BUILD_CHUNK = 10_000  # signatures read at a time when building, so the rows never all sit in memory
SIGNATURE_BYTES = NUM_PERM * 4
Row = tuple[str, bytes, int]  # (article id, signature bytes, shingle count)
Similar = tuple[str, int, float, int]  # (article id, buckets shared, Jaccard estimate, shingle count)
Query = tuple[list[int], np.ndarray]  # (band keys, signature) of one new article


def _buckets(keys: np.ndarray, bands: np.ndarray | slice) -> np.ndarray:
    """Band keys -> the 40-bit bucket each names, salted by band, shifted into place above the row."""
    return ((keys.astype(np.uint64) ^ _BAND_SALT[bands]) >> _SHIFT) << _SHIFT


class LshIndex:
    """Signatures by row, and which rows share each (band, bucket)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.signatures = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self.shingles = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.entries = np.zeros(0, dtype=np.uint64)  # sorted (bucket | row)
        self.recent = np.zeros(0, dtype=np.uint64)  # sorted too: entries not yet merged into `entries`

    @classmethod
    def build(cls, rows: Iterable[Row], expected: int = 0) -> "LshIndex":
        """From rows with distinct ids (`expected`: about how many, to allocate once)."""
        index = cls()
        index._reserve(expected)
        entries, filled = np.empty(expected * BANDS, dtype=np.uint64), 0  # filled in place: no second copy
        for chunk in _chunks(rows, BUILD_CHUNK):
            part = index._append(chunk)
            if filled + len(part) > len(entries):  # more rows than expected
                entries = np.concatenate([entries[:filled], np.empty(len(part) + len(entries) // 2, np.uint64)])
            entries[filled:filled + len(part)] = part
            filled += len(part)
        index.entries = entries[:filled]
        index.entries.sort()
        return index

    def __len__(self) -> int:
        return len(self.row_of)

    @property
    def dead_rows(self) -> int:
        """Rows of replaced or removed signatures, still taking memory until a rebuild."""
        return len(self.ids) - len(self.row_of)

    def add(self, rows: Iterable[Row]) -> None:
        """Index rows, replacing earlier ones of those ids."""
        rows = list(rows)
        self.remove(row[0] for row in rows)
        latest: dict[str, Row] = {}
        for row in reversed(rows):  # an id given twice keeps its last row, in that row's place
            latest.setdefault(row[0], row)
        self.recent = _merged(self.recent, np.sort(self._append(list(reversed(latest.values())))))
        if len(self.recent) >= MERGE_AT:
            self.entries, self.recent = _merged(self.entries, self.recent), self.recent[:0]

    def remove(self, article_ids: Iterable[str]) -> None:
        for article_id in article_ids:
            row = self.row_of.pop(article_id, None)
            if row is not None:
                self.alive[row] = False

    def _append(self, rows: list[Row]) -> np.ndarray:
        """Give each comparable row the next row number; returns their entries, unsorted."""
        rows = [row for row in rows if len(row[1]) == SIGNATURE_BYTES]
        first, end = len(self.ids), len(self.ids) + len(rows)
        if end > MAX_ROWS:
            raise OverflowError(f"the duplicate index holds at most {MAX_ROWS:,} signatures")
        self._reserve(end)
        if rows:
            self.signatures[first:end] = np.frombuffer(b"".join(row[1] for row in rows), dtype="<u4").reshape(
                len(rows), NUM_PERM)
        self.shingles[first:end] = [row[2] for row in rows]
        self.alive[first:end] = True
        self.ids.extend(row[0] for row in rows)
        self.row_of.update((row[0], first + offset) for offset, row in enumerate(rows))
        buckets = _buckets(band_key_matrix(self.signatures[first:end]), slice(0, BANDS))
        return (buckets | np.arange(first, end, dtype=np.uint64)[:, None]).ravel()

    def _reserve(self, rows: int) -> None:
        """Room for `rows` signatures, growing by half again rather than one batch at a time."""
        if rows <= len(self.signatures):
            return
        extra = max(rows - len(self.signatures), len(self.signatures) // 2)
        self.signatures = np.concatenate([self.signatures, np.zeros((extra, NUM_PERM), dtype=np.uint32)])
        self.shingles = np.concatenate([self.shingles, np.zeros(extra, dtype=np.int64)])
        self.alive = np.concatenate([self.alive, np.zeros(extra, dtype=bool)])

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
        buckets = _buckets(keys, bands)
        order = np.argsort(buckets)  # sorted queries: each binary search starts where the last one ended
        buckets, item_of = buckets[order], item_of[order]
        hits = [_hits(entries, buckets, item_of) for entries in (self.entries, self.recent)]
        found_items = np.concatenate([items for items, _ in hits])
        found_rows = np.concatenate([rows for _, rows in hits])
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


def _hits(entries: np.ndarray, buckets: np.ndarray, item_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item, row) for every entry of a sorted array in a queried bucket."""
    low = np.searchsorted(entries, buckets, side="left")
    counts = np.searchsorted(entries, buckets | _ROW_MASK, side="right") - low
    total = int(counts.sum())
    positions = np.repeat(low - (np.cumsum(counts) - counts), counts) + np.arange(total)
    return np.repeat(item_of, counts), (entries[positions] & _ROW_MASK).astype(np.int64)


def _merged(entries: np.ndarray, more: np.ndarray) -> np.ndarray:
    """Two sorted arrays as one, in one linear pass."""
    return np.insert(entries, np.searchsorted(entries, more), more) if len(more) else entries


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk
