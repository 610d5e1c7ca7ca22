"""The whole path as a user runs it: CLI -> local files -> SQLite -> Atom/RSS with related posts."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import feedparser
from click.testing import CliRunner
from lxml import etree

from aggregator.app.cli import cli
from helpers.command import rss_channel
from helpers.daemon import free_port, start_daemon, wait_for, write_config
from helpers.daemon import write_article as daemon_article
from helpers.feed_server import FeedServer, Reply
from helpers.files import write_article

ATOM = "{http://www.w3.org/2005/Atom}"


def invoke(project: Path, *args: str):
    result = CliRunner().invoke(cli, ["-c", str(project / "config.toml"), *args], catch_exceptions=False)
    return result


def stored(project: Path, *args: str) -> list[dict]:
    result = invoke(project, "articles", "--json", "--limit", "500", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_run_once_ingests_samples_and_publishes_every_topic(project: Path) -> None:
    result = invoke(project, "run", "--once")
    assert result.exit_code == 0, result.output
    assert "Local newsroom: 36 new, 0 updated, 0 unchanged, 0 skipped" in result.output
    feeds = project / "feeds"
    for slug in ("middle-east", "europe", "technology", "climate", "economy", "all"):
        atom = feedparser.parse((feeds / f"{slug}.atom").read_bytes())
        rss = feedparser.parse((feeds / f"{slug}.rss").read_bytes())
        assert not atom.bozo and not rss.bozo, slug
        assert atom.version == "atom10" and rss.version == "rss20"
        assert [e.id for e in atom.entries] == [e.id for e in rss.entries], slug
        assert [e.title for e in atom.entries] == [e.title for e in rss.entries], slug
        assert [e.link for e in atom.entries] == [e.link for e in rss.entries], slug
        assert len(atom.entries) > 0, slug


def test_articles_json_has_every_documented_field(project: Path) -> None:
    invoke(project, "run", "--once")
    articles = stored(project)
    assert len(articles) == 36
    fields = {"id", "title", "url", "site", "source", "categories", "topics", "published",
              "summary", "text", "site_related", "related"}
    for item in articles:
        assert fields <= item.keys()
        assert isinstance(item["categories"], list) and isinstance(item["topics"], list)
        assert all(set(r) == {"title", "author"} for r in item["site_related"])
        assert all({"id", "title", "url"} <= set(r) for r in item["related"])
        assert item["id"] not in {r["id"] for r in item["related"]}
        assert "Related Posts" not in item["text"] and "Google News" not in item["text"]
    iraq = next(a for a in articles if a["title"] == "Iraq and U.S. to resume talks on future of coalition mission")
    assert iraq["site"] == "Harbour Times"
    assert iraq["categories"] == ["Middle East", "USA", "World"]
    assert iraq["topics"] == ["middle-east"]
    assert iraq["summary"] == iraq["text"].split("\n\n")[0]
    assert iraq["site_related"] and 1 <= len(iraq["related"]) <= 3


def test_topic_rules_keywords_categories_and_exclude(project: Path) -> None:
    invoke(project, "run", "--once")
    by_title = {a["title"]: a for a in stored(project)}
    football = next(a for t, a in by_title.items() if "Asian Cup" in t)
    assert "iraq" in football["text"].lower() and "middle-east" not in football["topics"]
    assert [a["title"] for a in stored(project, "--topic", "middle-east")] == [
        a["title"] for a in stored(project) if "middle-east" in a["topics"]]


def test_ingesting_twice_keeps_one_copy_and_ad_hoc_ingest_matches_the_source(project: Path) -> None:
    invoke(project, "run", "--once")
    again = invoke(project, "ingest", str(project / "articles"))
    assert "0 new, 0 updated, 36 unchanged, 0 skipped" in again.output
    one = invoke(project, "ingest", str(project / "articles" / sorted(os.listdir(project / "articles"))[0]))
    assert "0 new, 0 updated, 1 unchanged" in one.output
    assert len(stored(project)) == 36


def test_bad_files_are_skipped_with_one_line_and_the_rest_still_land(project: Path, caplog) -> None:
    folder = project / "articles"
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "note.txt").write_text("just a note\n", encoding="utf-8")
    result = invoke(project, "run", "--once")
    assert result.exit_code == 0
    assert "36 new, 0 updated, 0 unchanged, 3 skipped" in result.output
    log = caplog.text
    for name, reason in (("binary.txt", "binary data"), ("empty.txt", "empty file"), ("note.txt", "not an article: no title")):
        lines = [line for line in log.splitlines() if name in line]
        assert len(lines) == 1 and reason in lines[0], (name, lines)


def test_related_posts_are_atom_links_and_html_lists(project: Path) -> None:
    invoke(project, "run", "--once")
    tree = etree.parse(str(project / "feeds" / "middle-east.atom"))
    entries = tree.findall(f"{ATOM}entry")
    assert entries
    for entry in entries:
        own = entry.find(f"{ATOM}link[@rel='alternate']").get("href")
        related = entry.findall(f"{ATOM}link[@rel='related']")
        assert 1 <= len(related) <= 3
        assert all(link.get("title") and link.get("href") != own for link in related)
        content = entry.find(f"{ATOM}content").text
        assert "Related posts" in content
        for link in related:
            assert link.get("href") in content
    rss = etree.parse(str(project / "feeds" / "middle-east.rss"))
    for item in rss.findall("channel/item"):
        encoded = item.find("{http://purl.org/rss/1.0/modules/content/}encoded").text
        assert "Related posts" in encoded


def test_site_related_titles_that_match_stored_articles_come_first(project: Path) -> None:
    folder = project / "articles"
    write_article(folder, "zz_a.txt", title="Gaza aid convoy reaches Rafah crossing",
                  categories="Middle East", paragraphs=("Aid trucks reached Gaza on Monday.",),
                  related=(("Tigris falls to historic low as drought grips Iraq", "Staff"),))
    invoke(project, "run", "--once")
    item = next(a for a in stored(project) if a["title"] == "Gaza aid convoy reaches Rafah crossing")
    assert item["related"][0]["title"] == "Tigris falls to historic low as drought grips Iraq"


def test_feeds_hold_at_most_max_items_newest_first(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("max_items = 50", "max_items = 4"))
    invoke(project, "run", "--once")
    parsed = feedparser.parse((project / "feeds" / "all.atom").read_bytes())
    assert len(parsed.entries) == 4
    dates = [e.published_parsed for e in parsed.entries]
    assert dates == sorted(dates, reverse=True)


def test_topics_command_lists_counts_and_paths(project: Path) -> None:
    invoke(project, "run", "--once")
    result = invoke(project, "topics")
    assert "middle-east" in result.output and str(project / "feeds" / "middle-east.atom") in result.output
    counts = {a["topics"][0] for a in stored(project) if a["topics"]}
    assert counts


def test_check_reports_errors_with_exit_78_and_no_traceback(project: Path) -> None:
    assert invoke(project, "check").exit_code == 0
    (project / "config.toml").write_text('[topics.world]\ntitle = "W"\nkeywords = 3\n')
    result = invoke(project, "check")
    assert result.exit_code == 78  # EX_CONFIG
    assert "topics.world.keywords: expected a list of strings, got 3" in result.output
    assert "Traceback" not in result.output


def test_python_dash_m_and_environment_variable(project: Path) -> None:
    env = {**os.environ, "AGGREGATOR_CONFIG": str(project / "config.toml")}
    done = subprocess.run([sys.executable, "-m", "aggregator", "run", "--once"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=project.parent)
    assert done.returncode == 0, done.stderr
    assert (project / "feeds" / "europe.rss").exists()
    assert (project / "data" / "test.db").exists()


def test_every_command_has_useful_help() -> None:
    for command in ("run", "ingest", "publish", "articles", "topics", "check"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and len(result.output.splitlines()) > 4, command


# --- one ingest path: run --once, ingest PATH and the daemon record a source's row alike ---

SOURCES = """
[[sources]]
name = "Desk"
path = "desk"
interval = "1h"

