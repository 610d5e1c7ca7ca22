"""Benchmark: ingest a folder of 10,000 plain-text articles, then again unchanged.

`python bench/ingest_local.py [--files 10000] [--keep DIR]`

Runs the real pipeline (pipeline.ingest_source: walk, read, decode, parse,
tag, dedup, one SQLite transaction) against a fresh database in a temp
folder, and prints files per second for the first ingest and the time of
the unchanged second pass, which skips files by (size, mtime) before
reading them.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from aggregator.config import Config, SourceConfig
from aggregator.pipeline import ingest_source
from aggregator.storage.store import Store

SITES = ["Harbour Times", "Daily Ledger", "Northgate Herald", "Valley Post", "Coastal Times"]
CATEGORIES = ["WorldEurope", "BusinessEconomy", "TechnologyAI", "ClimateEnvironment", "Middle EastUSAWorld"]
WORDS = ("council market harbour rates inflation bridge school energy solar ferry museum strike talks "
         "minister report budget growth storm repairs election court police hospital farmers water "
         "prices exports airport railway festival library research university startup").split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def article(rng: random.Random, number: int) -> str:
    paragraphs = [" ".join(sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(3, 7))]
    return "\n".join([
        rng.choice(SITES), rng.choice(CATEGORIES), "",
        f"Story {number}: {sentence(rng)[:-1]}", "",
        *("\n\n".join(paragraphs).split("\n")), "",
        "Related Posts", "", f"Story {number + 1} follow-up", "Staff Reporter",
    ])


def write_corpus(folder: Path, count: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    for number in range(count):
        sub = folder / f"{number // 1000:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{number:05d}.txt").write_text(article(rng, number), encoding="utf-8")


def timed(config: Config, store: Store, source: SourceConfig):
    start = time.perf_counter()
    report = ingest_source(config, store, source)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="work in this folder instead of a temp one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        work = args.keep or Path(temp)
        folder = work / "articles"
        start = time.perf_counter()
        write_corpus(folder, args.files)
        print(f"wrote {args.files:,} files in {time.perf_counter() - start:.1f} s")
        # Files written this second are within the racy-mtime window; age them like a real drop folder.
        time.sleep(2.1)
        config = Config(path=work / "config.toml")
        source = SourceConfig(name="bench", path=folder)
        with Store(work / "bench.db") as store:
            first, report1 = timed(config, store, source)
            second, report2 = timed(config, store, source)
        print(f"first ingest:   {first:7.2f} s  {args.files / first:8.0f} files/s  ({report1.summary()})")
        print(f"unchanged pass: {second:7.2f} s  {args.files / second:8.0f} files/s  ({report2.summary()})"
              f"  = {second / first:.1%} of the first")


if __name__ == "__main__":
    main()
