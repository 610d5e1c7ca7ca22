"""CPU per article of each step a parse worker runs, in process, on one thread.

    .venv/bin/python bench/worker_steps.py [--feeds 200] [--entries 50] [--rounds 3]

run.py's corpus and topics, every feed through what a parse worker does
with it (ingest/parsing_pool.py `_parse`): parse, each step of the enrich
chain, the dedup fingerprint, and the pickling of the reply. Each step is
timed by `time.process_time` around it, article by article, so the rows add
up to the worker's whole cost; the medians of --rounds passes are printed.
The garbage collector is off while timing (the workers collect rarely,
gcpolicy.py), and a first pass warms the caches the workers keep.

What it is for: the budget. The first ingest's wall time on two cores is at
least the CPU of the whole process tree divided by two; these rows and the
main thread's stages (stages.py) are where that CPU goes.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import corpus as corpus_mod  # noqa: E402
from run import topics_toml  # noqa: E402

from aggregator.config.load import load_config  # noqa: E402
from aggregator.dedup.detect import Fingerprint  # noqa: E402
from aggregator.enrich import chain as enrich_chain  # noqa: E402
from aggregator.enrich.topics import TopicRules  # noqa: E402
from aggregator.ingest.feed import parse_feed  # noqa: E402


def one_pass(feeds: list[bytes], chain: tuple) -> dict[str, float]:
    """Seconds of CPU per step over every feed."""
    spent = {"parse": 0.0, **{step.__name__: 0.0 for step in chain}, "fingerprint": 0.0, "pickle": 0.0}
    for number, data in enumerate(feeds):
        started = time.process_time()
        result = parse_feed(data, source="bench", url=f"http://127.0.0.1/{number}.xml", content_type="application/xml")
        spent["parse"] += time.process_time() - started
        articles = []
        for article in result.articles:
            for step in chain:
                started = time.process_time()
                article = step(article)
                spent[step.__name__] += time.process_time() - started
            articles.append(article)
        started = time.process_time()
        fingerprints = {article.id: Fingerprint.of(article) for article in articles}
        spent["fingerprint"] += time.process_time() - started
        started = time.process_time()
        pickle.dumps(replace(result, articles=articles, fingerprints=fingerprints, enriched=True),
                     protocol=pickle.HIGHEST_PROTOCOL)
        spent["pickle"] += time.process_time() - started
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    corpus = corpus_mod.generate(args.feeds, args.entries)
    feeds = [corpus_mod.render(feed) for feed in corpus.feeds]
    with tempfile.TemporaryDirectory() as folder:
        config_file = Path(folder) / "config.toml"
        config_file.write_text("\n".join(['[[sources]]', 'name = "bench"', 'url = "http://127.0.0.1/feed.xml"', ""]
                                         + topics_toml(8)))
        config = load_config(config_file)
    chain = enrich_chain.steps(TopicRules(config.topics, {"bench": ()}))
    one_pass(feeds[:20], chain)  # warm-up: the workers' caches (folds, token ids, names) are warm too
    gc.disable()
    passes = [one_pass(feeds, chain) for _ in range(args.rounds)]
    gc.enable()
    entries = sum(len(feed.entries) for feed in corpus.feeds)
    print(f"{entries:,} entries, {args.rounds} passes, medians; CPU of one thread\n")
    print("| step | s | us / entry |\n|---|---|---|")
    for step in passes[0]:
        seconds = statistics.median(p[step] for p in passes)
        print(f"| {step} | {seconds:.2f} | {seconds / entries * 1e6:.0f} |")
    whole = statistics.median(sum(p.values()) for p in passes)
    print(f"| whole | {whole:.2f} | {whole / entries * 1e6:.0f} |")


if __name__ == "__main__":
    main()
