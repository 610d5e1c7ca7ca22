"""An empty config, or one without sources, is an error for `check` and is refused on SIGHUP.

The faults are real: an emptied config.toml (as a botched edit or a full
disk leaves it) and one with topics but no [[sources]], checked by the real
`aggregator check` and sent to a real daemon with a real SIGHUP.
"""

from __future__ import annotations

import signal
from pathlib import Path

from helpers.daemon import free_port, query, served, start_daemon, wait_for, write_article, write_config

from helpers.command import aggregator

FIX = "add a [[sources]] entry with a name and a path (a file or folder) or a url (a feed)"
LOCAL = '[[sources]]\nname = "Local desk"\npath = "articles"\ninterval = "1s"\n'
NO_SOURCES = '[site]\ntitle = "Digest"\n\n[topics.world]\ncategories = ["World"]\n'


def test_check_fails_on_an_empty_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    for empty in (b"", b"\n  \n", b"# sources come later\n"):
        config.write_bytes(empty)
        checked = aggregator(tmp_path, "check")
        assert checked.returncode == 78
        assert checked.stderr == f"error: {config}: the file holds no settings; {FIX}\n"
        assert checked.stdout == ""


def test_check_fails_on_a_config_without_sources_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    for text in (NO_SOURCES, NO_SOURCES + "sources = []\n"):
        config.write_text(text, encoding="utf-8")
        checked = aggregator(tmp_path, "check")
        assert checked.returncode == 78
        assert checked.stderr == f"error: {config}: sources: no sources configured; {FIX}\n"


def test_check_lists_the_missing_sources_with_every_other_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[publish]\nmax_item = 3\n", encoding="utf-8")
    checked = aggregator(tmp_path, "check")
    assert checked.returncode == 78
    assert checked.stderr.splitlines() == [
        f"error: {config}: publish.max_item: unknown key; did you mean 'max_items'?",
        f"error: {config}: sources: no sources configured; {FIX}",
    ]


def test_a_config_without_sources_still_serves_commands_that_start_from_nothing(tmp_path: Path) -> None:
    """`sources import` is how a new user fills an empty config: it must not be refused."""
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    (tmp_path / "feeds.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline type="rss" text="Wire" xmlUrl="https://wire.example/feed.xml"/></body></opml>',
        encoding="utf-8")
    imported = aggregator(tmp_path, "sources", "import", "feeds.opml")
    assert imported.returncode == 0, imported.stderr
    checked = aggregator(tmp_path, "check")
    assert checked.returncode == 0, checked.stderr


def test_sighup_with_an_emptied_config_is_refused_and_the_feeds_stay(tmp_path: Path) -> None:
    for n in range(3):
        write_article(tmp_path / "articles", f"a{n}.txt", f"Opening story {n}", n)
    port = free_port()
    config = write_config(tmp_path, port, LOCAL)
    good = config.read_text(encoding="utf-8")
    daemon = start_daemon(tmp_path, port)
    database = tmp_path / "data" / "test.db"
    try:
        wait_for(lambda: daemon.health()["articles"] == 3, what="first ingest", daemon=daemon)
        world = wait_for(lambda: served(daemon, "/world.atom"), what="the world feed", daemon=daemon)
        feed = tmp_path / "feeds" / "world.atom"

        for broken, line in ((b"", f"{config}: the file holds no settings; {FIX}"),
                             (NO_SOURCES.encode(), f"{config}: sources: no sources configured; {FIX}")):
            refusals = daemon.log().count("still running the previous config")
            config.write_bytes(broken)
            daemon.signal(signal.SIGHUP)
            wait_for(lambda: daemon.log().count("still running the previous config") > refusals,
                     what="the refusal", daemon=daemon)
            refused = [x for x in daemon.log().splitlines() if x.startswith("ERROR reload refused:")]
            assert refused[-2:] == [f"ERROR reload refused: {line}",
                                    "ERROR reload refused: still running the previous config; "
                                    "fix the file and send SIGHUP again"]
            health = daemon.health()
            assert health["status"] == "ok"
            assert [s["name"] for s in health["sources"]] == ["Local desk"]
            assert feed.read_bytes() == world and served(daemon, "/world.atom") == world
            assert query(database, "SELECT count(*) FROM articles") == [(3,)]
            assert daemon.process.poll() is None

        # The running config goes on: a new article is still fetched and published.
        write_article(tmp_path / "articles", "a3.txt", "Later story 3", 3)
        wait_for(lambda: b"Later story 3" in (served(daemon, "/world.atom") or b""),
                 what="the next article published", daemon=daemon)

        # Mended: the file is accepted again.
        config.write_text(good, encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reload: 1 sources (0 added, 0 removed, 0 changed)" in daemon.log(),
                 what="the mended config", daemon=daemon)
        assert daemon.health()["status"] == "ok"
    finally:
        assert daemon.stop() == 0
    assert query(database, "SELECT count(*) FROM articles") == [(4,)]
