"""Text -> duplicate keys: the body hash, word 3-shingles, the MinHash signature and its LSH bands.

In: an article's title and text. Out: a `Fingerprint` (URL key, body key,
signature, shingle count, band keys), pure and deterministic, so a parse
worker computes it off the main thread and the main thread uses it as it is.
Signatures are stored (storage/duplicates.py), so these values must be the
same on every run and machine: fixed seeds, crc32 word ids, explicit byte order.

MinHash is a few lines of numpy rather than datasketch, which would pull in
scipy for a part we would not use.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np

from aggregator.models import Article
from aggregator.enrich.text import fold_for_matching, word_token_chunks, word_tokens
from aggregator.enrich.urls import canonical_url

SHINGLE_WORDS = 3
# 30 bands of 4 rows: a pair with Jaccard 0.5 shares a band with probability 0.86, one with 0.7
# with 0.9999, while unrelated news (Jaccard ~0.1) almost never does (docs/decisions/0007).
BANDS = 30
ROWS = 4
NUM_PERM = BANDS * ROWS
SIGNATURE_CHUNK = 8192  # shingles hashed at once: an 8 MB matrix, the size of a long article's whole
_SEED = 20240607


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
    only one chunk's words exist at a time (all the words of a 10 MB text at once take 100 MB).
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
    """crc32 of each word, memoized: news vocabulary repeats, and a crc32 call per word is the hot spot.

    Every word is looked up by a C-level dict access (no Python call per
    word); only when one is missing are the new words found, with one set
    operation: half the time of a Python function per word.
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
    """np.unique(values), by sorting in place: numpy 2's hash-table unique takes six times
    the array's size (80 MB for the 1.6 million shingles of a 10 MB article)."""
    values.sort()
    distinct = np.empty(values.size, dtype=bool)
    distinct[:1] = True
    np.not_equal(values[1:], values[:-1], out=distinct[1:])
    return values[distinct]


def signature(shingles: np.ndarray) -> np.ndarray:
    """MinHash: for each of NUM_PERM hash functions, the smallest 32-bit value over the shingles.

    The shingles x hash functions matrix is taken SIGNATURE_CHUNK shingles at a
    time: whole, a 10 MB article's 1.6 million shingles make a 1.5 GB matrix.
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
