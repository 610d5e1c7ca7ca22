"""Scale benchmark: 100,000 stored articles, 50 topics.

    .venv/bin/python bench/scale.py [--articles 100000] [--topics 50] [--reuse]

1. build: articles written straight into our store with Store.write_articles
   (500 per source batch; see below for tags and clusters), text from bench/corpus.py with ~15% near-copies and ~5%
   exact repeats of earlier stories;
2. publish: `aggregator -c <config with 50 topics> publish` as a whole
   command (related posts included), then again with nothing changed;
3. dedup + tag cost per new article, the same 200 new articles against a
   store of 1,000 and against the big store (tags + Deduplicator.assign,
   best of 3; then the write alone);
4. full-text search: Store.articles(search=...) for a few queries;
5. peak memory of every step.

Prints a Markdown table (for bench/README.md) and writes scale.json.
`--reuse` keeps a big store already built with the same size (the build
takes minutes; the measurements after it do not change it much: step 3
adds 200 articles).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod  # noqa: E402
from measure import AGGREGATOR, machine, run_command, versions  # noqa: E402
from run import topics_toml  # noqa: E402

from aggregator.config import load_config  # noqa: E402
from aggregator.dedup.detect import Deduplicator  # noqa: E402
from aggregator.models import Article  # noqa: E402
from aggregator.enrich.text import content_hash, paragraphs_to_html, stable_id  # noqa: E402
from aggregator.pipeline import topic_rules  # noqa: E402
from aggregator.storage.store import Store  # noqa: E402
from aggregator.enrich.topics import TopicRules  # noqa: E402

BENCH = Path(__file__).resolve().parent
BATCH = 500
SOURCES = 200
NEW_ARTICLES = 200
QUERIES = ["ceasefire proposal", "inflation", "semiconductor plant", "heatwave Queensland", "Zürich",
           "measles outbreak", "transfer record", "exoplanet"]


@dataclass
class Truth:
    topic: str
    copy_of: str | None  # the id of the original story, for near-copies and exact repeats


def articles(seed: int, start: int = 0) -> Iterator[tuple[Article, Truth]]:
    """An endless, deterministic stream of stored-style articles and what they really are."""
    rng = random.Random(seed)
    names = corpus_mod.site_names(SOURCES)
    recent: list[tuple[Article, str]] = []
    n = start
    while True:
        source = names[(n // BATCH) % SOURCES]
        roll = rng.random()
        if recent and roll < corpus_mod.EXACT_SHARE:
            original, topic = rng.choice(recent)
            article = _article(n, source, original.title, original.text.split("\n\n"), original.categories,
                               original.published, original.url, original.authors)
        elif recent and roll < corpus_mod.EXACT_SHARE + corpus_mod.NEAR_SHARE:
            original, topic = rng.choice(recent)
            paragraphs = [". ".join(corpus_mod.sentence(rng, topic, source).rstrip(".")
                                    if rng.random() < 0.15 else s for s in p.split(". "))
                          for p in original.text.split("\n\n")]
            article = _article(n, source, "UPDATE: " + original.title, paragraphs, original.categories,
                               original.published + timedelta(minutes=rng.randint(5, 600)),
                               f"https://bench.example/{n}", ["Staff and agencies"])
        else:
            topic = rng.choice(corpus_mod.TOPIC_NAMES)
            article = _article(n, source, corpus_mod.headline(rng, topic), corpus_mod.body(rng, topic, source),
                               list(corpus_mod.TOPICS[topic]["categories"][: rng.randint(1, 2)]),
                               corpus_mod.BASE_DATE - timedelta(minutes=rng.randint(0, 60 * 24 * 365)),
                               f"https://bench.example/{n}", [corpus_mod.person(rng)])
            original = article
            recent.append((article, topic))
            del recent[:-2000]
        yield article, Truth(topic, None if original is article else original.id)
        n += 1


def _article(n: int, source: str, title: str, paragraphs: list[str], categories: list[str], published,
             url: str | None, authors: list[str]) -> Article:
    text = "\n\n".join(paragraphs)
    guid = f"https://bench.example/guid/{n}"
    return Article(
        id=stable_id("bench", source, guid), source=source, title=title, site=source, url=url, guid=guid,
        published=published, authors=list(authors), categories=list(categories), summary=paragraphs[0][:400],
        text=text, content_html=paragraphs_to_html(paragraphs), origin=f"https://bench.example/feed/{source}",
        content_hash=content_hash(title, text, url or ""),
    )


def store_batch(store: Store, rules: TopicRules, batch: list[Article], threshold: float) -> None:
    """What pipeline.store_results does for a parsed batch: tag, cluster, one transaction."""
    tags = {a.id: rules.tags(a) for a in batch}
    done = Deduplicator(store, threshold).assign([replace(a, topics=tags[a.id]) for a in batch])
    store.write_articles(done.articles, tags, done.rows)


def store_truth(store: Store, batch: list[tuple[Article, Truth]], places: dict[str, str]) -> None:
    """The fast build: topics and clusters from the generator's truth, no dedup index rows.

    Tagging and clustering 100,000 articles through TopicRules and Deduplicator
    takes minutes, and what this benchmark measures (publishing, search) does not
    depend on how the tags were made, so the big store gets the truth instead:
    its subject topic, every place topic whose place its text names, and its
    original's cluster.
    """
    tags, truthful = {}, []
    for article, truth in batch:
        lowered = article.text.lower()
        tags[article.id] = [truth.topic, *(slug for place, slug in places.items() if place in lowered)]
        truthful.append(replace(article, topics=tags[article.id], cluster_id=truth.copy_of or article.id))
    store.write_articles(truthful, tags)


def build(db: Path, count: int, config, seed: int, fast: bool) -> float:
    """A fresh store of `count` articles; fast = truth tags (store_truth), else the real tag + dedup path."""
    rules, threshold = topic_rules(config), config.dedup.threshold
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    stream = articles(seed)
    places = {t.keywords[0]: t.slug for t in config.topics if t.slug.startswith("local-")}
    with Store(db) as store:
        done = 0
        while done < count:
            batch = [next(stream) for _ in range(min(BATCH, count - done))]
            if fast:
                store_truth(store, batch, places)
            else:
                store_batch(store, rules, [a for a, _ in batch], threshold)
            done += len(batch)
            if done % 10_000 == 0:
                print(f"  built {done} articles, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def write_config(folder: Path, db: Path, topics: int) -> Path:
    lines = ["[site]", 'title = "Scale digest"', 'base_url = "http://127.0.0.1:8080/"', "",
             "[storage]", f"database = {json.dumps(str(db))}", 'feeds_dir = "feeds"', "",
             "[publish]", "max_items = 50", "related_posts = 5", "", *topics_toml(topics)]
    path = folder / "config.toml"
    path.write_text("\n".join(lines), "utf-8")
    return path


@dataclass
class DedupCost:
    stored: int
    tag_us: float
    dedup_us: float
    write_us: float

    @property
    def tag_dedup_us(self) -> float:
        return self.tag_us + self.dedup_us


def new_batch(seed: int) -> list[Article]:
    """200 articles not in any store: a fresh stream whose copies refer to stories of the first 1,000."""
    base = [a for a, _ in _take(articles(seed), 1000)]
    rng = random.Random(seed + 1)
    fresh = [a for a, _ in _take(articles(seed + 7, start=10_000_000), NEW_ARTICLES)]
    for i in range(0, NEW_ARTICLES, 5):  # one in five: a near-copy or repeat of a stored story
        original = rng.choice(base)
        text = original.text if i % 10 == 0 else original.text.replace(". ", ". Officials said that ", 1)
        fresh[i] = _article(10_000_000 + i, "New Wire", "Wire: " + original.title, text.split("\n\n"),
                            original.categories, original.published, f"https://wire.example/{i}", ["Wire"])
    return fresh


def _take(stream: Iterator, n: int) -> Iterator:
    for _ in range(n):
        yield next(stream)


def dedup_cost(db: Path, rules: TopicRules, threshold: float, seed: int, repeat: int = 3) -> DedupCost:
    batch = new_batch(seed)
    with Store(db) as store:
        stored = store.count()
        tag_s = min(_timed(lambda: [rules.tags(a) for a in batch]) for _ in range(repeat))
        dedup_s = min(_timed(lambda: Deduplicator(store, threshold).assign(batch)) for _ in range(repeat))
        tags = {a.id: rules.tags(a) for a in batch}
        done = Deduplicator(store, threshold).assign(batch)
        write_s = _timed(lambda: store.write_articles(done.articles, tags, done.rows))
    per = 1e6 / len(batch)
    return DedupCost(stored, tag_s * per, dedup_s * per, write_s * per)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def search_times(db: Path, repeat: int = 5) -> dict[str, tuple[float, int]]:
    """Query -> (median ms of Store.articles(search=q, limit=20), hits)."""
    found = {}
    with Store(db) as store:
        for query in QUERIES:
            times, hits = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                hits = len(store.articles(search=query, limit=20))
                times.append((time.perf_counter() - start) * 1000)
            found[query] = (statistics.median(times), hits)
    return found


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description="100,000 stored articles: publish, dedup, search, memory.")
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--seed", type=int, default=corpus_mod.DEFAULT_SEED)
    parser.add_argument("--work", type=Path, default=BENCH / ".work" / "scale")
    parser.add_argument("--reuse", action="store_true", help="keep a big store already built at this size")
    parser.add_argument("--full-build", action="store_true",
                        help="build the big store through TopicRules + Deduplicator (slow) instead of truth tags")
    parser.add_argument("--dedup-at", type=int, default=10_000,
                        help="store size (built the real way) for the dedup cost when the big store is built fast")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    big, small, medium = work / "big.db", work / "small.db", work / "medium.db"
    config_path = write_config(work, big, args.topics)
    config = load_config(config_path)
    rules, threshold = topic_rules(config), config.dedup.threshold

    build_s = None
    reused = args.reuse and big.exists() and _count(big) >= args.articles
    if not reused:
        build_s = build(big, args.articles, config, args.seed, fast=not args.full_build)
    build_rss = rss_mb()
    shutil.rmtree(work / "feeds", ignore_errors=True)
    publish = run_command([AGGREGATOR, "-c", str(config_path), "publish"], work / "publish.log")
    republish = run_command([AGGREGATOR, "-c", str(config_path), "publish"], work / "republish.log")

    build(small, 1000, config, args.seed, fast=False)
    if args.full_build:
        medium = big
    elif not (args.reuse and medium.exists() and _count(medium) >= args.dedup_at):
        build(medium, args.dedup_at, config, args.seed, fast=False)
    costs = [dedup_cost(small, rules, threshold, args.seed), dedup_cost(medium, rules, threshold, args.seed)]
    searches = search_times(big)
    measure_rss = rss_mb()

    report = table(args, load, build_s, build_rss, publish, republish, costs, searches, measure_rss, big)
    print(report)
    (work / "scale.json").write_text(json.dumps({
        "args": {k: str(v) for k, v in vars(args).items()}, "machine": machine(), "load": load,
        "build_s": build_s, "publish": publish.__dict__, "republish": republish.__dict__,
        "dedup": [c.__dict__ for c in costs], "search_ms": searches, "table": report,
    }, indent=1, default=str))


def _count(db: Path) -> int:
    with Store(db) as store:
        return store.count()


def table(args, load, build_s, build_rss, publish, republish, costs, searches, measure_rss, big) -> str:
    small, large = costs
    ratio = large.tag_dedup_us / small.tag_dedup_us if small.tag_dedup_us else float("nan")
    worst_search = max(ms for ms, _ in searches.values())
    rows = [
        (f"build {args.articles} articles ({'tag + dedup + write' if args.full_build else 'truth tags + write'}, in process)",
         f"{build_s:.0f} s ({args.articles / build_s:.0f} articles/s)" if build_s else "reused", "", ""),
        (f"publish {args.topics} topics + all, related posts (`aggregator publish`)", f"{publish.seconds:.2f} s",
         "< 5 s", _ok(publish.seconds < 5)),
        ("  its output", _last_line(publish.stderr_tail), "", ""),
        ("unchanged republish", f"{republish.seconds:.2f} s", "< 1 s", _ok(republish.seconds < 1)),
        ("  its output", _last_line(republish.stderr_tail), "", ""),
        (f"tag + dedup per new article, {small.stored} stored",
         f"{small.tag_dedup_us:.0f} us (tag {small.tag_us:.0f}, dedup {small.dedup_us:.0f})", "", ""),
        (f"tag + dedup per new article, {large.stored} stored",
         f"{large.tag_dedup_us:.0f} us (tag {large.tag_us:.0f}, dedup {large.dedup_us:.0f})", "", ""),
        ("  ratio large / small", f"{ratio:.2f}x", "<= 1.5x", _ok(ratio <= 1.5)),
        ("write per new article (1 transaction), small / large",
         f"{small.write_us:.0f} / {large.write_us:.0f} us", "", ""),
        ("full-text search, Store.articles(search=q, limit=20), median, worst query",
         f"{worst_search:.1f} ms", "< 50 ms", _ok(worst_search < 50)),
        ("peak RSS: publish / republish (whole command)",
         f"{publish.max_rss_mb:.0f} / {republish.max_rss_mb:.0f} MB", "< 300 MB",
         _ok(max(publish.max_rss_mb, republish.max_rss_mb) < 300)),
        ("peak RSS: this process (build, then dedup + search)",
         f"{build_rss:.0f} / {measure_rss:.0f} MB", "", ""),
        ("database size", f"{sum(p.stat().st_size for p in big.parent.glob(big.name + '*')) / 2**20:.0f} MB", "", ""),
    ]
    out = [f"Scale: {args.articles} stored articles, {args.topics} topics, seed {args.seed}.  ",
           f"Machine: {machine()}; load average at start {load:.2f}.  ", f"Versions: {versions()}.", "",
           "| measure | result | target | met |", "|---|---|---|---|"]
    out += [f"| {' | '.join(row)} |" for row in rows]
    out += ["", "Search queries (median ms over 5, hits with limit 20): "
            + "; ".join(f"`{q}` {ms:.1f} ms ({hits})" for q, (ms, hits) in searches.items())]
    return "\n".join(out)


def _ok(condition: bool) -> str:
    return "yes" if condition else "**no**"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].replace("|", "/")[:120] if lines else "-"


if __name__ == "__main__":
    main()
