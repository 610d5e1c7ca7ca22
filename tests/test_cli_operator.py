"""What operators expect from the command line: init, sources add/remove, --source, --listen,
FTS5 search, log formats and exit statuses, through the real CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.app.cli import cli
from aggregator.config import load_config

AGGREGATOR = [sys.executable, "-m", "aggregator"]


def invoke(project: Path, *args: str):
    return CliRunner().invoke(cli, ["-c", str(project / "config.toml"), *args])


def test_init_writes_a_config_that_check_accepts_and_that_runs(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    made = CliRunner().invoke(cli, ["init", str(folder)])
    assert made.exit_code == 0, made.output
    assert (folder / "config.toml").read_text().startswith("# aggregator configuration")
    assert (folder / "articles").is_dir()
    assert invoke(folder, "check").exit_code == 0
    (folder / "articles" / "a.md").write_text("---\ntitle: Summit opens\n---\n\nThe summit opened in Geneva.\n")
    ran = invoke(folder, "run", "--once")
    assert ran.exit_code == 0, ran.output
    assert "Inbox: 1 new" in ran.output and (folder / "feeds" / "world.atom").exists()
    again = CliRunner().invoke(cli, ["init", str(folder)])
    assert again.exit_code == 64 and "already exists" in again.output


CONFIG = """\
# Kept comment
[storage]
database = "data.db"

[fetch]
allow_private_network = true
timeout = "2s"

[[sources]]
name = "Inbox"
path = "articles"   # local

[topics.world]
title = "World"
keywords = ["summit"]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "a.md").write_text("---\ntitle: Summit opens\n---\n\nThe summit opened.\n")
    return tmp_path


def test_sources_add_and_remove_keep_comments_and_refuse_bad_edits(folder: Path) -> None:
    added = invoke(folder, "sources", "add", "https://wire.example/feed.xml", "--topics", "world")
    assert added.exit_code == 0, added.output
    text = (folder / "config.toml").read_text()
    assert text.startswith(CONFIG.split("[topics.world]")[0].rstrip("\n")) and "# local" in text
    source = load_config(folder / "config.toml").sources[1]
    assert (source.name, source.url, source.topics) == ("wire.example", "https://wire.example/feed.xml", ("world",))
    for args, message in [(("https://WIRE.example/feed.xml/",), "already configured as 'wire.example'"),
                          (("https://b.example/rss", "--topics", "nope"), "would make the config invalid"),
                          (("https://c.example/rss", "--name", "Inbox"), "already named 'Inbox'")]:
        refused = invoke(folder, "sources", "add", *args)
        assert refused.exit_code == 78 and message in refused.output, refused.output
    assert (folder / "config.toml").read_text() == text  # nothing changed by a refused edit
    missing = invoke(folder, "sources", "remove", "wire.exampel")
    assert missing.exit_code == 78 and "did you mean 'wire.example'" in missing.output
    assert invoke(folder, "sources", "remove", "wire.example").exit_code == 0
    assert [s.name for s in load_config(folder / "config.toml").sources] == ["Inbox"]
    assert "# Kept comment" in (folder / "config.toml").read_text()


