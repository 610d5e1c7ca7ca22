"""What dedup reads from the store and gives it to write: the contract between dedup/ and storage/.

In: storage's rows (`StoredDocRow`: an article's cluster, dates, text length,
content hash and signature bytes) and key lookups. Out: `StoredDoc`, an
article as the duplicate index knows it, and `DedupRows`, the signatures and
cluster renames the store writes in the batch's transaction. Which stored
copy represents a cluster (`order_key`) is decided here, not in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol

from aggregator.dedup.minhash import sig_from_bytes

if TYPE_CHECKING:
    import numpy as np

    from aggregator.dedup.lsh_index import Row
    from aggregator.dedup.shared_index import SharedIndex

_FAR_FUTURE = datetime.max.replace(tzinfo=timezone.utc)
# (id, cluster id, published, first seen, text length, content hash, signature bytes or None, shingle count)
StoredDocRow = tuple[str, str, "datetime | None", "datetime | None", int, str, "bytes | None", int]


@dataclass(frozen=True)
class StoredDoc:
    """A stored article as the index knows it."""

    id: str
    cluster_id: str
    order: tuple  # representative order key: smaller is preferred
    content_hash: str = ""
    signature: "np.ndarray | None" = None
    shingles: int = 0


@dataclass
class DedupRows:
    """What the store writes, in the batch's transaction, to keep the index current.

    A builder: one Deduplicator fills it for one batch; the store only reads it.
    """

    signatures: list[tuple[str, str | None, int, bytes, str]] = field(default_factory=list)
    # (article_id, body_hash, shingle count, signature bytes, content_hash); replaces any earlier one
    renames: dict[str, str] = field(default_factory=dict)  # old cluster id -> new cluster id
    # article id -> its canonical URL, worked out with its fingerprint (often in a parse worker), so
    # the row written takes it rather than canonicalizing the URL again on the writing thread
    url_keys: dict[str, str | None] = field(default_factory=dict)
    # A representative edited away from its copies -> those copies (not edited in this batch): they
    # stay together under the oldest of them, written before the renames, so that a rename of the
    # representative leaves them behind.
    split: dict[str, list[str]] = field(default_factory=dict)


class DedupStore(Protocol):
    """The queries dedup needs; storage.Store answers them with indexed SQL (storage/duplicates.py)."""

    duplicate_index: "SharedIndex"  # the in-memory band buckets of this store's file (shared_index.py)

    def stored_doc_rows(self, ids: list[str]) -> Iterable[StoredDocRow]: ...
    def ids_by_canonical_urls(self, urls: list[str]) -> dict[str, list[str]]: ...
    def ids_by_body_hashes(self, hashes: list[str]) -> dict[str, list[str]]: ...
    def other_members(self, cluster_id: str) -> list[str]: ...
    def dedup_version(self) -> int: ...
    def signature_count(self) -> int: ...
    def signature_rows(self) -> Iterator["Row"]: ...


def order_key(published: datetime | None, first_seen: datetime | None, text_len: int, article_id: str) -> tuple:
    """Earliest published first; then first seen; then the longest text; then the id."""
    return (published or first_seen or _FAR_FUTURE, first_seen or _FAR_FUTURE, -text_len, article_id)


def stored_docs(store: DedupStore, ids: list[str]) -> dict[str, StoredDoc]:
    """Stored articles as the duplicate index knows them (signature None if not indexed)."""
    return {article_id: StoredDoc(article_id, cluster or article_id,
                                  order_key(published, first_seen, length, article_id), content_hash,
                                  sig_from_bytes(signature) if signature is not None else None, shingles)
            for article_id, cluster, published, first_seen, length, content_hash, signature, shingles
            in store.stored_doc_rows(ids)}
