"""Duplicate detection: which stored story is each new article a copy of?

In: a batch of articles (with the fingerprints a parse worker computed) and a
store answering key lookups. Out: each article's cluster id, and the rows
(signatures, cluster renames) the store writes with the batch.

  minhash.py       text -> body hash, shingles, MinHash signature, LSH band keys (pure, numpy)
  stored.py        what dedup reads from the store and gives it to write
  detect.py        the Deduplicator: exact keys, then near-duplicates, then the representative
  lsh_index.py     the band buckets of every stored signature, in memory
  shared_index.py  that index's lifecycle: built, added to, rebuilt, dropped; one per database file
  clusters.py      clusters as feeds show them (no numpy: publishing imports it)
"""

import importlib

_SUBMODULES = {"minhash", "stored", "detect", "lsh_index", "shared_index", "clusters"}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
