"""OPML import into config.toml (comments kept) and export; the `aggregator sources` listing."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from aggregator.app.cli import cli
from aggregator.config import load_config
from aggregator.app.opml import read_opml
from helpers.feed_server import FeedServer, Reply, feed_bytes

CONFIG = """\
# My sources. Keep this comment!
[storage]
database = "data/test.db"   # next to this file

[fetch]
allow_private_network = true

[[sources]]
name = "Harbour Times"
url = "https://harbour.example/feed.xml"  # the paper
"""

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Reader export</title></head><body>
  <outline text="News">
    <outline type="rss" text="Harbour Times" xmlUrl="HTTPS://harbour.example/feed.xml/"/>
    <outline type="rss" text="Daily Ledger" title="Daily Ledger" xmlUrl="https://ledger.example/rss"/>
    <outline type="rss" text="Harbour Times" xmlUrl="https://harbour.example/other.xml"/>
  </outline>
  <outline type="rss" text="Old gopher" xmlUrl="gopher://old.example/feed"/>
</body></opml>
"""


def invoke(folder: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(folder / "config.toml"), *args], catch_exceptions=False)


def test_import_adds_new_feeds_and_keeps_comments(tmp_path):
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "feeds.opml").write_text(OPML, encoding="utf-8")
    result = invoke(tmp_path, "sources", "import", str(tmp_path / "feeds.opml"))
    assert result.exit_code == 0, result.output
    assert "added 2 sources, 1 already present" in result.output
    assert "skipped gopher://old.example/feed: only http:// and https://" in result.output
    text = (tmp_path / "config.toml").read_text(encoding="utf-8")
    assert text.startswith(CONFIG)  # every original byte, comments included, still there
    sources = tomllib.loads(text)["sources"]
    assert [(s["name"], s["url"]) for s in sources] == [
        ("Harbour Times", "https://harbour.example/feed.xml"),
        ("Daily Ledger", "https://ledger.example/rss"),
        ("Harbour Times (2)", "https://harbour.example/other.xml"),
    ]
    again = invoke(tmp_path, "sources", "import", str(tmp_path / "feeds.opml"))
    assert "added 0 sources, 3 already present" in again.output
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == text


def test_import_refuses_entities_and_junk_without_touching_the_config(tmp_path):
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><opml><body/></opml>'
    (tmp_path / "bomb.opml").write_text(bomb, encoding="utf-8")
    (tmp_path / "junk.opml").write_text("<html><body>hi", encoding="utf-8")
    for name, message in [("bomb.opml", "refuse for safety"), ("junk.opml", "not valid XML")]:
        result = invoke(tmp_path, "sources", "import", str(tmp_path / name))
        assert result.exit_code == 78 and message in result.output
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == CONFIG


def test_export_round_trips(tmp_path):
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    result = invoke(tmp_path, "sources", "export")
    assert result.exit_code == 0
    (tmp_path / "out.opml").write_text(result.output, encoding="utf-8")
    feeds = read_opml(tmp_path / "out.opml")
    assert [(f.title, f.url) for f in feeds] == [("Harbour Times", "https://harbour.example/feed.xml")]


def test_sources_listing_shows_status_errors_and_counts(tmp_path):
    with FeedServer() as server:
        server.routes["/ok.xml"] = Reply(200, feed_bytes("rss20.xml"), {"Content-Type": "application/rss+xml"})
        server.routes["/gone.xml"] = Reply(410)
        config = CONFIG.replace("https://harbour.example/feed.xml", server.url("/ok.xml"))
        config += f'\n[[sources]]\nname = "Gone"\nurl = "{server.url("/gone.xml")}"\n'
        (tmp_path / "config.toml").write_text(config, encoding="utf-8")
        run = invoke(tmp_path, "run", "--once")
    assert run.exit_code == 2  # one source failed
    rows = [json.loads(line) for line in invoke(tmp_path, "sources", "--json").output.splitlines()]
    assert [(r["name"], r["status"], r["articles"], r["http_status"]) for r in rows] == [
        ("Harbour Times", "ok", 2, 200), ("Gone", "gone", 0, 410)]
    assert rows[1]["last_error"].startswith("HTTP 410 Gone") and rows[0]["next_due"]
    table = invoke(tmp_path, "sources").output
    assert "Harbour Times" in table and "gone" in table and "error: HTTP 410 Gone" in table
    assert load_config(tmp_path / "config.toml").sources[1].name == "Gone"


