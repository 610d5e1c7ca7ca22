"""Storage faults end a command with one line naming the file, the cause and the fix, and status 3.

Each fault is real: a file size limit on the command's process (a full disk,
for it), permissions that bind even root, a page of the real database file
overwritten, a text file where the database should be, and the write lock
held by another connection. Each test checks the line, the status, that
everything stored before is still there, and that the command works again
once the fault is gone, by the fix the line gives where it gives one.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from helpers.daemon import integrity, write_article

from helpers.command import aggregator, start_aggregator
from helpers.storage_faults import (aggregator_with, articles_in, corrupt_page_of, file_size_limit, obey_permissions,
                              write_lock_held)

SAMPLES = 36  # articles in samples/articles, which the project fixture copies


def stored_once(project: Path) -> Path:
    """The project's sample articles stored and published; the database path."""
    done = aggregator(project, "run", "--once")
    assert done.returncode == 0, done.stderr
    database = project / "data" / "test.db"
    assert len(articles_in(database)) == SAMPLES
    return database


def new_articles(project: Path, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        write_article(project / "articles", f"new{n:03d}.txt", f"Harbour council story {n}", n)


def test_a_full_disk_is_one_line_and_the_next_run_stores_everything(project: Path) -> None:
    database = stored_once(project)
    before = articles_in(database)
    new_articles(project, 40)

    full = aggregator_with(project, "run", "--once", preexec=file_size_limit(64 * 1024))

    assert full.returncode == 3
    assert full.stderr == (f"error: {database}: cannot write: a file reached this process's file size limit "
                           "(ulimit -f: 64.0 KB); raise the limit or free some space (nothing stored is lost)\n")
    assert full.stdout == ""
    assert articles_in(database) == before and integrity(database) == "ok"

    again = aggregator(project, "run", "--once")
    assert again.returncode == 0, again.stderr
    assert len(articles_in(database)) == SAMPLES + 40
    assert "Harbour council story 39" in (project / "feeds" / "all.atom").read_text(encoding="utf-8")


def test_a_read_only_database_file_is_one_line_and_its_fix_works(project: Path) -> None:
    database = stored_once(project)
    before = articles_in(database)
    new_articles(project, 3)
    database.chmod(0o444)

    refused = aggregator_with(project, "run", "--once", preexec=obey_permissions)

    assert refused.returncode == 3
    assert refused.stderr == (f"error: {database}: the database file is read-only; give the user running "
                              f"aggregator write access to it and to its -wal and -shm files "
                              f"(chmod u+w {database}*)\n")
    # Reading needs no write access: listing what is stored still works.
    listed = aggregator_with(project, "articles", "--limit", "100", preexec=obey_permissions)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == SAMPLES
    assert articles_in(database) == before

    subprocess.run(f"chmod u+w {database}*", shell=True, check=True)  # the fix, as the line gives it
    again = aggregator_with(project, "run", "--once", preexec=obey_permissions)
    assert again.returncode == 0, again.stderr
    assert len(articles_in(database)) == SAMPLES + 3


def test_a_read_only_folder_is_one_line_and_the_next_run_recovers(project: Path) -> None:
    database = stored_once(project)
    before = articles_in(database)
    new_articles(project, 3)
    folder = database.parent
    folder.chmod(0o555)
    try:
        refused = aggregator_with(project, "run", "--once", preexec=obey_permissions)
    finally:
        folder.chmod(0o755)

    assert refused.returncode == 3
    assert refused.stderr == (f"error: {database}: its folder {folder} is read-only, and SQLite must create "
                              f"test.db-wal and test.db-shm there; give the user running aggregator write "
                              f"access to {folder}\n")
    assert articles_in(database) == before

    again = aggregator_with(project, "run", "--once", preexec=obey_permissions)
    assert again.returncode == 0, again.stderr
    assert len(articles_in(database)) == SAMPLES + 3


def test_a_corrupt_page_is_named_with_the_recovery_and_the_recovery_works(project: Path) -> None:
    database = stored_once(project)
    corrupt_page_of(database, "articles")
    damaged = database.read_bytes()

    for command in (("articles", "--limit", "100"), ("publish", "--force")):
        refused = aggregator(project, *command)
        assert refused.returncode == 3, (command, refused.stderr)
        assert refused.stderr == (
            f"error: {database}: the database is corrupt (database disk image is malformed); stop aggregator, "
            "then run `aggregator recover` (it saves every readable row into a new database and keeps the "
            f"damaged file as {database}.corrupt), or restore a backup\n")
    assert database.read_bytes() == damaged  # nothing was written over it

    recovered = aggregator(project, "recover")  # the fix the line gives

    assert recovered.returncode == 0, recovered.stderr
    saved = articles_in(database)
    assert 0 < len(saved) < SAMPLES  # the rows on the overwritten page are gone; every other one is saved
    assert re.fullmatch(rf"{re.escape(str(database))}: saved {len(saved)} articles \(\d+ rows in all\); "
                        rf"1 unreadable stretch skipped; the damaged file is kept as {re.escape(str(database))}"
                        r"\.corrupt; the next run reads again what was lost from your sources\n", recovered.stdout)
    assert integrity(database) == "ok"
    assert Path(f"{database}.corrupt").read_bytes() == damaged  # kept as it was
    again = aggregator(project, "run", "--once")  # the files whose articles were lost are read again
    assert again.returncode == 0, again.stderr
    assert len(articles_in(database)) == SAMPLES
    assert aggregator(project, "recover").stdout == f"{database}: no damage found (quick_check: ok); nothing to recover\n"


def test_a_file_that_is_not_a_database_is_named_and_left_alone(project: Path) -> None:
    database = stored_once(project)
    before = articles_in(database)
    shutil.move(database, project / "real.db")
    database.write_text("name,url\nHerald,https://example.com/\n", encoding="utf-8")

    refused = aggregator(project, "run", "--once")

    assert refused.returncode == 3
    assert refused.stderr == (f"error: {database}: not an SQLite database (file is not a database); set "
                              "[storage] database to the right file, or move this one away to start a new, "
                              "empty database\n")
    assert database.read_text(encoding="utf-8") == "name,url\nHerald,https://example.com/\n"

    not_recovered = aggregator(project, "recover")  # nothing to salvage in it: it is left where it is
    assert not_recovered.returncode == 3 and not_recovered.stderr == refused.stderr
    assert not Path(f"{database}.corrupt").exists()

    shutil.move(project / "real.db", database)
    again = aggregator(project, "run", "--once")
    assert again.returncode == 0, again.stderr
    assert articles_in(database) == before


def test_a_held_write_lock_is_named_with_its_holder_and_the_next_run_stores(project: Path) -> None:
    database = stored_once(project)
    before = articles_in(database)
    new_articles(project, 3)

    with write_lock_held(database):
        started = time.monotonic()
        locked = aggregator(project, "run", "--once")
        waited = time.monotonic() - started

    assert locked.returncode == 3
    holder = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode()  # this test's process
    first, = locked.stderr.splitlines()
    assert first.startswith(f"error: {database}: the database is locked: pid {os.getpid()} "
                            f"({Path(holder).name} ")
    assert first.endswith(") has held its write lock for over 5 s; try again when it is done "
                          "(nothing stored is lost)")
    assert 5 <= waited < 15
    assert articles_in(database) == before

    again = aggregator(project, "run", "--once")
    assert again.returncode == 0, again.stderr
    assert len(articles_in(database)) == SAMPLES + 3


def test_a_big_ingest_commits_in_batches_and_never_holds_the_lock_long(project: Path) -> None:
    """Another writer (the daemon, publishing) gets the write lock within about a second, and
    what is stored shows up batch by batch, not all at the end."""
    database = stored_once(project)
    big = project / "big"
    for n in range(2_500):
        write_article(big, f"b{n:05d}.txt", f"Railway market report {n}", n)
    seen: set[int] = set()
    waits: list[float] = []
    done = threading.Event()

    def read() -> None:
        reader = sqlite3.connect(database, timeout=10)
        try:
            while not done.is_set():
                seen.add(reader.execute("SELECT count(*) FROM articles").fetchone()[0])
                time.sleep(0.002)
        finally:
            reader.close()

    def write() -> None:
        writer = sqlite3.connect(database, timeout=10, isolation_level=None)
        try:
            while not done.is_set():
                started = time.monotonic()
                writer.execute("BEGIN IMMEDIATE")
                waits.append(time.monotonic() - started)
                writer.execute("COMMIT")
                time.sleep(0.002)
        finally:
            writer.close()

    watchers = [threading.Thread(target=read), threading.Thread(target=write)]
    for watcher in watchers:
        watcher.start()
    try:
        process, out, err = start_aggregator(project, "ingest", str(big), name="big")
        assert process.wait(120) == 0, err.read_text()
    finally:
        done.set()
        for watcher in watchers:
            watcher.join()

    assert out.read_text() == "2500 new, 0 updated, 0 unchanged, 0 skipped\n"
    assert len(articles_in(database)) == SAMPLES + 2_500
    steps = sorted(n - SAMPLES for n in seen if SAMPLES < n < SAMPLES + 2_500)
    assert steps and all(n % 500 == 0 for n in steps), steps  # committed 500 at a time, seen in between
    assert max(waits) < 2.0, max(waits)


def test_every_command_uses_the_documented_statuses(project: Path) -> None:
    stored_once(project)
    assert aggregator(project, "articles", "--no-such-option").returncode == 64  # EX_USAGE: the command line
    assert aggregator(project, "articles", "--topic", "no-such-topic").returncode == 64
    missing = aggregator(project, "ingest", str(project / "nowhere"))
    assert missing.returncode == 2 and missing.stderr == f"error: {project / 'nowhere'}: no such file or folder\n"
    (project / "data" / "test.db").write_bytes(b"\0" * 4096)
    for command in (("articles",), ("topics",), ("sources",), ("publish",), ("retag",), ("explain", "x"),
                    ("ingest", str(project / "articles")), ("run", "--once")):
        done = aggregator(project, *command)
        assert done.returncode == 3, (command, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and "not an SQLite database" in done.stderr, command
