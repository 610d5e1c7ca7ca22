"""SIGKILL the daemon at random moments while it ingests and publishes; nothing may be half-done.

After every kill: SQLite's integrity check and FTS5's own check pass, each
round's batch of new files is either wholly stored or not at all, no topic
row points at a missing article, and every feed file parses completely.
Then a normal start carries on and stores everything.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from lxml import etree

from helpers.daemon import (PYTHON, free_port, integrity, query, start_daemon, wait_for, write_article,
                            write_config)

FORKER = Path(__file__).resolve().parent / "helpers" / "daemon_forker.py"


class Forker:
    """Talks to daemon_forker.py: real daemons started by fork from one pre-imported interpreter."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([PYTHON, str(FORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)

    def _ask(self, *fields: str) -> str:
        self.process.stdin.write("\t".join(fields) + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def start(self, config: Path, out: Path, err: Path) -> int:
        return int(self._ask("start", str(config), str(out), str(err)))

    def wait(self, pid: int) -> int:
        return int(self._ask("wait", str(pid)))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)

KILLS = 22
BASE_FILES = 40
PER_ROUND = 8
SOURCES = """
[[sources]]
name = "Wire"
path = "articles"
interval = "1s"
"""


def check_database(database: Path, rounds: int) -> None:
    assert integrity(database) == "ok"
    if query(database, "PRAGMA user_version") == [(0,)]:
        return  # killed before the first migration committed: an empty database, which is fine
    query(database, "INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")  # raises if corrupt
    assert query(database, "SELECT COUNT(*) FROM article_topics WHERE article_id NOT IN (SELECT id FROM articles)") \
        == [(0,)]
    assert query(database, "SELECT COUNT(*) FROM articles WHERE title IS NULL OR content_hash IS NULL "
                           "OR text IS NULL") == [(0,)]
    for r in range(rounds):
        stored = query(database, "SELECT COUNT(*) FROM articles WHERE title LIKE ?", (f"Round {r} item %",))[0][0]
        assert stored in (0, PER_ROUND), f"round {r}: {stored} of {PER_ROUND} articles stored: a half batch"


def check_feeds(feeds: Path) -> int:
    checked = 0
    for path in feeds.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        data = path.read_bytes()
        if path.suffix in (".atom", ".rss", ".opml"):
            etree.fromstring(data)  # a truncated file raises
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), f"{path} is truncated"
        checked += 1
    return checked


def test_sigkill_at_random_moments_never_leaves_half_a_batch(tmp_path: Path):
    rng = random.Random(8)
    port = free_port()
    articles = tmp_path / "articles"
    for n in range(BASE_FILES):
        write_article(articles, f"base{n:03}.txt", f"Base story {n}", n)
    write_config(tmp_path, port, SOURCES)
    database, feeds = tmp_path / "data" / "test.db", tmp_path / "feeds"
    after_startup = 0
    forker = Forker()
    try:
        for r in range(KILLS):
            for k in range(PER_ROUND):
                write_article(articles, f"round{r:02}_{k}.txt", f"Round {r} item {k}", r * 10 + k)
            for n in rng.sample(range(BASE_FILES), 3):
                write_article(articles, f"base{n:03}.txt", f"Base story {n} (edit {r})", n)
            out, err = tmp_path / f"kill{r}.out", tmp_path / f"kill{r}.err"
            pid = forker.start(tmp_path / "config.toml", out, err)
            if r % 3 == 0:  # anywhere from start-up (migrations, first batch) on
                time.sleep(rng.uniform(0.0, 1.0))
            else:  # while it ingests and publishes
                wait_for(lambda: out.exists() and "aggregator:" in out.read_text(), what="start-up", timeout=10)
                time.sleep(rng.uniform(0.2, 2.5))
            os.kill(pid, signal.SIGKILL)
            status = forker.wait(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, err.read_text()
            log = err.read_text()
            after_startup += "fetch Wire" in log or "published:" in log
            if database.exists():
                check_database(database, r + 1)
            if feeds.exists():
                check_feeds(feeds)
    finally:
        forker.close()
    assert after_startup >= KILLS // 3, "many kills should land after a batch was written, while it works"

    daemon = start_daemon(tmp_path, port, name="final")
    try:
        expected = BASE_FILES + KILLS * PER_ROUND
        wait_for(lambda: daemon.health()["articles"] == expected, what="every article after the kills",
                 daemon=daemon, timeout=30)
        wait_for(lambda: "published:" in daemon.log(), what="a publish", daemon=daemon)
    finally:
        assert daemon.stop() == 0
    check_database(database, KILLS)
    assert check_feeds(feeds) > 10
    edited = query(database, "SELECT COUNT(*) FROM articles WHERE title LIKE 'Base story % (edit %)'")[0][0]
    assert edited > 0
