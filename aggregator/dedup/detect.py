"""Which stored story is this a copy of? Exact keys, then MinHash LSH.

A wire story reaches us from many sites with new headlines, trimmed or
reordered paragraphs and each site's boilerplate. Every copy is kept; the
copies form one *cluster* named by its representative's id.

Keys, cheapest first:

1. the same guid within a source is already the same article id (sources
   derive ids from source + guid), so it is an update, not a copy;
2. the same canonical URL (normalize.canonical_url) across sources;
3. the same folded body text (`body_hash`);
4. near-duplicates: a MinHash signature over word 3-shingles of the folded
   title and text, split into LSH bands. Articles sharing a band bucket are
   candidates; a candidate is a copy when its estimated *overlap* (the share
   of the smaller article's shingles found in the larger, derived from the
   Jaccard estimate and both shingle counts) reaches `[dedup] threshold`.
   Overlap, not plain Jaccard, because a trimmed copy holding 60% of the
   original is still the same story, while its Jaccard is only 0.6.

Representative: the *earliest published* copy (then first seen, then the
longest text, then the id). Chosen over "most complete" because it is
stable: a later, longer copy does not rename the cluster, so feed entries
keep their ids and a reader does not see the story again as unread; and the
earliest copy is usually the originating outlet, which deserves the credit.

Incremental: a new article costs one signature, a lookup in the sorted
band buckets and a handful of candidate comparisons, whatever the store's
size. Signatures live in SQLite (storage/duplicates.py), so the index
survives restarts; the band buckets are derived from them in memory
(lsh_index.py, kept per database file by shared_index.py).

In: a batch of articles, their fingerprints when a parse worker computed
them (minhash.py), and a store answering the lookups of stored.DedupStore.
Out: `Deduplicated`, the batch's articles as new values with their
cluster_id set, and the DedupRows the store writes with them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from aggregator.dedup.minhash import NUM_PERM, Fingerprint, overlap, sig_to_bytes
from aggregator.dedup.stored import DedupRows, DedupStore, StoredDoc, order_key, stored_docs
from aggregator.models import Article

MAX_CANDIDATES = 64  # per new article: the ones sharing the most LSH buckets
JACCARD_FLOOR = 0.5  # and Jaccard >= threshold * this: a long story swallowing a short one is not a copy


@dataclass(frozen=True)
class Match:
    id: str
    reason: str
    score: float = 1.0


@dataclass(frozen=True)
class Deduplicated:
    """A batch after dedup: each article (a new value) with its cluster_id, and the rows the store writes with them."""

    articles: tuple[Article, ...]
    rows: DedupRows


def _unchanged(article: Article, stored: StoredDoc | None) -> bool:
    return bool(stored and stored.content_hash == article.content_hash and stored.signature is not None)


@dataclass
class _Prefetched:
    """A batch's stored URL, body and near-duplicate matches, read in three lookups, not three per article."""

    urls: dict[str, list[str]]
    bodies: dict[str, list[str]]
    similar: dict[str, dict[str, tuple[int, float, int]]]
    # article id -> stored id -> (LSH buckets shared, Jaccard estimate, shingle count), most shared first
    docs: dict[str, StoredDoc]  # every stored article named above, and its cluster's representative

    @classmethod
    def read(cls, store: DedupStore, fingerprints: dict[str, Fingerprint], min_jaccard: float) -> "_Prefetched":
        prints = list(fingerprints.values())
        found = store.duplicate_index.similar(store, {i: (f.bands, f.signature) for i, f in fingerprints.items()},
                                              MAX_CANDIDATES, min_jaccard)
        urls = store.ids_by_canonical_urls([f.url_key for f in prints if f.url_key])
        bodies = store.ids_by_body_hashes([f.body_key for f in prints if f.body_key])
        similar = {i: {c[0]: c[1:] for c in hits} for i, hits in found.items()}
        named = {i for ids in (*urls.values(), *bodies.values(), *similar.values()) for i in ids}
        docs = stored_docs(store, sorted(named))
        docs.update(stored_docs(store, sorted({d.cluster_id for d in docs.values()} - docs.keys())))
        return cls(urls, bodies, similar, docs)


