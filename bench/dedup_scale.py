"""Time to dedup + tag + store N articles, and the cost of one new article at 1,000 vs N stored.

Two corpora. `zipf` (the default): words drawn from a Zipf-distributed
30,000-word vocabulary, 1-3 copies per story, so unrelated articles share only
common-word shingles, as real news does. `templates`: the eval templates
(eval/generate.py), a worst case in which every article on a subject shares
sentence frames and so becomes an LSH candidate. Batches of 500 per "source",
as ingest writes them.

    .venv/bin/python bench/dedup_scale.py [--articles 100000] [--probes 200] [--corpus zipf|templates]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402  (eval/generate.py)
from eval_quality import to_article  # noqa: E402

from aggregator.config import load_config  # noqa: E402
from aggregator.models import ParseResult  # noqa: E402
from aggregator.pipeline import store_results, topic_rules  # noqa: E402
from aggregator.storage.store import Store  # noqa: E402

BATCH = 500


def zipf_corpus(count: int, seed: int) -> list[dict]:
    """Stories of Zipf-distributed words from a 30,000-word vocabulary, ~40% of them with copies.

    Unrelated articles share only common-word shingles, as real news does;
    copies drop a paragraph, get a new headline and the site's boilerplate.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(30_000)]
    weights = 1 / np.arange(1, len(vocab) + 1) ** 1.1
    weights /= weights.sum()
    rows: list[dict] = []
    story = 0
    while len(rows) < count:
        words = rng.choice(len(vocab), size=int(rng.integers(250, 500)), p=weights)
        paragraphs = [" ".join(vocab[w] for w in chunk) for chunk in np.array_split(words, 6)]
        copies = int(rng.choice([1, 1, 1, 2, 3]))
        for index in range(copies):
            body = paragraphs if index == 0 else paragraphs[:-1] + [f"Boilerplate of site {index}."]
            title = " ".join(vocab[w] for w in rng.choice(len(vocab), size=8, p=weights))
            rows.append({"id": f"{seed}-{story}-{index}", "source": f"site{index}", "site": f"Site {index}",
                         "url": f"https://site{index}.example/{seed}/{story}", "title": title,
                         "text": "\n\n".join(body), "published": f"2024-03-01T{index:02d}:00:00+00:00",
                         "categories": []})
        story += 1
    return rows[:count]


def corpus(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    for story in generate.stories(rng, count):
        for index, site in enumerate(story["sites"][:3]):
            row = generate.copy_of(rng, story, site, index)
            row["id"] = f"{seed}-{story['key']}-{index}-{len(rows)}"
            row["cluster"] = f"{seed}-{story['key']}"
            rows.append(row)
            if len(rows) >= count:
                return rows
    return rows


def load(store: Store, rows: list[dict], rules, threshold: float) -> float:
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        store_results(store, f"src{i // BATCH % 50}", [ParseResult(articles=[to_article(r) for r in rows[i:i + BATCH]])],
                      rules, dedup_threshold=threshold)
    return time.perf_counter() - start


def per_new_article(store: Store, rows: list[dict], rules, threshold: float) -> float:
    """Median seconds to dedup + tag + store one new article (a batch of one)."""
    times = []
    for row in rows:
        start = time.perf_counter()
        store_results(store, "late", [ParseResult(articles=[to_article(row)])], rules, dedup_threshold=threshold)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fresh_process_ingest(db: str, rows: list[dict]) -> tuple[float, float, float]:
    """In a new interpreter, as `run --once` would: open the store, store one batch of new articles.

    Returns (seconds to build the in-memory LSH buckets from every stored signature, seconds for
    the whole batch including that build, peak RSS in MB): the memory a run at this size needs.
    """
    from aggregator.dedup import lsh_index  # noqa: F401  (imported before the clock starts: numpy is not the build)

    config = load_config(ROOT / "eval" / "topics.toml")
    start = time.perf_counter()
    with Store(db) as store:
        store.duplicate_index.current(store)
        build = time.perf_counter() - start
        store_results(store, "fresh", [ParseResult(articles=[to_article(r) for r in rows])], topic_rules(config),
                      dedup_threshold=config.dedup.threshold)
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would report the parent's size.
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    return build, seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--corpus", choices=["zipf", "templates"], default="zipf",
                        help="zipf: realistic word overlap; templates: eval templates, a worst case where "
                             "every article on a subject shares sentence frames")
    args = parser.parse_args()
    make = zipf_corpus if args.corpus == "zipf" else corpus
    config = load_config(ROOT / "eval" / "topics.toml")
    rules, threshold = topic_rules(config), config.dedup.threshold
    rows = make(args.articles + 1000, seed=1)
    probes = make(args.probes, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "small.db") as small:
            load(small, rows[:1000], rules, threshold)
            at_1k = per_new_article(small, probes, rules, threshold)
        with Store(Path(tmp) / "big.db") as big:
            total = load(big, rows[:args.articles], rules, threshold)
            clusters = big.db.execute("SELECT COUNT(DISTINCT cluster_id) FROM articles").fetchone()[0]
            at_big = per_new_article(big, probes, rules, threshold)
            size_mb = (Path(tmp) / "big.db").stat().st_size / 1e6
            pending = big.conn.execute("SELECT COUNT(*) FROM fts_pending").fetchone()[0]
            start = time.perf_counter()
        catch_up = time.perf_counter() - start  # closing a store that wrote indexes the text it stored
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as fresh:
            rebuild, fresh_seconds, fresh_rss = fresh.submit(fresh_process_ingest, str(Path(tmp) / "big.db"),
                                                    make(50, seed=3)).result()
    print(f"corpus: {args.corpus}")
    print(f"dedup + tag + store {args.articles:,} articles: {total:.1f} s "
          f"({args.articles / total:,.0f} articles/s, {clusters:,} clusters, db {size_mb:.0f} MB)")
    print(f"one new article, median of {len(probes)}: {at_1k * 1000:.2f} ms at 1,000 stored, "
          f"{at_big * 1000:.2f} ms at {args.articles:,} stored")
    print(f"the in-memory LSH buckets of {args.articles + len(probes):,} signatures, built by a new process: "
          f"{rebuild:.2f} s")
    print(f"a new process storing 50 new articles into the {args.articles:,}: {fresh_seconds:.2f} s, "
          f"peak RSS {fresh_rss:.0f} MB")
    print(f"full-text index of the {pending:,} articles stored, written when the store closes: "
          f"{catch_up:.2f} s")
    print(f"peak RSS of this process (the whole corpus is in it): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
