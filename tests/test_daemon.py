"""The daemon as users run it: a real `aggregator run` subprocess, real files, real HTTP."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from aggregator.app.daemon_logging import RepeatFilter
from aggregator.app.debounce import DebouncedRunner
from aggregator.app.instance import AlreadyRunning, InstanceLock
from aggregator.models import Article
from aggregator.storage.store import Store

from helpers.daemon import (PYTHON, FeedSite, free_port, integrity, query, served, start_daemon, wait_for,
                            write_article, write_config)

ATOM = "{http://www.w3.org/2005/Atom}"
LOCAL = """
[[sources]]
name = "Local desk"
path = "articles"
interval = "1s"
"""


def atom_titles(body: bytes) -> list[str]:
    return [e.findtext(f"{ATOM}title") for e in etree.fromstring(body).iter(f"{ATOM}entry")]


def fetch_lines(log: str, source: str) -> list[str]:
    return [line for line in log.splitlines() if f"fetch {source}:" in line]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for n in range(3):
        write_article(tmp_path / "articles", f"a{n}.txt", f"Opening story {n}", n)
    return tmp_path


@pytest.fixture
def site():
    feed = FeedSite()
    yield feed
    feed.close()


def test_schedules_fetches_publishes_new_articles_and_answers_conditional_gets(project: Path, site: FeedSite):
    port = free_port()
    site.items = [("r1", "Remote wire first item")]
    remote = f'\n[[sources]]\nname = "Remote wire"\nurl = "{site.url}"\ninterval = "1s"\n'
    write_config(project, port, LOCAL + remote)
    daemon = start_daemon(project, port)
    try:
        wait_for(lambda: "topics.opml" in daemon.stdout(), what="startup", daemon=daemon)
        stdout = daemon.stdout()
        assert f"http://127.0.0.1:{port}/world.atom" in stdout and f"http://127.0.0.1:{port}/all.atom" in stdout

        body = wait_for(lambda: (b := served(daemon, "/all.atom")) and len(atom_titles(b)) == 4 and b,
                        what="first publish", daemon=daemon)
        assert set(atom_titles(body)) == {"Opening story 0", "Opening story 1", "Opening story 2",
                                          "Remote wire first item"}
        status, headers, _ = daemon.get("/all.atom")
        etag, modified = headers["ETag"], headers["Last-Modified"]
        assert daemon.get("/all.atom", {"If-None-Match": etag})[0] == 304
        assert daemon.get("/all.atom", {"If-Modified-Since": modified})[0] == 304

        # Scheduled runs keep happening, and a remote source is asked conditionally.
        wait_for(lambda: len(fetch_lines(daemon.log(), "Local desk")) >= 3, what="repeated fetches", daemon=daemon)
        wait_for(lambda: site.not_modified >= 1, what="a 304 from the remote feed", daemon=daemon)
        assert daemon.get("/all.atom", {"If-None-Match": etag})[0] == 304  # nothing new: still unchanged

        write_article(project / "articles", "late.txt", "Late breaking story", 9)
        site.items.append(("r2", "Remote wire second item"))
        body = wait_for(lambda: (b := served(daemon, "/all.atom")) and len(atom_titles(b)) == 6 and b,
                        what="new articles published", daemon=daemon)
        assert {"Late breaking story", "Remote wire second item"} <= set(atom_titles(body))
        status, headers, _ = daemon.get("/all.atom", {"If-None-Match": etag})
        assert status == 200 and headers["ETag"] != etag
        # Publishing no longer reads the full-text index; the daemon catches it up while idle.
        database = project / "data" / "test.db"
        wait_for(lambda: query(database, "SELECT count(*) FROM fts_pending") == [(0,)]
                 and query(database, "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'breaking'") == [(1,)],
                 what="the full-text index caught up", daemon=daemon)

        health = daemon.health()
        by_name = {s["name"]: s for s in health["sources"]}
        assert health["status"] == "ok"
        assert by_name["Local desk"]["status"] == "ok" and by_name["Local desk"]["articles"] == 4
        assert by_name["Remote wire"]["http_status"] in (200, 304) and by_name["Remote wire"]["articles"] == 2
        lines = fetch_lines(daemon.log(), "Remote wire")
        assert any("status=200" in line for line in lines) and any("status=304" in line for line in lines)
    finally:
        assert daemon.stop() == 0


def test_a_burst_of_sources_causes_one_publish(project: Path):
    port = free_port()
    sources = "".join(f'\n[[sources]]\nname = "desk {n}"\npath = "desk{n}"\ninterval = "1h"\n' for n in range(6))
    for n in range(6):
        write_article(project / f"desk{n}", "story.txt", f"Desk {n} story", n)
    write_config(project, port, sources)
    daemon = start_daemon(project, port)
    try:
        wait_for(lambda: daemon.health()["articles"] == 6, what="all desks ingested", daemon=daemon)
        wait_for(lambda: "published:" in daemon.log(), what="publish", daemon=daemon)
        time.sleep(1.5)
        assert daemon.log().count("published:") == 1
        assert daemon.health()["publishes"] == 1
    finally:
        daemon.stop()


def test_source_errors_are_logged_once_per_state_change(project: Path, site: FeedSite):
    port = free_port()
    site.fail_with = 404
    write_config(project, port, f'[[sources]]\nname = "Flaky"\nurl = "{site.url}"\ninterval = "1s"\n')
    daemon = start_daemon(project, port)
    try:
        wait_for(lambda: daemon.health()["sources"][0]["status"] in ("error", "backing off"),
                 what="the error recorded", daemon=daemon)
        assert daemon.health()["status"] == "degraded"
        time.sleep(2.5)
        errors = [line for line in daemon.log().splitlines() if line.startswith("ERROR") and "Flaky" in line]
        assert len(errors) == 1, daemon.log()
        assert "HTTP 404" in errors[0]
    finally:
        daemon.stop()


def test_sighup_applies_a_good_config_and_keeps_running_on_a_broken_one(project: Path):
    port = free_port()
    write_config(project, port, LOCAL)
    write_article(project / "sport", "match.txt", "Harbour rowing final", 4, categories="Sport")
    daemon = start_daemon(project, port)
    try:
        wait_for(lambda: daemon.health()["articles"] == 3, what="first ingest", daemon=daemon)
        assert served(daemon, "/sport.atom") is None

        # Good edit: one source added, one topic added (re-tags stored articles), interval changed.
        second = '\n[[sources]]\nname = "Sport desk"\npath = "sport"\ninterval = "1s"\n'
        write_config(project, port, LOCAL.replace('"1s"', '"2s"') + second,
                     topics='\n[topics.sport]\ntitle = "Sport"\ncategories = ["Sport"]\nkeywords = ["story"]\n')
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reload: 2 sources (1 added, 0 removed, 1 changed)" in daemon.log(),
                 what="reload", daemon=daemon)
        assert "re-tagged: sport +3/-0" in daemon.log()  # the three stored stories mention "story"
        body = wait_for(lambda: (b := served(daemon, "/sport.atom")) and len(atom_titles(b)) == 4 and b,
                        what="sport feed with old and new articles", daemon=daemon)
        assert "Harbour rowing final" in atom_titles(body)

        # Broken edit: invalid value and an unknown key; the old config keeps running.
        (project / "config.toml").write_text('[[sources]]\nname = "x"\npath = 3\n[bogus]\n', encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "still running the previous config" in daemon.log(), what="refusal", daemon=daemon)
        log = daemon.log()
        refused = [line for line in log.splitlines() if line.startswith("ERROR reload refused:")]
        assert any("sources[0].path: expected a string" in line for line in refused), log
        assert any("bogus: unknown section" in line for line in refused), log
        fetched = len(fetch_lines(daemon.log(), "Sport desk"))
        wait_for(lambda: len(fetch_lines(daemon.log(), "Sport desk")) > fetched + 1,
                 what="fetching to go on", daemon=daemon)
        assert {s["name"] for s in daemon.health()["sources"]} == {"Local desk", "Sport desk"}
        assert daemon.process.poll() is None
    finally:
        assert daemon.stop() == 0


def test_sigterm_exits_within_seconds_and_leaves_a_clean_database(project: Path):
    port = free_port()
    for n in range(200):
        write_article(project / "articles", f"bulk{n:03}.txt", f"Bulk story {n}", n)
    write_config(project, port, LOCAL)
    daemon = start_daemon(project, port)
    wait_for(lambda: "fetch Local desk" in daemon.log(), what="first fetch", daemon=daemon)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(10) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"
    assert "stopped" in daemon.log()
    database = project / "data" / "test.db"
    assert integrity(database) == "ok"
    assert query(database, "SELECT COUNT(*) FROM articles")[0][0] == 203


def test_one_daemon_per_database_and_a_killed_one_leaves_no_stuck_lock(project: Path):
    port = free_port()
    write_config(project, port, LOCAL)
    first = start_daemon(project, port)
    try:
        wait_for(lambda: "topics.opml" in first.stdout(), what="startup", daemon=first)
        second = start_daemon(project, port, name="second")
        assert second.process.wait(20) == 1
        message = second.log()
        assert "already running on this database" in message and f"pid {first.pid}" in message
        assert "Traceback" not in message
        # CLI commands still work while the daemon runs.
        listing = subprocess.run([PYTHON, "-m", "aggregator", "-c", str(project / "config.toml"), "articles"],
                                 capture_output=True, text=True, timeout=30)
        assert listing.returncode == 0 and "Opening story" in listing.stdout
    finally:
        first.process.kill()
        first.process.wait()
    third = start_daemon(project, port, name="third")
    try:
        wait_for(lambda: "topics.opml" in third.stdout(), what="restart after SIGKILL", daemon=third)
        third.signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
        assert third.process.wait(10) == 0
    finally:
        third.stop()


def test_log_level_option_quiets_fetch_lines(project: Path):
    port = free_port()
    write_config(project, port, LOCAL)
    daemon = start_daemon(project, port, "--log-level", "warning")
    try:
        wait_for(lambda: daemon.health()["sources"][0]["status"] == "ok", what="a fetch", daemon=daemon)
        time.sleep(1.2)
    finally:
        daemon.stop()
    assert "fetch Local desk" not in daemon.log()


def test_retention_prunes_and_pruned_articles_do_not_come_back(tmp_path: Path):
    port = free_port()
    old = time.time() - 90 * 86400
    for n in range(4):
        write_article(tmp_path / "articles", f"old{n}.txt", f"Ancient story {n}", n, mtime=old)
    for n in range(6):
        write_article(tmp_path / "articles", f"new{n}.txt", f"Fresh story {n}", n, mtime=time.time() - n * 3600)
    write_config(tmp_path, port, LOCAL, storage="keep_days = 30\nmax_articles_per_source = 4")
    daemon = start_daemon(tmp_path, port)
    database = tmp_path / "data" / "test.db"
    try:
        wait_for(lambda: "retention: pruned 6 articles" in daemon.log(), what="pruning", daemon=daemon)
        fetched = len(fetch_lines(daemon.log(), "Local desk"))
        # The files are still there and touched, so every run re-reads them; they must stay pruned.
        for n in range(4):
            write_article(tmp_path / "articles", f"old{n}.txt", f"Ancient story {n} revised", n, mtime=old)
        wait_for(lambda: len(fetch_lines(daemon.log(), "Local desk")) >= fetched + 3, what="more fetches",
                 daemon=daemon)
        titles = {t for (t,) in query(database, "SELECT title FROM articles")}
        assert titles == {f"Fresh story {n}" for n in range(4)}
        assert query(database, "SELECT COUNT(*) FROM pruned")[0][0] == 6
        body = wait_for(lambda: (b := served(daemon, "/all.atom")) and len(atom_titles(b)) == 4 and b,
                        what="feed without pruned articles", daemon=daemon)
        assert not any("Ancient" in t for t in atom_titles(body))
    finally:
        daemon.stop()


# --- the parts, in-process ---


def test_debounced_runner_runs_once_for_a_burst_and_again_for_a_later_request():
    runs: list[float] = []
    runner = DebouncedRunner(lambda: runs.append(time.monotonic()), delay=0.2, max_delay=5)
    runner.start()
    for _ in range(20):
        runner.request()
        time.sleep(0.01)
    time.sleep(0.5)
    assert len(runs) == 1
    runner.request()
    time.sleep(0.5)
    assert len(runs) == 2
    assert runner.stop(1)


def test_debounced_runner_does_not_starve_under_constant_requests():
    runs: list[float] = []
    runner = DebouncedRunner(lambda: runs.append(time.monotonic()), delay=0.2, max_delay=0.5)
    runner.start()
    stop = time.monotonic() + 1.3
    while time.monotonic() < stop:
        runner.request()
        time.sleep(0.05)
    assert len(runs) >= 2
    runner.stop(1)


def test_a_request_during_a_run_is_not_lost():
    started, release, runs = threading.Event(), threading.Event(), []

    def action() -> None:
        runs.append(1)
        started.set()
        release.wait(2)

    runner = DebouncedRunner(action, delay=0.05, max_delay=1)
    runner.start()
    runner.request()
    assert started.wait(2)
    runner.request()  # arrives while the first run is busy
    release.set()
    deadline = time.monotonic() + 2
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(runs) == 2
    runner.stop(1)


def test_instance_lock_is_exclusive_and_released(tmp_path: Path):
    database = tmp_path / "x.db"
    first = InstanceLock(database)
    first.acquire()
    with pytest.raises(AlreadyRunning, match="already running"):
        InstanceLock(database).acquire()
    first.release()
    again = InstanceLock(database)
    again.acquire()
    again.release()


def test_repeat_filter_passes_a_warning_once():
    import logging

    f = RepeatFilter()
    record = logging.LogRecord("aggregator", logging.WARNING, __file__, 1, "bad file %s", ("x",), None)
    assert f.filter(record) and not f.filter(record)
    other = logging.LogRecord("aggregator", logging.WARNING, __file__, 1, "bad file %s", ("y",), None)
    assert f.filter(other)


def _article(n: int, source: str, days_old: float, cluster: str = "") -> Article:
    when = datetime.now(timezone.utc) - timedelta(days=days_old)
    return Article(id=f"id{n}", source=source, title=f"Title {n}", text=f"text {n}", published=when,
                   content_hash=f"h{n}", cluster_id=cluster)


def test_store_prune_keeps_clusters_and_topics_consistent(tmp_path: Path):
    with Store(tmp_path / "p.db") as store:
        articles = [_article(0, "a", 100), _article(1, "a", 1, cluster="id0"), _article(2, "a", 2, cluster="id0"),
                    _article(3, "b", 3), _article(4, "b", 4), _article(5, "b", 5)]
        store.write_articles(articles, {a.id: ["world"] for a in articles})
        pruned = store.prune(keep_days=30, max_per_source=2)
        assert sorted(pruned) == ["id0", "id5"]
        assert store.pruned_ids(["id0", "id1", "id5"]) == {"id0", "id5"}
        assert store.is_pruned("id0") and not store.is_pruned("id1")
        assert {a.id: a.cluster_id for a in store.articles()} == {"id1": "id1", "id2": "id1", "id3": "id3",
                                                                  "id4": "id4"}
        assert query(tmp_path / "p.db", "SELECT COUNT(*) FROM article_topics WHERE article_id IN ('id0','id5')") \
            == [(0,)]
        assert store.articles(search="Title") and store.integrity_ok()
        assert store.prune(keep_days=30, max_per_source=2) == []


def test_pipeline_drops_pruned_ids(tmp_path: Path):
    from aggregator import pipeline
    from aggregator.config import parse_config

    config = parse_config({"sources": [{"name": "a", "path": "in"}]}, tmp_path / "config.toml")
    rules = pipeline.topic_rules(config)
    from aggregator.models import ParseResult

    with Store(tmp_path / "p.db") as store:
        store.write_articles([_article(0, "a", 100)], {})
        store.prune(keep_days=30)
        report = pipeline.store_results(store, "a", [ParseResult(articles=[_article(0, "a", 100),
                                                                           _article(1, "a", 1)])], rules)
        assert report.new == 1
        assert store.all_ids() == ["id1"]


def test_connections_are_kept_from_one_cycle_to_the_next(tmp_path: Path):
    """The daemon keeps one connection pool for its life: refreshes reuse the keep-alive connection."""
    site = FeedSite(keep_alive=True)
    site.items = [("k1", "Kept connection story")]
    try:
        port = free_port()
        sources = "".join(f'\n[[sources]]\nname = "Wire {n}"\nurl = "{site.url}?{n}"\ninterval = "1s"\n'
                          for n in range(2))
        write_config(tmp_path, port, sources)
        daemon = start_daemon(tmp_path, port)
        try:
            wait_for(lambda: site.not_modified >= 6, what="three cycles of 304s", daemon=daemon)
        finally:
            daemon.stop()
        assert site.requests >= 8
        assert len(set(site.peers)) <= 2, f"{len(set(site.peers))} connections for {site.requests} requests"
    finally:
        site.close()


def test_a_folder_whose_read_raises_is_failed_then_recovers_as_a_feed_would(tmp_path: Path, monkeypatch, caplog):
    """The daemon's job, in-process: a raise (our bug) is the source's error in its row, counted, logged
    loudly once; the next good read clears it."""
    import logging

    from aggregator import pipeline
    from aggregator.app.source_jobs import SourceJobs
    from aggregator.app.thread_stores import ThreadStores
    from aggregator.config import parse_config

    write_article(tmp_path / "desk", "a.txt", "Desk story", 1)
    config = parse_config({"storage": {"database": "d.db"}, "sources": [{"name": "Desk", "path": "desk"}]},
                          tmp_path / "config.toml")
    stores, published = ThreadStores(config.storage.database), []

    def storage_fault(fault, name):
        raise AssertionError(f"no storage fault expected: {fault}")

    jobs = SourceJobs(lambda: (config, pipeline.topic_rules(config)), stores, storage_fault,
                      lambda: published.append(1), lambda: False)

    def parser_bug(*args, **kwargs):
        raise ValueError("a parser bug")

    caplog.set_level(logging.INFO, logger="aggregator.app.daemon")
    try:
        with monkeypatch.context() as patched:
            patched.setattr("aggregator.ingest.local.read_local_source", parser_bug)
            jobs.run("Desk")
            jobs.run("Desk")
            row = stores.get().source_state("Desk")
            assert (row["status"], row["error_count"], row["last_success"]) == ("error", 2, None)
            assert row["last_error"].startswith("ValueError: a parser bug (raised while fetching or parsing")
        jobs.run("Desk")
        row = stores.get().source_state("Desk")
        assert (row["status"], row["error_count"], row["last_error"]) == ("ok", 0, None)
        assert published == [1]
    finally:
        stores.close_all()
        jobs.close()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith("fetch Desk:")]
    assert [level for level, _ in lines] == ["ERROR", "INFO", "WARNING"]
    assert lines[1][1].endswith(" still failing") and lines[2][1].endswith(" recovered")
