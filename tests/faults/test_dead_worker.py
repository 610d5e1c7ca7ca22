"""A parse worker killed mid-feed: that feed fails in one line, every other source is stored and published.

The fault is real: `aggregator run --once` runs as a subprocess, and the
worker process holding the victim feed gets SIGKILL, as the kernel's
out-of-memory killer would send it.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from email.utils import formatdate
from pathlib import Path

from helpers.daemon import article_text, query, write_config
from helpers.feed_server import FeedServer, Reply

from helpers.command import aggregator, descendants, error_lines, rss_channel, start_aggregator, wait_until

VICTIM, STEADY = "Victim Wire", ("Steady One", "Steady Two")
ITEMS = 160  # about 90 kB per feed: over the pool's 64 kB threshold, under a socket buffer (see below)
DIED = ("error: Victim Wire: the feed parser's worker process died on this feed: killed by SIGKILL "
        "(out of memory?); a fresh worker parses it at the next fetch")


def rss(site: str, first: int, count: int = ITEMS) -> bytes:
    """A feed of `count` stories numbered from `first`; later numbers are newer."""
    slug = site.lower().replace(" ", "-")
    items = "".join(
        f"<item><title>{site} story {i} about the harbour</title><link>https://{slug}.example/{i}</link>"
        f"<guid>https://{slug}.example/{i}</guid><category>World</category>"
        f"<pubDate>{formatdate(1_760_000_000 + 60 * i, usegmt=True)}</pubDate>"
        f"<description>&lt;p&gt;{story(site, i)}&lt;/p&gt;</description></item>"
        for i in range(first, first + count))
    return rss_channel(site, items)


def story(site: str, number: int) -> str:
    """A paragraph of its own, so that deduplication keeps every story apart."""
    return article_text(f"{site} {number}", number).rstrip().rsplit("\n\n", 1)[1]


class Feeds:
    """The three feeds on a local server; the victim's answer waits while `gate` is closed."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.gate = threading.Event()
        self.gate.set()
        self.first = 0

    def path(self, site: str) -> str:
        return "/" + site.lower().replace(" ", "-") + ".rss"

    def publish_stories(self, first: int) -> None:
        for site in STEADY:
            self.server.routes[self.path(site)] = Reply(200, rss(site, first),
                                                        {"Content-Type": "application/rss+xml"})
        victim = Reply(200, rss(VICTIM, first), {"Content-Type": "application/rss+xml"})
        self.server.routes[self.path(VICTIM)] = lambda headers: self.gate.wait(60) and victim

    def sources(self) -> str:
        return "".join(f'[[sources]]\nname = "{site}"\nurl = "{self.server.url(self.path(site))}"\n\n'
                       for site in (VICTIM, *STEADY))


def stored(project: Path) -> dict[str, int]:
    rows = query(project / "data" / "test.db", "SELECT source, count(*) FROM articles GROUP BY source")
    return dict(rows)


def test_a_worker_killed_mid_parse_fails_only_its_feed_and_the_run_publishes(tmp_path: Path) -> None:
    assert (os.cpu_count() or 1) >= 2, "large feeds go to parse workers only on two cores or more"
    with FeedServer() as server:
        feeds = Feeds(server)
        feeds.publish_stories(first=0)
        write_config(tmp_path, 8080, feeds.sources())
        first = aggregator(tmp_path, "run", "--once")
        assert first.returncode == 0, first.stderr
        before = stored(tmp_path)
        assert before == {VICTIM: ITEMS, STEADY[0]: ITEMS, STEADY[1]: ITEMS}

        feeds.publish_stories(first=ITEMS // 2)  # 150 new stories in every feed
        feeds.gate.clear()
        run, out, err = start_aggregator(tmp_path, "--log-level", "debug", "run", "--once", name="killed")
        try:
            kill_the_victims_worker(run.pid, err, feeds.gate)
            assert run.wait(120) == 2  # some sources failed
        finally:
            if run.poll() is None:
                run.kill()
        stderr = err.read_text()
        assert error_lines(stderr) == [DIED]
        assert "Traceback" not in stderr
        assert re.search(r"^published: \d+ written", out.read_text(), re.M)
        after = stored(tmp_path)
        assert after[VICTIM] == ITEMS  # its stored stories kept, its new ones not half-written
        assert after[STEADY[0]] == after[STEADY[1]] == ITEMS + ITEMS // 2
        published = (tmp_path / "feeds" / "all.atom").read_text(encoding="utf-8")
        assert f"{STEADY[0]} story {ITEMS + ITEMS // 2 - 1} " in published  # the newest, from this run

        again = aggregator(tmp_path, "run", "--once")  # the next run: a fresh worker parses the feed
        assert again.returncode == 0, again.stderr
        assert stored(tmp_path)[VICTIM] == ITEMS + ITEMS // 2


def kill_the_victims_worker(run_pid: int, stderr: Path, gate: threading.Event) -> int:
    """SIGKILL the parse worker that has the victim feed; its pid.

    The steady feeds are stored first (their fetch lines are logged), then
    every worker is stopped (SIGSTOP) before the victim feed is let through,
    so the worker it is handed to cannot finish it before the kill: the
    run's own debug line names that worker. About 90 kB fit in the pipe to
    a stopped worker, so the handover completes and the death is the feed's.
    """
    for site in STEADY:
        wait_until(lambda: re.search(rf"^INFO {site}: .*new", stderr.read_text(), re.M), f"{site} stored")
    workers = wait_until(lambda: descendants(run_pid, 2), "the parse workers")
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        gate.set()
        handed = wait_until(lambda: re.search(rf"^DEBUG {VICTIM}: parse worker (\d+) has the feed",
                                              stderr.read_text(), re.M), "the victim feed's handover")
        victim = int(handed.group(1))
        assert victim in workers
        os.kill(victim, signal.SIGKILL)
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    return victim
