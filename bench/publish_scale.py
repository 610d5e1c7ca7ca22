"""Publishing at scale: 50 topics with related posts over 100,000 stored articles.

    .venv/bin/python bench/publish_scale.py [--articles 100000] [--topics 50] [--reuse]

1. build: synthetic articles written straight into the store with
   Store.write_articles (2,000 per transaction; no dedup, no topic rules:
   each article gets 1-2 of the 50 topics directly). Every topic has its own
   vocabulary, so bm25 related posts have something real to find.
2. publish: aggregator.publish.render.publish in this process, timed by phase
   (related posts, rendering, writing); then
3. republish with nothing changed: every file must come out byte-identical
   (0 written), and that time is reported too;
4. full-text search: the catch-up of articles not yet indexed (the daemon
   does it after publishing; here every article is pending after the build),
   then Store.articles(search=word, limit=20) for 8 stored words, median of 5.

Prints a Markdown table; writes bench/.work/publish_scale/result.json.
Timings on a shared machine move with its load: the load average is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import pstats
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config import Config, PublishConfig, SiteConfig, StorageConfig, TopicConfig  # noqa: E402
from aggregator.models import Article  # noqa: E402
from aggregator.enrich.text import content_hash  # noqa: E402
from aggregator.publish.render import publish  # noqa: E402
from aggregator.storage.store import Store  # noqa: E402

WORK = ROOT / "bench" / ".work" / "publish_scale"
BATCH = 2000
BASE_DATE = datetime(2025, 3, 1, tzinfo=timezone.utc)


def word(rng: random.Random) -> str:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))


def vocabularies(rng: random.Random, topics: int) -> tuple[list[str], list[list[str]]]:
    common = list(dict.fromkeys(word(rng) for _ in range(3000)))
    return common, [list(dict.fromkeys(word(rng) for _ in range(40))) for _ in range(topics)]


def article(number: int, rng: random.Random, common: list[str], topical: list[list[str]]) -> Article:
    topics = sorted({rng.randrange(len(topical)) for _ in range(rng.choice((1, 1, 2)))})
    pool = [w for t in topics for w in topical[t]]
    title = " ".join(rng.choice(pool if rng.random() < 0.6 else common) for _ in range(8)).capitalize()
    paragraphs = [" ".join(rng.choice(pool if rng.random() < 0.25 else common) for _ in range(40)) + "."
                  for _ in range(4)]
    text = "\n\n".join(paragraphs)
    item = Article(
        id=f"bench{number:07d}", source=f"source-{number % 200}", site=f"Site {number % 200}", title=title,
        url=f"https://site{number % 200}.example/story/{number}", published=BASE_DATE - timedelta(
            minutes=rng.randint(0, 60 * 24 * 60)), summary=paragraphs[0][:300], text=text,
        content_html="".join(f"<p>{p}</p>" for p in paragraphs), categories=[f"Cat {topics[0]}"],
        topics=[f"topic-{t:02d}" for t in topics], origin=f"https://site{number % 200}.example/feed.xml")
    return dataclasses.replace(item, content_hash=content_hash(item.title, item.text), cluster_id=item.id)


def build(db: Path, count: int, topics: int, seed: int) -> float:
    rng = random.Random(seed)
    common, topical = vocabularies(rng, topics)
    started = time.perf_counter()
    with Store(db) as store:
        for start in range(0, count, BATCH):
            batch = [article(n, rng, common, topical) for n in range(start, min(count, start + BATCH))]
            store.write_articles(batch, {a.id: a.topics for a in batch})
            print(f"\r  built {start + len(batch):,}/{count:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - started


def make_config(db: Path, feeds: Path, topics: int) -> Config:
    return Config(
        path=WORK / "config.toml",
        site=SiteConfig(title="Bench", base_url="http://127.0.0.1:8080/"),
        storage=dataclasses.replace(StorageConfig(), database=db, feeds_dir=feeds),
        publish=PublishConfig(max_items=50, related_posts=5),
        topics=tuple(TopicConfig(slug=f"topic-{t:02d}", title=f"Topic {t}", description=f"Stories of topic {t}")
                     for t in range(topics)))


def timed_publish(config: Config, profile: Path | None = None) -> tuple[float, object, dict[str, float]]:
    """Seconds for one publish (no profiler), or phases from a profiled one when `profile` is given."""
    profiler = cProfile.Profile()
    with Store(config.storage.database) as store:
        started = time.perf_counter()
        if profile:
            profiler.enable()
        report = publish(config, store)
        profiler.disable()
        elapsed = time.perf_counter() - started
    if profile is None:
        return elapsed, report, {}
    profiler.dump_stats(str(profile))
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    phases = {name: max((v[3] for k, v in stats.items() if k[2] == name), default=0.0)
              for name in ("related_for_many", "render", "render_article_pages", "write_if_changed")}
    return elapsed, report, phases


def search_times(db: Path, repeat: int = 5) -> tuple[float, dict[str, tuple[float, int]]]:
    """(seconds to catch the full-text index up, word -> (median ms of a search, matching articles))."""
    with Store(db) as store:
        started = time.perf_counter()
        store.index_pending_text()
        catch_up = time.perf_counter() - started
        titles = store.db.execute("SELECT title FROM articles WHERE rowid % 9973 = 1 LIMIT 8").fetchall()
        found = {}
        for position, (title,) in enumerate(titles):
            word = title.split()[position % len(title.split())].lower()
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                store.articles(search=word, limit=20)
                times.append((time.perf_counter() - started) * 1000)
            matches = store.db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?",
                                       [f'"{word}"']).fetchone()[0]
            found[word] = (statistics.median(times), matches)
    return catch_up, found


def forget_published_state(db: Path, keep_related: bool = False) -> None:
    """Drop the publish stamp (and the kept related lists) so the next publish does everything."""
    with Store(db) as store, store.transaction():
        store.db.execute("DELETE FROM meta WHERE key LIKE 'published:%'")
        if not keep_related:
            store.db.execute("DELETE FROM related_cache")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep a store already built at this size")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / f"store-{args.articles}.db"
    feeds = WORK / "feeds"
    load = os.getloadavg()[0]
    build_s = None
    if not (args.reuse and db.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        build_s = build(db, args.articles, args.topics, args.seed)
    for old in feeds.rglob("*") if feeds.exists() else []:
        if old.is_file():
            old.unlink()
    config = make_config(db, feeds, args.topics)
    forget_published_state(db)  # cold: no kept related lists, no publish stamp
    first_s, first, _ = timed_publish(config)
    again_s, again, _ = timed_publish(config)
    forget_published_state(db, keep_related=True)
    warm_s, _, _ = timed_publish(config)  # every file rendered again, related lists kept
    forget_published_state(db, keep_related=True)
    _, _, phases = timed_publish(config, WORK / "publish.prof")
    again_phases: dict[str, float] = {}
    catch_up_s, searches = search_times(db)
    result = {"articles": args.articles, "topics": args.topics, "load_avg_1m_at_start": load,
              "build_s": build_s, "publish_s": first_s, "written": len(first.written),
              "republish_s": again_s, "republish_written": len(again.written),
              "republish_unchanged": len(again.unchanged), "warm_publish_s": warm_s,
              "phases_publish_s": phases,
              "phases_republish_s": again_phases, "search_catch_up_s": catch_up_s, "search_ms": searches}
    (WORK / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"load average at start: {load:.2f}; cpus: {os.cpu_count()}")
    print("| step | seconds | files |\n|---|---:|---:|")
    if build_s is not None:
        print(f"| build {args.articles:,} articles | {build_s:.1f} | |")
    print(f"| publish {args.topics} topics + all (3 formats, related posts), cold | {first_s:.1f} | "
          f"{len(first.written)} written |")
    print(f"| publish again with related lists kept, every file rendered | {warm_s:.1f} | |")
    print(f"| republish, nothing changed | {again_s:.1f} | {len(again.written)} written, "
          f"{len(again.unchanged)} unchanged |")
    for name, seconds in phases.items():
        print(f"| - warm publish under cProfile: {name} (cumulative) | {seconds:.1f} | |")
    print(f"| full-text catch-up of the articles not yet indexed | {catch_up_s:.1f} | |")
    worst = max(searches.items(), key=lambda item: item[1][0])
    print(f"| full-text search, limit 20, median of 5, worst of {len(searches)} words | "
          f"{worst[1][0] / 1000:.4f} ({worst[0]!r}, {worst[1][1]:,} matches) | |")


if __name__ == "__main__":
    main()
