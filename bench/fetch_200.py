"""Benchmark: 200 remote feeds served locally with 50 ms latency.

Feeds are spread over 20 loopback addresses (127.0.0.1 .. 127.0.0.20, ten
feeds each) so the per-host bound acts as it would on the internet. It
reports:

  - a sequential run (concurrency = 1) into a fresh database;
  - a concurrent run (the default fetch settings) into another fresh one;
  - a second concurrent run: every source must answer 304 and no article
    row may be written.

Usage: .venv/bin/python bench/fetch_200.py [--feeds 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import faulthandler
import signal
import hashlib
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator import pipeline  # noqa: E402
from aggregator.config import parse_config  # noqa: E402
from aggregator.storage.store import Store  # noqa: E402

HOSTS = 20


WORDS = ["".join(random.Random(k).choices("abcdefghijklmnoprstuvwy", k=3 + k % 6)) for k in range(5000)]


def feed_xml(n: int) -> bytes:
    """Ten distinct stories (seeded random words) so dedup sees a realistic, not a pathological, corpus."""
    rng = random.Random(n)
    items = "".join(
        f"<item><title>{' '.join(rng.sample(WORDS, 6)).capitalize()} ({n}.{i})</title>"
        f"<link>https://site{n}.example/story/{i}</link><guid>f{n}-s{i}</guid>"
        f"<pubDate>Mon, 02 Jun 2025 {i:02d}:00:00 +0000</pubDate>"
        f"<description>&lt;p&gt;{' '.join(rng.choice(WORDS) for _ in range(80))}.&lt;/p&gt;</description></item>"
        for i in range(10))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Site {n}</title>'
            f"<link>https://site{n}.example/</link><description>d</description>{items}</channel></rss>").encode()


def serve(host: str, feeds: dict[str, bytes], latency: float, counts: dict[int, int]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = feeds.get(self.path)
            time.sleep(latency)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            status = 304 if self.headers.get("If-None-Match") == etag else 200
            counts[status] = counts.get(status, 0) + 1
            self.send_response(status)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "0" if status == 304 else str(len(body)))
            self.end_headers()
            if status == 200:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def make_config(folder: Path, urls: list[str], concurrency: int, per_host: int):
    raw = {"storage": {"database": str(folder / "bench.db")},
           "fetch": {"allow_private_network": True, "concurrency": concurrency, "per_host": per_host},
           "sources": [{"name": f"feed-{i:03d}", "url": url} for i, url in enumerate(urls)]}
    return parse_config(raw, folder / "config.toml")


def timed_run(config) -> tuple[float, list, int]:
    with Store(config.storage.database) as store:
        before = store.db.execute("SELECT total_changes()").fetchone()[0]
        article_rows = store.db.execute("SELECT COUNT(*), MAX(updated) FROM articles").fetchone()
        started = time.perf_counter()
        reports = pipeline.ingest_all(config, store)
        elapsed = time.perf_counter() - started
        after_rows = store.db.execute("SELECT COUNT(*), MAX(updated) FROM articles").fetchone()
        changes = store.db.execute("SELECT total_changes()").fetchone()[0] - before
        states = store.source_states()
    statuses: dict[int, int] = {}
    for state in states.values():
        statuses[state["http_status"]] = statuses.get(state["http_status"], 0) + 1
    return elapsed, reports, changes, statuses, article_rows, after_rows


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    counts: dict[int, int] = {}
    servers, urls = [], []
    for h in range(HOSTS):
        host = f"127.0.0.{h + 1}"
        feeds = {f"/feed/{n}.xml": feed_xml(n) for n in range(h, args.feeds, HOSTS)}
        server = serve(host, feeds, args.latency, counts)
        servers.append(server)
        urls += [f"http://{host}:{server.server_address[1]}{path}" for path in feeds]
    with tempfile.TemporaryDirectory() as tmp:
        seq_dir, con_dir = Path(tmp, "seq"), Path(tmp, "con")
        seq_dir.mkdir(), con_dir.mkdir()
        pipeline.topic_rules  # warm imports outside the timings
        from aggregator.ingest import feed, http, remote  # noqa: F401

        seq = timed_run(make_config(seq_dir, urls, concurrency=1, per_host=1))
        default = make_config(con_dir, urls, concurrency=16, per_host=2)
        first = timed_run(default)
        second = timed_run(default)
    for server in servers:
        server.shutdown()
    print(f"{args.feeds} feeds on {HOSTS} hosts, {args.latency * 1000:.0f} ms latency, 10 items each")
    print(f"sequential (concurrency 1):         {seq[0]:6.2f} s  "
          f"{sum(r.new for r in seq[1])} new, {sum(1 for r in seq[1] if r.error)} errors")
    print(f"concurrent (16 total, 2 per host):  {first[0]:6.2f} s  "
          f"{sum(r.new for r in first[1])} new, {sum(1 for r in first[1] if r.error)} errors  "
          f"speed-up x{seq[0] / first[0]:.1f}")
    print(f"second concurrent run:              {second[0]:6.2f} s  statuses {second[3]}  "
          f"{sum(r.new + r.updated for r in second[1])} articles written, article rows "
          f"{second[4]} -> {second[5]}, {second[2]} row changes (source state rows only)")
    print(f"server saw: {counts}")


if __name__ == "__main__":
    main()