[[sources]]
name = "Capped desk"
path = "capped"
interval = "1h"

[[sources]]
name = "Missing desk"
path = "missing"
interval = "1h"

[[sources]]
name = "Wire"
url = "{wire}"
interval = "1h"

[[sources]]
name = "Dead wire"
url = "{dead}"
interval = "1h"
"""
ROW_FIELDS = ("kind", "location", "status", "last_error", "error_count", "warning", "http_status")


def wire_feed(count: int) -> bytes:
    items = "".join(f"<item><title>Wire story {n}</title><link>https://wire.example/{n}</link>"
                    f"<guid>https://wire.example/{n}</guid><description>Harbour council story {n}.</description></item>"
                    for n in range(count))
    return rss_channel("Wire", items)


def entry_project(project: Path, port: int, wire: str, dead: str) -> Path:
    """Three local sources (one with a skipped file, one read past the entry cap, one whose folder is
    missing) and two feeds (one fine, one answering 404)."""
    daemon_article(project / "desk", "story.txt", "Harbour council story", 1)
    (project / "desk" / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 100)  # skipped, one line
    (project / "capped").mkdir(parents=True)
    (project / "capped" / "saved.rss").write_bytes(wire_feed(8))  # past [ingest] max_entries: a warning
    write_config(project, port, SOURCES.format(wire=wire, dead=dead), storage="[ingest]\nmax_entries = 5")
    return project


def source_rows(project: Path) -> dict[str, dict]:
    """Each `sources` row as the three entry points must agree on it: times only as set or not, and the
    project's own folder (each run has one) as <project>."""
    with closing(sqlite3.connect(project / "data" / "test.db")) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(row) for row in db.execute("SELECT * FROM sources")]

    def same_everywhere(value: object) -> object:
        return value.replace(str(project), "<project>") if isinstance(value, str) else value

    return {row["name"]: {**{key: same_everywhere(row[key]) for key in ROW_FIELDS},
                          "last_fetch": bool(row["last_fetch"]), "last_success": bool(row["last_success"])}
            for row in rows}