FOLDERS = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Reader export</title></head><body>
  <outline text="Middle East" title="Middle East">
    <outline type="rss" text="Levant Wire" xmlUrl="https://levant.example/rss" htmlUrl="https://levant.example/"/>
    <outline type="rss" text="Gulf Daily" xmlUrl="https://gulf.example/feed"/>
  </outline>
  <outline text="Tech &amp; Science">
    <outline type="rss" text="Gulf Daily" xmlUrl="https://gulf.example/feed"/>
    <outline type="rss" text="Chip Times" xmlUrl="https://chips.example/atom"/>
  </outline>
  <outline type="rss" text="Loose feed" xmlUrl="https://loose.example/rss"/>
</body></opml>
"""

TOPIC_CONFIG = CONFIG + """
[topics.middle-east]
title = "Middle East"
keywords = ["gaza"]  # rules stay as they are
"""


def test_folders_become_topics_and_come_back_as_folders(tmp_path):
    (tmp_path / "config.toml").write_text(TOPIC_CONFIG, encoding="utf-8")
    (tmp_path / "feeds.opml").write_text(FOLDERS, encoding="utf-8")
    result = invoke(tmp_path, "sources", "import", str(tmp_path / "feeds.opml"))
    assert result.exit_code == 0, result.output
    assert "added 4 sources, 0 already present" in result.output
    text = (tmp_path / "config.toml").read_text(encoding="utf-8")
    assert "# rules stay as they are" in text and text.startswith(CONFIG)
    config = load_config(tmp_path / "config.toml")
    topics = {s.name: s.topics for s in config.sources}
    assert topics == {"Harbour Times": (), "Levant Wire": ("middle-east",), "Gulf Daily": ("middle-east", "tech-science"),
                      "Chip Times": ("tech-science",), "Loose feed": ()}
    assert {t.slug: t.title for t in config.topics} == {"middle-east": "Middle East", "tech-science": "Tech & Science"}
    assert config.topics[0].keywords == ("gaza",)  # the existing topic was reused, not replaced
    assert invoke(tmp_path, "check").exit_code == 0
    assert {s.name: s.home_page for s in config.sources}["Levant Wire"] == "https://levant.example/"

    exported = invoke(tmp_path, "sources", "export").output
    (tmp_path / "out.opml").write_text(exported, encoding="utf-8")
    again = sorted((f.category, f.title, f.url) for f in read_opml(tmp_path / "out.opml"))
    assert again == sorted([("Middle East", "Levant Wire", "https://levant.example/rss"),
                            ("Middle East", "Gulf Daily", "https://gulf.example/feed"),
                            ("Tech & Science", "Gulf Daily", "https://gulf.example/feed"),
                            ("Tech & Science", "Chip Times", "https://chips.example/atom"),
                            ("", "Harbour Times", "https://harbour.example/feed.xml"),
                            ("", "Loose feed", "https://loose.example/rss")])

    # The export imported into an empty config gives the same sources and topics.
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "config.toml").write_text('[storage]\ndatabase = "x.db"\n', encoding="utf-8")
    assert invoke(tmp_path / "fresh", "sources", "import", str(tmp_path / "out.opml")).exit_code == 0
    fresh = load_config(tmp_path / "fresh" / "config.toml")
    assert {s.name: s.topics for s in fresh.sources} == topics
    assert {s.name: s.home_page for s in fresh.sources}["Levant Wire"] == "https://levant.example/"
    assert 'htmlUrl="https://levant.example/"' in exported