def test_run_once_source_refreshes_only_that_source(folder: Path) -> None:
    (folder / "other").mkdir()
    (folder / "other" / "b.md").write_text("---\ntitle: Other summit\n---\n\nAnother summit.\n")
    with (folder / "config.toml").open("a") as config:
        config.write('\n[[sources]]\nname = "Other"\npath = "other"\n')
    ran = invoke(folder, "run", "--once", "--source", "Other")
    assert ran.exit_code == 0, ran.output
    assert "Other: 1 new" in ran.output and "Inbox" not in ran.output
    rows = {json.loads(line)["name"]: json.loads(line) for line in invoke(folder, "sources", "--json").output.splitlines()}
    assert rows["Other"]["last_fetch"] and rows["Inbox"]["last_fetch"] is None
    unknown = invoke(folder, "run", "--once", "--source", "Nope")
    assert unknown.exit_code == 64 and "no source named 'Nope'" in unknown.output
    assert invoke(folder, "run", "--source", "Other").exit_code == 64  # without --once


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_listen_overrides_the_config(folder: Path) -> None:
    assert invoke(folder, "run", "--once").exit_code == 0
    port = _free_port()
    server = subprocess.Popen([*AGGREGATOR, "-c", str(folder / "config.toml"), "serve", "--listen",
                               f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/world.atom", timeout=2) as response:
                    assert response.status == 200 and b"Summit opens" in response.read()
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(10)
    bad = invoke(folder, "serve", "--listen", "nowhere")
    assert bad.exit_code == 64 and "HOST:PORT" in bad.output


SEARCH_ARTICLES = {
    "a.md": ("Gaza ceasefire talks resume", "Negotiators met in Cairo about the Gaza ceasefire."),
    "b.md": ("Syria aid convoy crosses border", "A convoy reached northern Syria with food."),
    "c.md": ("Football club wins in Gaza derby", "The football match in Gaza drew a large crowd."),
    "d.md": ("Semiconductor exports rise", "Chipmakers reported record semiconductor exports."),
}


@pytest.fixture
def searchable(folder: Path) -> Path:
    (folder / "articles" / "a.md").unlink()
    for name, (title, body) in SEARCH_ARTICLES.items():
        (folder / "articles" / name).write_text(f"---\ntitle: {title}\n---\n\n{body}\n")
    assert invoke(folder, "run", "--once").exit_code == 0
    return folder


def titles(folder: Path, *args: str) -> set[str]:
    result = invoke(folder, "articles", "--json", *args)
    assert result.exit_code == 0, result.output
    return {json.loads(line)["title"] for line in result.output.splitlines()}


def test_search_takes_fts5_syntax(searchable: Path) -> None:
    gaza_talks, syria, derby, chips = (t for t, _ in SEARCH_ARTICLES.values())
    assert titles(searchable, "--search", "gaza OR syria") == {gaza_talks, syria, derby}
    assert titles(searchable, "--search", "gaza NOT football") == {gaza_talks}
    assert titles(searchable, "--search", "gaza -football") == {gaza_talks}
    assert titles(searchable, "--search", '"football match"') == {derby}
    assert titles(searchable, "--search", "semicond*") == {chips}
    assert titles(searchable, "--search", "title:convoy") == {syria}
    assert titles(searchable, "--search", "title:food") == set()  # only in the text
    assert titles(searchable, "--search", "U.S. gaza") == set()  # plain words, punctuation and all, no error


def test_search_sorts_by_relevance_and_rejects_malformed_queries(searchable: Path) -> None:
    ranked = invoke(searchable, "articles", "--json", "--search", "gaza", "--sort", "relevance").output
    first = json.loads(ranked.splitlines()[0])["title"]
    assert first in {t for t, _ in SEARCH_ARTICLES.values() if "Gaza" in t}
    for query in ('"unclosed', "gaza AND", "colour:red", "-football"):
        bad = invoke(searchable, "articles", "--search", query)
        assert bad.exit_code == 64, (query, bad.output)
        assert "error: search" in bad.output and "syntax:" in bad.output, bad.output
    assert invoke(searchable, "articles", "--sort", "relevance").exit_code == 64  # needs --search


def _run_logging(folder: Path, *args: str, env: dict | None = None) -> list[str]:
    with (folder / "config.toml").open("a") as config:
        config.write('\n[[sources]]\nname = "Dead"\nurl = "http://127.0.0.1:9/feed.xml"\n')
    stderr = folder / "stderr.log"
    with stderr.open("w") as err:
        extra = {}
        if env is not None:
            status = os.fstat(err.fileno())
            extra = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
        done = subprocess.run([*AGGREGATOR, "-c", str(folder / "config.toml"), *args, "run", "--once"],
                              stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **extra}, timeout=60)
    assert done.returncode == 2
    return stderr.read_text().splitlines()


def test_log_format_json_is_one_object_per_line(folder: Path) -> None:
    lines = _run_logging(folder, "--log-format", "json", "--log-level", "info")
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert logged and {"time", "level", "logger", "message"} <= logged[0].keys()
    assert any(entry["message"].startswith("Dead:") for entry in logged)


def test_journald_gets_priorities_when_stderr_is_its_stream(folder: Path) -> None:
    lines = _run_logging(folder, "--log-level", "info", env={})
    logged = [line for line in lines if not line.startswith("error:")]
    assert logged and all(line[:3] in ("<6>", "<4>", "<3>", "<7>") for line in logged), lines


def test_sqlite_utils_searches_and_browses_the_database(searchable: Path) -> None:
    """The full-text index is configured as sqlite-utils expects, and views make the file browsable."""
    database = str(load_config(searchable / "config.toml").storage.database)
    sqlite_utils = [sys.executable, "-m", "sqlite_utils"]
    found = subprocess.run([*sqlite_utils, "search", database, "articles", "convoy", "-c", "title"],
                           capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == [{"title": "Syria aid convoy crosses border"}]
    views = subprocess.run([*sqlite_utils, "views", database], capture_output=True, text=True, check=True)
    assert {v["view"] for v in json.loads(views.stdout)} == {"articles_view", "source_status"}
    rows = json.loads(subprocess.run([*sqlite_utils, database, "select name, status, articles from source_status"],
                                     capture_output=True, text=True, check=True).stdout)
    assert rows == [{"name": "Inbox", "status": "ok", "articles": 4}]
    listed = json.loads(subprocess.run([*sqlite_utils, database, "select title, topics, cluster, is_copy from "
                                        "articles_view where title like 'Gaza%'"], capture_output=True,
                                       text=True, check=True).stdout)
    assert listed[0]["title"] == "Gaza ceasefire talks resume" and listed[0]["is_copy"] == 0


def test_verbose_flags_raise_the_log_level_before_or_after_the_command(folder: Path) -> None:
    def logged(*args: str) -> str:
        done = subprocess.run([*AGGREGATOR, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stderr

    config = str(folder / "config.toml")
    assert "INFO " not in logged("-c", config, "run", "--once")
    assert "INFO published" in logged("-c", config, "run", "--once", "-v")
    assert "DEBUG " in logged("-vv", "-c", config, "run", "--once")
