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
size. Signatures live in SQLite (migration 4), so the index survives
restarts; the band buckets are derived from them in memory (lsh_index.py).
MinHash is a few lines of numpy rather than datasketch, which would pull in
scipy for a part we would not use.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import numpy as np

from aggregator.models import Article
from aggregator.enrich.text import fold_for_matching, word_token_chunks, word_tokens
from aggregator.enrich.urls import canonical_url

SHINGLE_WORDS = 3
# 30 bands of 4 rows: a pair with Jaccard 0.5 shares a band with probability 0.86, one with 0.7
# with 0.9999, while unrelated news (Jaccard ~0.1) almost never does. The earlier 40 x 3 made
# every article a candidate of ~6% of the store on the bench corpus (see bench/README.md).
BANDS = 30
ROWS = 4
NUM_PERM = BANDS * ROWS
SIGNATURE_CHUNK = 8192  # shingles hashed at once: an 8 MB matrix, the size of a long article's whole
MAX_CANDIDATES = 64  # per new article: the ones sharing the most LSH buckets
JACCARD_FLOOR = 0.5  # and Jaccard >= threshold * this: a long story swallowing a short one is not a copy
_SEED = 20240607
_FAR_FUTURE = datetime.max.replace(tzinfo=timezone.utc)


def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """Fixed multiply-shift hash family: the same on every run and machine."""
    rng = np.random.default_rng(_SEED)
    a = rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
    return a, b


_A, _B = _permutations()
_BAND_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93][:ROWS],
                     dtype=np.uint64)
_SHINGLE_MIX = np.array([0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB][:SHINGLE_WORDS],
                        dtype=np.uint64)


# --- pure functions: text -> keys ---


def words(text: str) -> tuple[str, ...]:
    return word_tokens(fold_for_matching(text))


def body_hash(text: str) -> str:
    """Same words in the same order, whatever the whitespace, quotes, case or accents."""
    return _body_keys(text)[0] or _body_hash(())


def _body_hash(tokens: tuple[str, ...]) -> str:
    return hashlib.sha256(" ".join(tokens).encode("utf-8")).hexdigest()[:32]


def _body_keys(text: str) -> tuple[str | None, np.ndarray]:
    """The body hash (None for a text without words) and the word ids, read chunk by chunk.

    The hash is that of all the words joined by single spaces, fed to sha256 piece by piece;
    only one chunk's words exist at a time (all the words of a 10 MB text took 100 MB).
    """
    digest, ids, first = hashlib.sha256(), [], True
    for tokens in word_token_chunks(fold_for_matching(text)):
        if tokens:
            digest.update((("" if first else " ") + " ".join(tokens)).encode("utf-8"))
            ids.append(_token_ids(tokens))
            first = False
    if first:
        return None, np.zeros(0, dtype=np.uint64)
    return digest.hexdigest()[:32], ids[0] if len(ids) == 1 else np.concatenate(ids)


_TOKEN_IDS: dict[str, int] = {}
_TOKEN_CACHE_LIMIT = 200_000


