"""Where a first ingest's wall time goes, stage by stage, on the main thread.

    .venv/bin/python bench/stages.py [--feeds 200] [--entries 50] [--parsed-in-advance]

Runs `aggregator run --once` in this process on the run.py corpus and
config (fresh database), with a timer around each stage's entry point.
Only time spent on the main thread counts (fetching and parsing happen on
worker threads and a worker process, and show up here as "waiting").
Stages nest (indented rows are part of the row above), so rows do not sum.
A profiler skews these proportions (cProfile inflates Python loops, py-spy
samples every thread); plain timers do not.

--parsed-in-advance gives the run every feed's parse result (articles,
fingerprints, tags) for free: the time left is what fetching, dedup,
storage and publishing cost on their own, the floor no faster parser can
go below.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import corpus as corpus_mod  # noqa: E402
from run import aggregator_config  # noqa: E402

SPENT: dict[str, float] = {}  # label -> seconds, in the order the timers were installed
CALLS: dict[str, int] = {}  # label -> calls on the main thread


def timed(owner: object, name: str, label: str) -> None:
    """Wrap owner.name so its main-thread time adds up under label."""
    function = getattr(owner, name)
    main = threading.main_thread().ident
    SPENT[label] = 0.0

    def spent(started: float) -> None:
        if threading.get_ident() == main:
            SPENT[label] += time.perf_counter() - started
            CALLS[label] = CALLS.get(label, 0) + 1

    def timed_steps(generator):
        """A generator's time is spent in each step, not in the call that makes it."""
        while True:
            started = time.perf_counter()
            try:
                item = next(generator)
            except StopIteration:
                return
            finally:
                spent(started)
            yield item

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        finally:
            spent(started)
        return timed_steps(result) if inspect.isgenerator(result) else result

    setattr(owner, name, wrapper)


# (module, attribute, label): the entry point of each stage. Stages nest by label indent.
STAGES = [
    ("aggregator.pipeline", "ingest_all", "ingest (fetch, parse, tag, dedup, store)"),
    ("aggregator.ingest.concurrency", "_batches", "  waiting for fetch + parse results"),
    ("aggregator.dedup.detect", "Deduplicator.assign", "  dedup"),
    ("aggregator.dedup.lsh_index", "LshIndex.similar", "    LSH candidate lookups and comparisons"),
    ("aggregator.storage.store", "Store.write_articles", "  storage"),
    ("aggregator.storage.store", "Store._upsert", "    article rows"),
    ("aggregator.storage.store", "Store._write_dedup", "    dedup signature rows"),
    ("aggregator.storage.store", "Store._replace_topics", "    topic rows"),
    ("aggregator.storage.store", "Store._commit", "  commits (the feeds that finished meanwhile share one)"),
    ("aggregator.storage.store", "Store.index_pending_text", "full-text index, caught up as the store closes"),
    ("aggregator.pipeline", "publish", "publish"),
    ("aggregator.publish.render", "related_for_many", "  related posts"),
    ("aggregator.publish.related", "TermWindow.__init__", "    the window's stored words, read into an index"),
]


def instrument() -> None:
    """Wrap every stage's entry point that exists; say which ones do not (the code moved on)."""
    import importlib

    for module_name, path, label in STAGES:
        owner: object = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, name):
            print(f"stages.py: {module_name}.{path} is gone; the row '{label.strip()}' is left out", file=sys.stderr)
            continue
        timed(owner, name, label)


def parse_in_advance(config: Path) -> None:
    """Replace the parse step with a lookup of results worked out now, by the same worker code.

    Each result is kept pickled and unpickled when asked for: the run still
    pays what receiving it from a worker process costs, and nothing else of
    parsing, fingerprinting or tagging.
    """
    import pickle

    from aggregator.ingest import parsing_pool
    from aggregator.config import load_config

    loaded = load_config(config)
    done: dict[str, bytes] = {}
    for source in loaded.sources:
        with urllib.request.urlopen(source.url) as response:
            data = response.read()
        result = parsing_pool._parse(data, source.name, source.url, "application/xml", tuple(loaded.topics),
                                     tuple(source.topics))
        done[source.url] = pickle.dumps(result)

    def parsed(data: bytes, *, source: str, url: str | None, **_: object):
        return pickle.loads(done[url])

    parsing_pool.parse_feed_bytes = parsed
    print(f"{len(done)} feeds parsed in advance")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the corpus server did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--parsed-in-advance", action="store_true",
                        help="parse, fingerprint and tag every feed before the timed run, which then "
                             "gets those results for free: what the rest of the run costs on its own")
    args = parser.parse_args()
    corpus = corpus_mod.generate(args.feeds, args.entries, corpus_mod.DEFAULT_SEED)
    work = Path(tempfile.mkdtemp(prefix="stages-"))
    server = None
    try:
        corpus_mod.write_corpus(corpus, work / "corpus")
        port = free_port()
        # The server runs in its own process: in this one its threads would take the GIL from the run.
        server = subprocess.Popen([sys.executable, str(BENCH / "server.py"), str(work / "corpus"), "--port", str(port)],
                                  stdout=subprocess.DEVNULL)
        wait_for(port)
        config = aggregator_config(work, [(f.title, f"http://127.0.0.1:{port}{f.path}") for f in corpus.feeds])
        if args.parsed_in_advance:
            parse_in_advance(config)
        instrument()
        from aggregator.app.cli import cli
        from aggregator.gcpolicy import fewer_passes

        fewer_passes()  # as the command's main() does

        started = time.perf_counter()
        cli.main(["-c", str(config), "-q", "run", "--once"], standalone_mode=False)
        total = time.perf_counter() - started
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
    entries = len(corpus.entries())
    print(f"{entries} entries, `run --once` in this process: {total:.2f} s\n")
    print("| stage (main thread) | s | us / entry | calls |\n|---|---|---|---|")
    for label, seconds in SPENT.items():
        print(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {seconds:.2f} | {seconds / entries * 1e6:.0f} "
              f"| {CALLS.get(label, 0):,} |")


if __name__ == "__main__":
    main()
