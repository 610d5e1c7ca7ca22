"""Daemon memory: RSS after ingesting N articles, then over an hour-equivalent of scheduled cycles.

    .venv/bin/python bench/daemon_memory.py [--articles 10000] [--cycles 120]

Time is compressed 30x: the small sources run every 1 s (standing for 30 s),
the bulk source every 30 s (standing for 15 min), so `--cycles 120` seconds
of wall time is one hour of a daemon with those intervals. Every 5 s a new
article lands in one of the desks and a new item in the remote feed, so
ingest, publish and pruning all keep running. RSS is read from /proc.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from daemon_helpers import FeedSite, free_port, start_daemon, wait_for, write_article, write_config  # noqa: E402

DESKS = 10


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def build(project: Path, articles: int, site: FeedSite, port: int) -> None:
    bulk = project / "bulk"
    for n in range(articles):
        write_article(bulk / f"{n // 1000:02}", f"story{n:05}.txt", f"Bulk story number {n}", n)
    sources = '[[sources]]\nname = "Bulk"\npath = "bulk"\ninterval = "30s"\n'
    for d in range(DESKS):
        for k in range(5):
            write_article(project / f"desk{d}", f"s{k}.txt", f"Desk {d} story {k}", d * 10 + k)
        sources += f'\n[[sources]]\nname = "Desk {d}"\npath = "desk{d}"\ninterval = "1s"\n'
    sources += f'\n[[sources]]\nname = "Remote"\nurl = "{site.url}"\ninterval = "1s"\n'
    write_config(project, port, sources, storage="max_articles_per_source = 20000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=120, help="seconds of compressed time (120 = 1 hour)")
    args = parser.parse_args()
    site = FeedSite()
    site.items = [(f"r{i}", f"Remote item {i}") for i in range(20)]
    with tempfile.TemporaryDirectory() as folder:
        project, port = Path(folder), free_port()
        build(project, args.articles, site, port)
        expected = args.articles + DESKS * 5 + 20
        daemon = start_daemon(project, port)
        started = time.monotonic()
        try:
            wait_for(lambda: daemon.health()["articles"] >= expected, timeout=3600, every=1.0,
                     what=f"{expected} articles", daemon=daemon)
            ingest_seconds = time.monotonic() - started
            time.sleep(3)  # let the publish after the big batch finish
            after_ingest = rss_mib(daemon.pid)
            print(f"ingested {expected} articles in {ingest_seconds:.0f}s; RSS {after_ingest:.1f} MiB", flush=True)
            samples = []
            begin = time.monotonic()
            tick = 0
            while time.monotonic() - begin < args.cycles:
                time.sleep(5)
                tick += 1
                write_article(project / f"desk{tick % DESKS}", f"new{tick}.txt", f"Fresh desk story {tick}", tick)
                site.items.append((f"n{tick}", f"Remote fresh item {tick}"))
                samples.append((round(time.monotonic() - begin), rss_mib(daemon.pid)))
                print(f"  t={samples[-1][0]:4d}s RSS {samples[-1][1]:.1f} MiB", flush=True)
            fetches = daemon.log().count("fetch ")
            publishes = daemon.health()["publishes"]
        finally:
            daemon.stop()
    site.close()
    result = {
        "articles": expected, "ingest_seconds": round(ingest_seconds), "rss_after_ingest_mib": round(after_ingest, 1),
        "rss_after_hour_equivalent_mib": round(samples[-1][1], 1), "rss_max_mib": round(max(s for _, s in samples), 1),
        "fetches": fetches, "publishes": publishes, "samples": samples,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
