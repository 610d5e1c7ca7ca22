"""The entry cap per feed is `[ingest] max_entries`; hitting it is one log line and shows in `sources`.

A feed (fetched or a saved file) or a JSON list longer than the cap has its
first entries read, as before, but never silently: the run logs one line
naming the source and how to read the rest, and a remote source's status
keeps the warning until a fetch reads the whole feed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from aggregator.config import load_config
from aggregator.app.health import health_report
from aggregator.storage.store import Store
from helpers.daemon import write_config
from helpers.feed_server import FeedServer, Reply

from helpers.command import aggregator
from .test_entry_boundaries import rss

CAPPED = ("the feed has 8 entries; only the first 5 were read "
          "(raise [ingest] max_entries to read more)")


def count(project: Path, source: str) -> int:
    with sqlite3.connect(project / "data" / "test.db") as db:
        return db.execute("SELECT count(*) FROM articles WHERE source = ?", [source]).fetchone()[0]


def test_a_remote_feed_past_the_cap_is_one_line_and_a_warning_in_its_status(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/long"] = Reply(200, rss("Long Wire", 8))
        sources = f'[[sources]]\nname = "Long Wire"\nurl = "{server.url("/long")}"\n'
        write_config(tmp_path, 8080, sources, storage="[ingest]\nmax_entries = 5")
        run = aggregator(tmp_path, "run", "--once")
        assert run.returncode == 0, run.stderr
        assert run.stderr.splitlines() == [f"WARNING Long Wire: {CAPPED}"]
        assert count(tmp_path, "Long Wire") == 5
        status = aggregator(tmp_path, "sources")
        assert f"warning: {CAPPED}" in [line.strip() for line in status.stdout.splitlines()]
        [row] = [json.loads(line) for line in aggregator(tmp_path, "sources", "--json").stdout.splitlines()]
        assert row["status"] == "ok" and row["warning"] == CAPPED
        with Store(tmp_path / "data" / "test.db") as store:  # what the daemon's /healthz reports
            [health] = health_report(load_config(tmp_path / "config.toml"), store)["sources"]
        assert health["warning"] == CAPPED

        write_config(tmp_path, 8080, sources, storage="[ingest]\nmax_entries = 10")  # the fix the line names
        again = aggregator(tmp_path, "run", "--once")
        assert again.returncode == 0 and again.stderr == "", again.stderr
        assert count(tmp_path, "Long Wire") == 8
        assert "warning:" not in aggregator(tmp_path, "sources").stdout


def test_a_saved_feed_and_a_json_list_past_the_cap_name_their_file(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "saved.rss").write_bytes(rss("Saved Wire", 8))
    items = [{"id": f"a{n}", "title": f"Export story {n}", "content_text": f"Export story number {n} in full."}
             for n in range(8)]
    (folder / "export.json").write_text(json.dumps(items), "utf-8")
    write_config(tmp_path, 8080, '[[sources]]\nname = "Desk"\npath = "articles"\n',
                 storage="[ingest]\nmax_entries = 5")
    run = aggregator(tmp_path, "run", "--once")
    assert run.returncode == 0, run.stderr
    assert sorted(run.stderr.splitlines()) == [
        f"WARNING Desk: {folder / 'export.json'}: the file has 8 articles; only the first 5 were read "
        "(raise [ingest] max_entries to read more)",
        f"WARNING Desk: {folder / 'saved.rss'}: {CAPPED}"]
    assert count(tmp_path, "Desk") == 10
    [row] = [json.loads(line) for line in aggregator(tmp_path, "sources", "--json").stdout.splitlines()]
    assert row["status"] == "ok" and row["last_fetch"]  # a folder's status is recorded by run --once too
    assert "export.json: the file has 8 articles" in row["warning"] and f"saved.rss: {CAPPED}" in row["warning"]

    (folder / "export.json").unlink()  # the folder is read again: what it holds now is within the cap
    (folder / "saved.rss").write_bytes(rss("Saved Wire", 4))
    assert aggregator(tmp_path, "run", "--once").returncode == 0
    [row] = [json.loads(line) for line in aggregator(tmp_path, "sources", "--json").stdout.splitlines()]
    assert row["status"] == "ok" and row["warning"] is None


def test_the_cap_is_checked_like_every_other_key(tmp_path: Path) -> None:
    write_config(tmp_path, 8080, '[[sources]]\nname = "Desk"\npath = "."\n', storage="[ingest]\nmax_entries = 0")
    check = aggregator(tmp_path, "check")
    assert check.returncode == 78
    assert f"error: {tmp_path / 'config.toml'}: ingest.max_entries: expected a number >= 1, got 0" \
        in check.stderr.splitlines()
