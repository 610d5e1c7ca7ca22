"""The in-memory band buckets answer exactly what a scan over every live signature would."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.dedup import minhash
from aggregator.dedup import lsh_index
from aggregator.dedup.lsh_index import LshIndex


def random_signature(rng: np.random.Generator) -> bytes:
    """Values from a tiny range, so that many bands collide and ranking and ties matter."""
    return rng.integers(0, 3, size=minhash.NUM_PERM, dtype=np.uint32).astype("<u4").tobytes()


def brute_force(live: dict[str, bytes], order: list[str], query: np.ndarray, limit: int,
                min_jaccard: float) -> list[tuple[str, int, float]]:
    """(id, bands shared, Jaccard) of the live signatures sharing a bucket, most shared first, then oldest."""
    bands = minhash.band_keys(query)
    shared = []
    for position, article_id in enumerate(order):
        keys = minhash.band_keys(minhash.sig_from_bytes(live[article_id]))
        n = sum(1 for band, key in enumerate(bands) if keys[band] == key)
        if n:
            shared.append((-n, position, article_id))
    top = [(article_id, -n, minhash.jaccard(minhash.sig_from_bytes(live[article_id]), query))
           for n, _, article_id in sorted(shared)[:limit]]
    return [found for found in top if found[2] >= min_jaccard]


@pytest.mark.parametrize("merge_at", [10, 10**9])
def test_top_candidates_match_a_full_scan_through_adds_replacements_removals_and_merges(
        monkeypatch: pytest.MonkeyPatch, merge_at: int) -> None:
    monkeypatch.setattr(lsh_index, "MERGE_AT", merge_at)
    rng = np.random.default_rng(7)
    live = {f"a{i}": random_signature(rng) for i in range(40)}
    order = list(live)
    index = LshIndex.build((article_id, live[article_id], 5) for article_id in order)
    for step in range(120):
        article_id = f"a{rng.integers(0, 70)}"
        if step % 7 == 3 and article_id in live:
            index.remove([article_id])
            del live[article_id]
            order.remove(article_id)
        else:  # a batch of one to four rows, sometimes naming one id twice
            batch = [(article_id if n == 0 or rng.random() < 0.4 else f"a{rng.integers(0, 70)}",
                      random_signature(rng), 5) for n in range(rng.integers(1, 5))]
            for added, signature, _ in batch:
                live[added] = signature
                if added in order:
                    order.remove(added)
                order.append(added)  # a replaced signature is the newest row
            index.add(batch)
        if step % 10 == 0:
            queries = {f"q{n}": minhash.sig_from_bytes(random_signature(rng)) for n in range(3)}
            for min_jaccard in (0.0, 0.4):
                found = index.similar({name: (minhash.band_keys(q), q) for name, q in queries.items()}, 6, min_jaccard)
                for name, query in queries.items():
                    got = [(c[0], c[1], c[2]) for c in found.get(name, [])]
                    assert got == brute_force(live, order, query, 6, min_jaccard), (step, name)
                    assert all(c[3] == 5 for c in found.get(name, []))
    assert len(index) == len(live)


def test_a_signature_of_the_wrong_size_is_left_out() -> None:
    good = bytes(4 * minhash.NUM_PERM)
    index = LshIndex.build([("short", b"\x00" * 8, 1), ("good", good, 1)])
    query = {"q": (minhash.band_keys(minhash.sig_from_bytes(good)), minhash.sig_from_bytes(good))}
    assert index.similar(query, 5) == {"q": [("good", minhash.BANDS, 1.0, 1)]}
    index.add([("good", b"\x00" * 8, 1)])  # a rewrite with a broken signature drops the old one
    assert index.similar(query, 5) == {}


def test_an_empty_index_finds_nothing() -> None:
    query = {"q": ([1, 2, 3], np.zeros(minhash.NUM_PERM, dtype=np.uint32))}
    assert LshIndex.build([]).similar(query, 5) == {}
    assert LshIndex().similar({}, 5) == {}


def test_an_id_given_twice_in_one_batch_keeps_its_last_row_and_place() -> None:
    """As if the rows were added one by one: x re-added after y is the newer of two equal candidates."""
    first, second = bytes(4 * minhash.NUM_PERM), bytes([1]) * (4 * minhash.NUM_PERM)
    index = LshIndex()
    index.add([("x", second, 1), ("y", first, 2), ("x", first, 3)])
    query = minhash.sig_from_bytes(first)
    assert index.similar({"q": (minhash.band_keys(query), query)}, 5) == {
        "q": [("y", minhash.BANDS, 1.0, 2), ("x", minhash.BANDS, 1.0, 3)]}


def test_replaced_and_removed_rows_are_counted_as_dead() -> None:
    """The store rebuilds the index once dead rows outnumber live ones (and 10,000)."""
    signature = bytes(4 * minhash.NUM_PERM)
    index = LshIndex.build([("x", signature, 1), ("y", signature, 1)])
    index.add([("x", signature, 2)])
    index.add([("x", signature, 3)])
    index.remove(["y"])
    assert (len(index), index.dead_rows) == (1, 3)