def _token_ids(tokens: tuple[str, ...]) -> np.ndarray:
    """crc32 of each word, memoized: news vocabulary repeats, and crc32 per call was the hot spot.

    Every word is looked up by a C-level dict access (no Python call per
    word); only when one is missing are the new words found, with one set
    operation. Half the time of a Python function per word.
    """
    try:
        return np.fromiter(map(_TOKEN_IDS.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    except KeyError:  # a word not seen before
        pass
    new = {token: zlib.crc32(token.encode("utf-8")) for token in set(tokens).difference(_TOKEN_IDS)}
    if len(_TOKEN_IDS) + len(new) <= _TOKEN_CACHE_LIMIT:
        _TOKEN_IDS.update(new)
        known = _TOKEN_IDS
    else:  # the memo is full: these words are not kept
        known = {**new, **{token: _TOKEN_IDS[token] for token in tokens if token in _TOKEN_IDS}}
    return np.fromiter(map(known.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(title: str, text: str) -> np.ndarray:
    """64-bit hashes of the distinct word 3-shingles of title and text (never across them)."""
    return _shingles_of_ids(_body_keys(title)[1], _body_keys(text)[1])


def _shingles_of_ids(*parts: np.ndarray) -> np.ndarray:
    """The distinct shingle hashes of each part's word ids (one array of ids per part)."""
    hashes = []
    for ids in parts:
        if not ids.size:
            continue
        if len(ids) < SHINGLE_WORDS:
            ids = np.concatenate([ids, np.zeros(SHINGLE_WORDS - len(ids), dtype=np.uint64)])
        # sum over k of ids[i + k] * mix[k]: the same values as a sliding window, without its overhead
        count = len(ids) - SHINGLE_WORDS + 1
        mixed = ids[0:count] * _SHINGLE_MIX[0]
        for k in range(1, SHINGLE_WORDS):
            mixed += ids[k:k + count] * _SHINGLE_MIX[k]
        hashes.append(mixed)
    if not hashes:
        return np.zeros(0, dtype=np.uint64)
    return _sorted_unique(np.concatenate(hashes))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values), by sorting in place: numpy 2's hash-table unique took six times
    the array's size (80 MB for the 1.6 million shingles of a 10 MB article)."""
    values.sort()
    distinct = np.empty(values.size, dtype=bool)
    distinct[:1] = True
    np.not_equal(values[1:], values[:-1], out=distinct[1:])
    return values[distinct]


def signature(shingles: np.ndarray) -> np.ndarray:
    """MinHash: for each of NUM_PERM hash functions, the smallest 32-bit value over the shingles.

    The shingles x hash functions matrix is taken SIGNATURE_CHUNK shingles at a
    time: whole, a 10 MB article's 1.6 million shingles made a 1.5 GB matrix.
    """
    if shingles.size == 0:
        return np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    smallest = np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    for start in range(0, shingles.size, SIGNATURE_CHUNK):
        with np.errstate(over="ignore"):
            mixed = np.multiply.outer(shingles[start:start + SIGNATURE_CHUNK], _A)  # wraps mod 2**64, as intended
            mixed += _B
        np.minimum(smallest, mixed.min(axis=0), out=smallest)
    # The top 32 bits of the smallest value are the smallest top 32 bits (shifting is monotonic),
    # so one row is shifted instead of the whole matrix.
    return (smallest >> np.uint64(32)).astype(np.uint32)


def band_keys(sig: np.ndarray) -> list[int]:
    """One 63-bit bucket key per band."""
    return band_key_matrix(sig[None, :])[0].tolist()


def band_key_matrix(signatures: np.ndarray) -> np.ndarray:
    """The band keys of many signatures at once: shape (len(signatures), BANDS)."""
    rows = signatures.astype(np.uint64).reshape(len(signatures), BANDS, ROWS)
    with np.errstate(over="ignore"):
        return (rows * _BAND_MIX).sum(axis=2, dtype=np.uint64) >> np.uint64(1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / NUM_PERM


def overlap(j: float, size_a: int, size_b: int) -> float:
    """|A∩B| / min(|A|,|B|) from a Jaccard estimate: |A∩B| = J(|A|+|B|)/(1+J)."""
    smaller = min(size_a, size_b)
    if smaller <= 0:
        return 0.0
    return min(1.0, j * (size_a + size_b) / ((1 + j) * smaller))


def sig_to_bytes(sig: np.ndarray) -> bytes:
    return sig.astype("<u4").tobytes()


def sig_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


@dataclass(frozen=True)
class Fingerprint:
    """Everything dedup needs to know about one article's text."""

    url_key: str | None
    body_key: str | None
    signature: np.ndarray
    shingles: int
    bands: list[int]

    @classmethod
    def of(cls, article: Article) -> "Fingerprint":
        body_key, body_ids = _body_keys(article.text or article.summary)  # folded once, used twice
        shingles = _shingles_of_ids(_body_keys(article.title)[1], body_ids)
        sig = signature(shingles)
        return cls(canonical_url(article.url), body_key, sig, int(shingles.size), band_keys(sig))


# --- what the store gives and takes ---


@dataclass(frozen=True)
class StoredDoc:
    """A stored article as the index knows it."""

    id: str
    cluster_id: str
    order: tuple  # representative order key: smaller is preferred
    content_hash: str = ""
    signature: np.ndarray | None = None
    shingles: int = 0


class DedupStore(Protocol):
    """The queries dedup needs; store.Store implements them with indexed SQL and lsh_index."""

    def dedup_docs(self, ids: list[str]) -> dict[str, StoredDoc]: ...
    def ids_by_canonical_urls(self, urls: list[str]) -> dict[str, list[str]]: ...
    def ids_by_body_hashes(self, hashes: list[str]) -> dict[str, list[str]]: ...
    def similar_signatures(self, items: dict[str, tuple[list[int], np.ndarray]], limit: int,
                           min_jaccard: float) -> dict[str, list[tuple[str, int, float, int]]]: ...


@dataclass
class DedupRows:
    """What the store writes, in the batch's transaction, to keep the index current."""

    signatures: list[tuple[str, str | None, int, bytes, str]] = field(default_factory=list)
    # (article_id, body_hash, shingle count, signature bytes, content_hash); replaces any earlier one
    renames: dict[str, str] = field(default_factory=dict)  # old cluster id -> new cluster id


def order_key(published: datetime | None, first_seen: datetime | None, text_len: int, article_id: str) -> tuple:
    """Earliest published first; then first seen; then the longest text; then the id."""
    return (published or first_seen or _FAR_FUTURE, first_seen or _FAR_FUTURE, -text_len, article_id)


# --- the clustering itself ---


@dataclass
class Match:
    id: str
    reason: str
    score: float = 1.0


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
        found = store.similar_signatures({i: (f.bands, f.signature) for i, f in fingerprints.items()},
                                         MAX_CANDIDATES, min_jaccard)
        urls = store.ids_by_canonical_urls([f.url_key for f in prints if f.url_key])
        bodies = store.ids_by_body_hashes([f.body_key for f in prints if f.body_key])
        similar = {i: {c[0]: c[1:] for c in hits} for i, hits in found.items()}
        named = {i for ids in (*urls.values(), *bodies.values(), *similar.values()) for i in ids}
        docs = store.dedup_docs(sorted(named))
        docs.update(store.dedup_docs(sorted({d.cluster_id for d in docs.values()} - docs.keys())))
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

    def assign(self, articles: list[Article], precomputed: dict[str, Fingerprint] | None = None) -> DedupRows:
        """Set every article's cluster_id; return the index rows and cluster renames to write.

        `precomputed` fingerprints (from the parsing worker) are used as they are.
        """
        stored = self.store.dedup_docs([a.id for a in articles])
        changed = [a for a in articles if not _unchanged(a, stored.get(a.id))]
        precomputed = precomputed or {}
        fingerprints = {a.id: precomputed.get(a.id) or Fingerprint.of(a) for a in changed}
        self._prefetched = _Prefetched.read(self.store, fingerprints, self._min_jaccard)
        for article in sorted(articles, key=lambda a: order_key(a.published, None, len(a.text), a.id)):
            self._assign_one(article, stored.get(article.id), fingerprints.get(article.id))
        self._prefetched = None
        for article in articles:
            article.cluster_id = self._resolve(self._clusters.get(article.id, article.cluster_id or article.id))
        self.rows.renames = {old: self._resolve(old) for old in self.rows.renames}
        self.rows.renames = {old: new for old, new in self.rows.renames.items() if old != new}
        return self.rows

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
        own_cluster = self._resolve(stored.cluster_id) if stored else article.id
        matched = self.matches(article, fp)
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

    def _lookup_urls(self, key: str) -> list[str]:
        return self._prefetched.urls.get(key, []) + self._pending_urls.get(key, [])

    def _lookup_bodies(self, key: str) -> list[str]:
        return self._prefetched.bodies.get(key, []) + self._pending_bodies.get(key, [])

    def _lookup_bands(self, article_id: str, bands: list[int]) -> list[str]:
        """The candidates sharing the most band buckets, stored and pending, at most MAX_CANDIDATES.

        Sharing more bands means a higher Jaccard estimate, so the cap drops the
        weakest candidates first; it keeps one new article's cost bounded even
        when thousands of stored texts look alike (templated or boilerplate-heavy).
        """
        hits = {other: found[0] for other, found in self._prefetched.similar.get(article_id, {}).items()}
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
            docs.update(self.store.dedup_docs(missing))
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