class Deduplicator:
    """Assigns cluster ids to a batch against the store plus the batch itself."""

    def __init__(self, store: DedupStore, threshold: float = 0.6):
        self.store = store
        self.threshold = threshold
        self._min_jaccard = threshold * JACCARD_FLOOR  # below it a candidate is never a copy
        self.rows = DedupRows()
        self._pending: dict[str, tuple[Fingerprint, StoredDoc]] = {}
        self._pending_buckets: dict[tuple[int, int], list[str]] = {}
        self._pending_urls: dict[str, list[str]] = {}
        self._pending_bodies: dict[str, list[str]] = {}
        self._clusters: dict[str, str] = {}  # article id -> cluster id, for everything touched
        self._orders: dict[str, tuple] = {}  # cluster representative id -> its order key
        self._prefetched: _Prefetched | None = None  # the batch's stored keys, read in a few queries
        self._edited: set[str] = set()  # stored articles this batch changes: their stored keys are stale

    def assign(self, articles: list[Article], precomputed: dict[str, Fingerprint] | None = None) -> Deduplicated:
        """Every article with its cluster_id, and the index rows and cluster renames to write.

        The articles given are left as they are. `precomputed` fingerprints
        (from the parsing worker) are used as they are.
        """
        stored = stored_docs(self.store, [a.id for a in articles])
        changed = [a for a in articles if not _unchanged(a, stored.get(a.id))]
        self._edited = {a.id for a in changed if a.id in stored}
        precomputed = precomputed or {}
        fingerprints = {a.id: precomputed.get(a.id) or Fingerprint.of(a) for a in changed}
        self.rows.url_keys = {article_id: fp.url_key for article_id, fp in fingerprints.items()}
        self._prefetched = _Prefetched.read(self.store, fingerprints, self._min_jaccard)
        for article in sorted(articles, key=lambda a: order_key(a.published, None, len(a.text), a.id)):
            self._assign_one(article, stored.get(article.id), fingerprints.get(article.id))
        self._prefetched = None
        clustered = tuple(self._clustered(article) for article in articles)
        self.rows.renames = {old: self._resolve(old) for old in self.rows.renames}
        self.rows.renames = {old: new for old, new in self.rows.renames.items() if old != new}
        return Deduplicated(clustered, self.rows)

    def _clustered(self, article: Article) -> Article:
        cluster_id = self._resolve(self._clusters.get(article.id, article.cluster_id or article.id))
        return article if cluster_id == article.cluster_id else replace(article, cluster_id=cluster_id)

    def matches(self, article: Article, fingerprint: Fingerprint | None = None) -> list[Match]:
        """Stored or pending articles this one is a copy of, and why (explain and tests use it)."""
        fp = fingerprint or Fingerprint.of(article)
        if self._prefetched is None:  # a lone article, outside assign()
            self._prefetched = _Prefetched.read(self.store, {article.id: fp}, self._min_jaccard)
            try:
                return self.matches(article, fp)
            finally:
                self._prefetched = None
        found: dict[str, Match] = {}
        if fp.url_key:
            for other in self._lookup_urls(fp.url_key):
                found.setdefault(other, Match(other, "same canonical URL"))
        if fp.body_key:
            for other in self._lookup_bodies(fp.body_key):
                found.setdefault(other, Match(other, "same text"))
        candidates = [c for c in self._lookup_bands(article.id, fp.bands) if c not in found and c != article.id]
        for other, j, size in self._similarities(article.id, fp, candidates):
            score = overlap(j, fp.shingles, size)
            if score >= self.threshold and j >= self._min_jaccard:
                found[other] = Match(other, f"near-duplicate (overlap {score:.2f}, jaccard {j:.2f})", score)
        found.pop(article.id, None)
        return list(found.values())

    def _similarities(self, article_id: str, fp: Fingerprint,
                      candidates: list[str]) -> list[tuple[str, float, int]]:
        """(id, Jaccard estimate, shingle count) per candidate.

        Stored candidates were compared in the batch's lookup; pending ones
        (earlier in this batch) are compared here, in one numpy operation.
        """
        stored = self._prefetched.similar.get(article_id, {})  # matches() always prefetches first
        pending = [c for c in candidates if c in self._pending]
        found = {c: (stored[c][1], stored[c][2]) for c in candidates if c not in self._pending and c in stored}
        if pending:
            matrix = np.stack([self._pending[c][1].signature for c in pending])
            estimates = np.count_nonzero(matrix == fp.signature, axis=1) / NUM_PERM
            found.update({c: (float(j), self._pending[c][1].shingles) for c, j in zip(pending, estimates)})
        return [(c, *found[c]) for c in candidates if c in found]

    # --- one article ---

    def _assign_one(self, article: Article, stored: StoredDoc | None, fp: Fingerprint | None = None) -> None:
        if _unchanged(article, stored):
            self._clusters[article.id] = stored.cluster_id  # unchanged: already indexed
            return
        fp = fp or Fingerprint.of(article)
        order = order_key(article.published, None, len(article.text), article.id)
        if stored:
            order = min(order, stored.order)
        # An edited article is judged on its new text alone: a copy edited into another story leaves
        # its cluster, one edited into a copy joins one, and a representative edited away from all
        # its copies leaves them a cluster of their own.
        own_cluster = article.id
        matched = self.matches(article, fp)
        if stored is not None and stored.cluster_id == article.id:
            copies = [c for c in self.store.other_members(article.id) if c not in self._edited]
            if copies and not set(copies) & {m.id for m in matched}:
                self.rows.split[article.id] = copies
        self._orders[article.id] = min(order, self._orders.get(article.id, order))
        clusters = {own_cluster} | {self._cluster_of(m.id) for m in matched}
        rep = min(clusters, key=lambda c: (self._order_of(c), c))
        for cluster in clusters:
            if cluster != rep:
                self.rows.renames[cluster] = rep
                self._clusters[cluster] = rep
        self._clusters[article.id] = rep
        self._remember(article, fp, order)

    def _remember(self, article: Article, fp: Fingerprint, order: tuple) -> None:
        doc = StoredDoc(article.id, article.id, order, article.content_hash, fp.signature, fp.shingles)
        self._pending[article.id] = (fp, doc)
        for band, key in enumerate(fp.bands):
            self._pending_buckets.setdefault((band, key), []).append(article.id)
        if fp.url_key:
            self._pending_urls.setdefault(fp.url_key, []).append(article.id)
        if fp.body_key:
            self._pending_bodies.setdefault(fp.body_key, []).append(article.id)
        self.rows.signatures.append((article.id, fp.body_key, fp.shingles, sig_to_bytes(fp.signature),
                                     article.content_hash))

    # --- lookups over store + pending ---

    def _stored(self, ids: list[str]) -> list[str]:
        """Stored matches, without the articles this batch edits: their stored keys describe old text."""
        return [i for i in ids if i not in self._edited] if self._edited else ids

    def _lookup_urls(self, key: str) -> list[str]:
        return self._stored(self._prefetched.urls.get(key, [])) + self._pending_urls.get(key, [])

    def _lookup_bodies(self, key: str) -> list[str]:
        return self._stored(self._prefetched.bodies.get(key, [])) + self._pending_bodies.get(key, [])

    def _lookup_bands(self, article_id: str, bands: list[int]) -> list[str]:
        """The candidates sharing the most band buckets, stored and pending, at most MAX_CANDIDATES.

        Sharing more bands means a higher Jaccard estimate, so the cap drops the
        weakest candidates first; it keeps one new article's cost bounded even
        when thousands of stored texts look alike (templated or boilerplate-heavy).
        """
        hits = {other: found[0] for other, found in self._prefetched.similar.get(article_id, {}).items()
                if other not in self._edited}
        for band, key in enumerate(bands):
            for other in self._pending_buckets.get((band, key), []):
                hits[other] = hits.get(other, 0) + 1
        ranked = sorted(hits.items(), key=lambda pair: -pair[1])
        return [article_id for article_id, _ in ranked[:MAX_CANDIDATES]]

    def _docs(self, ids: list[str]) -> dict[str, StoredDoc]:
        docs = {i: self._pending[i][1] for i in ids if i in self._pending}
        if self._prefetched is not None:  # a match's doc and its cluster's, read with the batch's keys
            docs.update((i, self._prefetched.docs[i]) for i in ids if i not in docs and i in self._prefetched.docs)
        missing = [i for i in ids if i not in docs]
        if missing:
            docs.update(stored_docs(self.store, missing))
        return docs

    def _cluster_of(self, article_id: str) -> str:
        if article_id not in self._clusters:
            doc = self._docs([article_id]).get(article_id)
            self._clusters[article_id] = doc.cluster_id if doc else article_id
            if doc:
                self._orders.setdefault(article_id, doc.order)
        return self._resolve(self._clusters[article_id])

    def _order_of(self, cluster: str) -> tuple:
        if cluster not in self._orders:
            doc = self._docs([cluster]).get(cluster)
            self._orders[cluster] = doc.order if doc else order_key(None, None, 0, cluster)
        return self._orders[cluster]

    def _resolve(self, cluster: str) -> str:
        seen = set()
        while cluster in self.rows.renames and cluster not in seen:
            seen.add(cluster)
            cluster = self.rows.renames[cluster]
        return cluster
