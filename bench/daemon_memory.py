"""Daemon memory: RSS after ingesting 10,000 articles, then over an hour-equivalent of scheduled cycles.

    .venv/bin/python bench/daemon_memory.py [--feeds 200] [--entries 50] [--seconds 120]

The articles come from bench/corpus.py (news-like text with near-copies and
exact repeats, so dedup, topics and related posts do real work), served as
`--feeds` remote feeds by a local HTTP server that answers If-None-Match
with 304, plus 10 local folders.

Time is compressed 30x: feeds run every 30 s (standing for 15 min) and the
local folders every 10 s (standing for 5 min), so `--seconds 120` of wall
time is one hour: 4 cycles of every feed. Every 3 s a new entry appears in
one feed and a new file in one folder, so fetches, ingest and publishes keep
happening. RSS is read from /proc/PID/status, for the daemon alone and for
its process tree (the parse workers and their forkserver included).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import corpus as corpus_mod  # noqa: E402
from helpers.daemon import free_port, start_daemon, wait_for, write_article, write_config  # noqa: E402

DESKS = 10


class CorpusServer:
    """The corpus' feeds over HTTP on 127.0.0.1, with ETags; feeds can grow while it runs."""

    def __init__(self, corpus: corpus_mod.Corpus):
        self.corpus = corpus
        self.bodies: dict[str, bytes] = {}
        self.lock = threading.Lock()
        for feed in corpus.feeds:
            self._render(feed)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server.lock:
                    body = server.bodies.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _render(self, feed: corpus_mod.Feed) -> None:
        with self.lock:
            self.bodies[f"/feeds/{feed.index:04d}.xml"] = corpus_mod.render(feed)

    def add_entry(self, rng: random.Random, feed_index: int, n: int) -> None:
        feed = self.corpus.feeds[feed_index]
        feed.entries.insert(0, corpus_mod._original(rng, feed, n))
        self._render(feed)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def tree_rss_mib(pid: int) -> float:
    """RSS of `pid` and every process below it (parse workers, forkserver)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += rss_mib(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, RuntimeError):
            continue  # it ended meanwhile
    return total


def config_sources(server: CorpusServer) -> str:
    sources = "".join(f'\n[[sources]]\nname = "Feed {f.index:04d}"\nurl = "{server.base}/feeds/{f.index:04d}.xml"\n'
                      f'interval = "30s"\n' for f in server.corpus.feeds)
    return sources + "".join(f'\n[[sources]]\nname = "Desk {d}"\npath = "desk{d}"\ninterval = "10s"\n'
                             for d in range(DESKS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=120, help="wall seconds of compressed time (120 = 1 hour)")
    args = parser.parse_args()
    rng = random.Random(1)
    corpus = corpus_mod.generate(args.feeds, args.entries)
    server = CorpusServer(corpus)
    with tempfile.TemporaryDirectory() as folder:
        project, port = Path(folder), free_port()
        for d in range(DESKS):
            write_article(project / f"desk{d}", "first.txt", f"Desk {d} opening story", d)
        write_config(project, port, config_sources(server))
        unique = len({e.guid for f in corpus.feeds for e in f.entries})
        daemon = start_daemon(project, port)
        started = time.monotonic()
        try:
            wait_for(lambda: all(s["last_fetch"] for s in daemon.health()["sources"])
                     and daemon.health()["articles"] >= unique, timeout=3600, every=1.0,
                     what="every source fetched", daemon=daemon)
            ingest_seconds = time.monotonic() - started
            articles = daemon.health()["articles"]
            time.sleep(5)  # the publish after the last batch
            after_ingest, tree_after_ingest = rss_mib(daemon.pid), tree_rss_mib(daemon.pid)
            print(f"ingested {articles} articles in {ingest_seconds:.0f}s; RSS {after_ingest:.1f} MiB "
                  f"(process tree {tree_after_ingest:.1f} MiB)", flush=True)
            fetches_before = daemon.log().count("fetch ")
            samples, begin, tick = [], time.monotonic(), 0
            while time.monotonic() - begin < args.seconds:
                time.sleep(3)
                tick += 1
                server.add_entry(rng, tick % len(corpus.feeds), 1000 + tick)
                write_article(project / f"desk{tick % DESKS}", f"new{tick}.txt", f"Fresh desk story {tick}", tick)
                if tick % 5 == 0:
                    samples.append((round(time.monotonic() - begin), round(rss_mib(daemon.pid), 1),
                                    round(tree_rss_mib(daemon.pid), 1)))
                    print(f"  t={samples[-1][0]:4d}s RSS {samples[-1][1]:.1f} MiB (tree {samples[-1][2]:.1f})",
                          flush=True)
            time.sleep(3)
            final = rss_mib(daemon.pid)
            health = daemon.health()
            fetches = daemon.log().count("fetch ") - fetches_before
        finally:
            daemon.stop()
    server.httpd.shutdown()
    print(json.dumps({
        "articles_after_ingest": articles, "ingest_seconds": round(ingest_seconds),
        "rss_after_ingest_mib": round(after_ingest, 1), "rss_after_hour_equivalent_mib": round(final, 1),
        "rss_max_mib": max(s for _, s, _ in samples), "tree_rss_after_ingest_mib": round(tree_after_ingest, 1),
        "tree_rss_max_mib": max(t for _, _, t in samples), "fetches_in_hour": fetches,
        "articles_at_end": health["articles"], "publishes": health["publishes"], "samples": samples,
    }))


if __name__ == "__main__":
    main()
