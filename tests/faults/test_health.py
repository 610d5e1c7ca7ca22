"""/healthz tells the truth, and the daemon outlives storage faults and publishes once they clear.

Real `aggregator run` processes; real faults: the write lock held by this
test's own connection, a feeds/ folder made read-only (the daemon obeys file
permissions even as root, see helpers.storage_faults.obey_permissions), a file
size limit set on the running daemon (a full disk, for it), a file that is
not a database, and a feed that makes the feed parser raise.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

from helpers.daemon import (Daemon, free_port, integrity, query, served, start_daemon, wait_for, write_article,
                            write_config)

from helpers.command import aggregator
from helpers.storage_faults import limit_file_size, obey_permissions, write_lock_held

LOCAL = '[[sources]]\nname = "Local desk"\npath = "articles"\ninterval = "1s"\n'
BACKOFF = "publishing is retried with backoff (1 s doubling to 30 s) until it succeeds"


def health(daemon: Daemon) -> tuple[int, dict]:
    status, _, body = daemon.get("/healthz")
    return status, json.loads(body)


def health_is(daemon: Daemon, wanted: str, timeout: float = 20) -> dict:
    """The health report once its status is `wanted`, checking the HTTP status that goes with it."""
    status, report = wait_for(lambda: (h := health(daemon)) and h[1]["status"] == wanted and h,
                              timeout=timeout, what=f"health {wanted}", daemon=daemon)
    assert status == (503 if wanted == "failing" else 200), report
    return report


def titles_served(daemon: Daemon) -> bytes:
    return served(daemon, "/all.atom") or b""


def articles(project: Path, count: int, prefix: str = "Story", start: int = 0) -> None:
    for n in range(start, start + count):
        write_article(project / "articles", f"{prefix.lower().replace(' ', '-')}-{n}.txt", f"{prefix} {n}", n)


def error_lines(daemon: Daemon) -> list[str]:
    return [line for line in daemon.log().splitlines() if line.startswith("ERROR")]


def test_starting_then_failing_while_the_lock_is_held_then_ok(tmp_path: Path) -> None:
    port = free_port()
    articles(tmp_path, 3)
    write_config(tmp_path, port, LOCAL)
    database = tmp_path / "data" / "test.db"
    assert aggregator(tmp_path, "retag").returncode == 0  # the database exists, empty (reads create none)
    with write_lock_held(database):
        daemon = start_daemon(tmp_path, port)
        try:
            first = wait_for(lambda: health(daemon), what="the first answer", daemon=daemon)
            assert first[0] == 200 and first[1]["status"] == "starting"
            assert first[1]["reason"] == "the first fetch and publish are under way"

            failing = health_is(daemon, "failing")
        except BaseException:
            daemon.stop()
            raise
    try:
        line = failing["reason"]
        assert line.startswith(f"{database}: the database is locked: pid {os.getpid()} (")
        assert line.endswith(") has held its write lock for over 5 s; try again when it is done "
                             "(nothing stored is lost)")
        assert failing["storage"] == {"status": "failing", "error": line, "database": str(database),
                                      "failing_since": failing["storage"]["failing_since"]}
        assert failing["storage"]["failing_since"] and failing["publishing"]["status"] in ("pending", "failing")
        assert failing["sources"][0]["status"] == "pending" and failing["articles"] == 0

        released = time.monotonic()
        ok = health_is(daemon, "ok")
        wait_for(lambda: b"Story 2" in titles_served(daemon), what="the stored articles published", daemon=daemon)
        assert time.monotonic() - released < 15
        ok = health_is(daemon, "ok")
        assert ok["reason"] is None and ok["articles"] == 3 and ok["storage"]["status"] == "ok"
        assert ok["publishing"]["status"] == "ok" and ok["publishing"]["last_success"]
        assert [e for e in error_lines(daemon) if "database is locked" in e] == [
            f"ERROR {line}; the daemon goes on, retrying with backoff (1 s doubling to 30 s) and publishing once "
            "it can write (logged again only if the fault changes)"]
        assert sum("recovered: writing and publishing work again" in x for x in daemon.log().splitlines()) == 1
    finally:
        assert daemon.stop() == 0


class RaisingFeed(BaseHTTPRequestHandler):
    """A feed on which feedparser 6.0 raises KeyError('where'): a GML point outside a georss:where."""

    BODY = (b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:gml="http://www.opengis.net/gml"><title>Geo</title>'
            b'<entry><title>Somewhere</title><id>urn:geo:1</id><gml:pos>36.9 31.1</gml:pos></entry></feed>')

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/atom+xml")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args) -> None:
        pass


def test_a_source_whose_parser_raised_is_failed_and_health_is_degraded(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RaisingFeed)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    port = free_port()
    articles(tmp_path, 2)
    write_config(tmp_path, port, LOCAL + f'\n[[sources]]\nname = "Geo feed"\n'
                                         f'url = "http://127.0.0.1:{server.server_address[1]}/geo.atom"\n')
    daemon = start_daemon(tmp_path, port)
    try:
        report = health_is(daemon, "degraded")
        geo = {s["name"]: s for s in report["sources"]}["Geo feed"]
        assert geo["status"] == "error" and geo["error_count"] >= 1, geo
        assert "where" in geo["last_error"], geo
        assert report["failing"] == ["Geo feed"]
        assert report["reason"] == "1 of 2 sources failing: Geo feed"
        wait_for(lambda: b"Story 1" in titles_served(daemon), what="the other source published", daemon=daemon)
        # The feed files land before the publish cycle ends (it indexes for search, then records its success).
        published = wait_for(lambda: (h := health(daemon)[1]) and h["publishing"]["status"] == "ok" and h,
                             what="the publish recorded", daemon=daemon)
        assert published["status"] == "degraded" and published["failing"] == ["Geo feed"]
    finally:
        assert daemon.stop() == 0
        server.shutdown()
        server.server_close()


def test_a_read_only_feeds_folder_fails_and_what_was_stored_is_published_once_writable(tmp_path: Path) -> None:
    port = free_port()
    articles(tmp_path, 2)
    write_config(tmp_path, port, LOCAL)
    daemon = start_daemon(tmp_path, port, preexec_fn=obey_permissions)
    feeds, database = tmp_path / "feeds", tmp_path / "data" / "test.db"
    try:
        health_is(daemon, "ok")
        before = wait_for(lambda: (b := titles_served(daemon)) and b"Story 1" in b and b, what="published",
                          daemon=daemon)
        feeds.chmod(0o555)
        articles(tmp_path, 1, prefix="Late story")
        wait_for(lambda: query(database, "SELECT count(*) FROM articles") == [(3,)], what="stored", daemon=daemon)

        failing = health_is(daemon, "failing")
        line = (f"{feeds}: cannot write: permission denied; give the user running aggregator write access to it "
                "(the feeds of the last publish stay in place)")
        assert failing["reason"] == line and failing["publishing"]["error"] == line
        assert failing["storage"]["status"] == "ok" and failing["articles"] == 3
        assert titles_served(daemon) == before  # the last good feeds are still served

        feeds.chmod(0o755)
        mended = time.monotonic()
        wait_for(lambda: b"Late story 0" in titles_served(daemon), timeout=60, what="the stored article published",
                 daemon=daemon)
        assert time.monotonic() - mended < 60
        assert health_is(daemon, "ok")["publishing"]["error"] is None
        assert error_lines(daemon) == [f"ERROR {line}; {BACKOFF} (logged again only if the error changes)"]
    finally:
        feeds.chmod(0o755)
        assert daemon.stop() == 0


def test_a_full_disk_fails_health_and_the_daemon_stores_and_publishes_once_there_is_room(tmp_path: Path) -> None:
    port = free_port()
    articles(tmp_path, 30)
    write_config(tmp_path, port, LOCAL)
    daemon = start_daemon(tmp_path, port)
    database = tmp_path / "data" / "test.db"
    try:
        wait_for(lambda: b"Story 29" in titles_served(daemon), what="published", daemon=daemon)
        health_is(daemon, "ok")
        limit = 64 * 1024  # below the daemon's write-ahead log (it only grows), above its log file
        assert Path(f"{database}-wal").stat().st_size > limit > daemon.err.stat().st_size
        stored = query(database, "SELECT id FROM articles ORDER BY id")
        limit_file_size(daemon.pid, limit)
        articles(tmp_path, 5, prefix="After the disk filled")

        failing = health_is(daemon, "failing")
        assert failing["reason"] == (f"{database}: cannot write: a file reached this process's file size limit "
                                     "(ulimit -f: 64.0 KB); raise the limit or free some space "
                                     "(nothing stored is lost)")
        assert query(database, "SELECT id FROM articles ORDER BY id") == stored and integrity(database) == "ok"

        limit_file_size(daemon.pid, None)  # room again
        wait_for(lambda: b"After the disk filled 4" in titles_served(daemon), timeout=60,
                 what="the new articles stored and published", daemon=daemon)
        assert health_is(daemon, "ok")["articles"] == 35
    finally:
        limit_file_size(daemon.pid, None)
        assert daemon.stop() == 0


def test_a_daemon_started_on_a_file_that_is_not_a_database_keeps_serving_and_recovers(tmp_path: Path) -> None:
    port = free_port()
    articles(tmp_path, 3)
    write_config(tmp_path, port, LOCAL)
    assert aggregator(tmp_path, "run", "--once").returncode == 0
    database = tmp_path / "data" / "test.db"
    shutil.move(database, tmp_path / "real.db")
    database.write_bytes(b"SQLite format 2\0" + bytes(4080))
    daemon = start_daemon(tmp_path, port)
    try:
        failing = health_is(daemon, "failing")
        line = (f"{database}: not an SQLite database (file is not a database); set [storage] database to the right "
                "file, or move this one away to start a new, empty database")
        assert failing["reason"] == line and failing["articles"] is None
        assert [s["status"] for s in failing["sources"]] == ["unknown"]
        assert b"Story 2" in titles_served(daemon)  # the feeds of the last publish are still served
        assert daemon.process.poll() is None

        shutil.move(tmp_path / "real.db", database)
        report = health_is(daemon, "ok", timeout=60)
        assert report["articles"] == 3
        assert len([e for e in error_lines(daemon) if "not an SQLite database" in e]) == 1
    finally:
        assert daemon.stop() == 0