def test_run_once_ingest_and_a_daemon_cycle_record_the_same_source_rows(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/wire.rss"] = Reply(200, wire_feed(3), {"Content-Type": "application/rss+xml"})
        wire, dead = server.url("/wire.rss"), server.url("/dead.rss")  # nothing at /dead.rss: 404
        port = free_port()
        once, ingested, daemon_project = (entry_project(tmp_path / name, port, wire, dead)
                                          for name in ("once", "ingest", "daemon"))

        assert invoke(once, "run", "--once").exit_code == 2  # a source failed; the others were stored

        for folder in ("desk", "capped"):  # every local source whose folder exists, as `ingest PATH`
            assert invoke(ingested, "ingest", str(ingested / folder)).exit_code == 0

        daemon = start_daemon(daemon_project, port)  # one cycle: every source runs once at start
        try:
            wait_for(lambda: all(s["last_fetch"] for s in daemon.health()["sources"]), what="one cycle",
                     daemon=daemon)
        finally:
            assert daemon.stop() == 0

    by_once = source_rows(once)
    assert by_once["Desk"] == {"kind": "local", "location": "<project>/desk", "status": "ok", "last_error": None,
                               "error_count": 0, "warning": None, "http_status": None, "last_fetch": True,
                               "last_success": True}
    assert "only the first 5 were read" in by_once["Capped desk"]["warning"]
    missing = by_once["Missing desk"]  # a folder that is not there fails, as a feed that is not there does
    assert (missing["status"], missing["error_count"], missing["last_success"]) == ("error", 1, False)
    assert missing["last_error"] == "<project>/missing: no such file or folder; fix the source's path"
    assert by_once["Wire"]["status"] == "ok" and by_once["Wire"]["http_status"] == 200
    dead_row = by_once["Dead wire"]
    assert (dead_row["status"], dead_row["error_count"], dead_row["http_status"]) == ("error", 1, 404)
    assert dead_row["last_error"].startswith("HTTP 404") and dead_row["last_fetch"] and not dead_row["last_success"]

    assert source_rows(daemon_project) == by_once
    assert source_rows(ingested) == {name: by_once[name] for name in ("Desk", "Capped desk")}
