"""Reads never write: the commands that list, search and explain leave the database byte-identical.

A real database is built by a real `aggregator run --once` over the sample
articles; every read command then runs as a user would run it, and the
database file and its write-ahead log must hold exactly what they held.
(The -shm file is SQLite's shared-memory index of the log, rebuilt by any
reader; it holds no data.)
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from helpers.command import aggregator
from aggregator.storage.migrations import MIGRATIONS


def contents(database: Path) -> dict[str, str]:
    """sha256 of the database file and of its write-ahead log (a log not there and an empty one
    hold the same: nothing)."""
    wal = Path(f"{database}-wal")
    return {"db": hashlib.sha256(database.read_bytes()).hexdigest(),
            "wal": hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest()}


def stored(database: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_every_read_command_leaves_the_database_byte_identical(project: Path) -> None:
    done = aggregator(project, "-q", "run", "--once")
    assert done.returncode == 0, done.stderr
    database = project / "data" / "test.db"
    count = stored(database, "SELECT COUNT(*) FROM articles")[0][0]
    assert count > 20
    assert stored(database, "SELECT COUNT(*) FROM fts_pending") == [(0,)]  # the run indexed its text
    article_id, title = stored(database, "SELECT id, title FROM articles ORDER BY id LIMIT 1")[0]
    word = max(re.findall(r"\w+", title), key=len)
    before = contents(database)

    listed = aggregator(project, "articles")
    found = aggregator(project, "articles", "--search", word)
    as_json = aggregator(project, "articles", "--json")
    sources = aggregator(project, "sources")
    topics = aggregator(project, "topics")
    explained = aggregator(project, "explain", article_id)
    checked = aggregator(project, "check")

    for done in (listed, found, as_json, sources, topics, explained, checked):
        assert done.returncode == 0 and done.stderr == "", (done.args, done.stderr)
    assert contents(database) == before
    assert len(listed.stdout.splitlines()) == min(20, count)
    assert article_id in found.stdout.split()
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == min(20, count) and all(isinstance(row["related"], list) for row in rows)
    assert any(row["related"] for row in rows)
    assert "Local newsroom" in sources.stdout and f"{count} articles" in sources.stdout
    assert re.search(r"^middle-east\s+[1-9]\d* articles\s+Middle East$", topics.stdout, re.M)
    assert explained.stdout.startswith(f"{article_id}  {title}") and "  cluster " in explained.stdout
    assert checked.stdout.endswith(": ok: 1 sources, 5 topics\n")


def test_a_read_command_refuses_an_older_database_and_leaves_it_for_a_writing_command(project: Path) -> None:
    assert aggregator(project, "-q", "run", "--once").returncode == 0
    database = project / "data" / "test.db"
    conn = sqlite3.connect(database)
    conn.execute("ALTER TABLE articles DROP COLUMN profile")  # undo the latest migration (18)...
    conn.execute(f"PRAGMA user_version = {max(MIGRATIONS) - 1}")  # ...as an older aggregator left it
    conn.close()
    before = contents(database)

    refused = aggregator(project, "articles")

    assert refused.returncode == 3 and refused.stdout == ""
    assert refused.stderr == (f"error: {database}: the database was written by an older aggregator (schema "
                              f"version {max(MIGRATIONS) - 1} of {max(MIGRATIONS)}); run a command that writes, "
                              "such as `aggregator run --once`, to upgrade it (nothing stored is lost)\n")
    assert contents(database) == before
    assert aggregator(project, "-q", "run", "--once").returncode == 0
    listed = aggregator(project, "articles")
    assert listed.returncode == 0 and listed.stdout


def test_read_commands_before_the_first_run_show_nothing_stored_and_create_no_database(project: Path) -> None:
    for command in (("articles",), ("articles", "--search", "iraq"), ("sources",), ("topics",)):
        done = aggregator(project, *command)
        assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
    assert aggregator(project, "articles").stdout == ""
    assert re.search(r"^middle-east\s+0 articles\s+Middle East$", aggregator(project, "topics").stdout, re.M)
    assert not (project / "data").exists()
