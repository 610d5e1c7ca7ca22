"""Remote sources end to end: config -> fetch over real HTTP on 127.0.0.1 -> parse -> SQLite state."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aggregator import pipeline
from aggregator.config import load_config, parse_config
from aggregator.ingest.remote_state import backoff_seconds, learned_interval
from aggregator.storage.store import Store
from helpers.feed_server import FeedServer, Reply, feed_bytes

RSS = feed_bytes("rss20.xml")
XML = {"Content-Type": "application/rss+xml; charset=utf-8"}


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


def make_config(tmp_path: Path, sources: list[dict], **fetch) -> object:
    raw = {"storage": {"database": "data/test.db"},
           "fetch": {"allow_private_network": True, "timeout": "2s", **fetch},
           "sources": sources}
    return parse_config(raw, tmp_path / "config.toml")


def one(tmp_path: Path, url: str, **source) -> object:
    return make_config(tmp_path, [{"name": "Feed", "url": url, **source}])


def run(config) -> tuple[object, dict]:
    with Store(config.storage.database) as store:
        reports = pipeline.ingest_all(config, store)
        return (reports[0] if reports else None), store.source_state("Feed")


def stored(config) -> list:
    with Store(config.storage.database) as store:
        return store.articles(source="Feed")


def test_200_then_304_by_etag_costs_no_writes(tmp_path, server):
    def route(headers):
        if headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, RSS, {**XML, "ETag": '"v1"'})
    server.routes["/feed.xml"] = route
    config = one(tmp_path, server.url("/feed.xml"))
    first, state = run(config)
    assert (first.new, first.error) == (2, None)
    assert state["status"] == "ok" and state["etag"] == '"v1"' and state["http_status"] == 200
    with Store(config.storage.database) as store:
        before = store.db.execute("SELECT COUNT(*), MAX(updated) FROM articles").fetchone()
        changes = store.db.conn.total_changes
        report = pipeline.ingest_all(config, store)[0]
        # An extra refresh right after a recorded fetch: nothing new, nothing written at all.
        assert store.db.conn.total_changes - changes == 0
        assert store.db.execute("SELECT COUNT(*), MAX(updated) FROM articles").fetchone() == before
        # Once half an interval has passed, a 304 is recorded: only the source's state row.
        with store.transaction():
            store.db.execute("UPDATE sources SET last_fetch = '2020-01-01T00:00:00+00:00' WHERE name = 'Feed'")
        changes = store.db.conn.total_changes
        pipeline.ingest_all(config, store)
        assert store.db.conn.total_changes - changes == 1
        assert store.db.execute("SELECT COUNT(*), MAX(updated) FROM articles").fetchone() == before
        assert store.source_state("Feed")["http_status"] == 304
    assert (report.new, report.updated, report.error) == (0, 0, None)
    assert server.hits("/feed.xml")[1].headers["if-none-match"] == '"v1"'


def test_a_recorded_304_loads_no_dedup_and_no_numpy(tmp_path, server):
    """A cron `run --once` after the interval records every source's 304 (its state row only);
    that must not import the dedup stage and numpy, a fifth of a second for nothing."""
    import subprocess
    import sys

    server.routes["/feed.xml"] = lambda h: (Reply(304, headers={"ETag": '"v1"'}) if h.get("if-none-match") == '"v1"'
                                          else Reply(200, RSS, {**XML, "ETag": '"v1"'}))
    url = server.url("/feed.xml")
    (tmp_path / "config.toml").write_text(
        '[storage]\ndatabase = "data/test.db"\n[fetch]\nallow_private_network = true\n'
        f'[[sources]]\nname = "Feed"\nurl = "{url}"\n', encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    assert run(config)[0].new == 2
    with Store(config.storage.database) as store:
        pipeline.publish(config, store)  # so that the run below finds its feeds unchanged
        with store.transaction():
            store.db.execute("UPDATE sources SET last_fetch = '2020-01-01T00:00:00+00:00' WHERE name = 'Feed'")
    script = ("import sys; from aggregator.app.cli import main; sys.argv = ['aggregator', '-c', sys.argv[1], '-q', "
              "'run', '--once']\ntry: main()\nexcept SystemExit: pass\nprint('numpy' in sys.modules, "
              "'aggregator.dedup.detect' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "config.toml")], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr
    with Store(config.storage.database) as store:
        assert store.source_state("Feed")["last_fetch"] > "2020-01-01T00:00:00+00:00"
        assert store.source_state("Feed")["http_status"] == 304


def test_the_configured_user_agent_is_sent_and_the_default_names_the_project(tmp_path, server):
    from aggregator.ingest.http import USER_AGENT

    server.routes["/feed.xml"] = Reply(200, RSS, XML)
    run(make_config(tmp_path, [{"name": "Feed", "url": server.url("/feed.xml")}],
                    user_agent="Newsroom reader (+mailto:desk@news.example)"))
    run(make_config(tmp_path / "default", [{"name": "Feed", "url": server.url("/feed.xml")}]))
    agents = [seen.headers["user-agent"] for seen in server.hits("/feed.xml")]
    assert agents == ["Newsroom reader (+mailto:desk@news.example)", USER_AGENT]
    assert USER_AGENT.startswith("aggregator/")


def test_304_by_last_modified(tmp_path, server):
    stamp = "Tue, 03 Jun 2025 09:30:00 GMT"
    server.routes["/feed.xml"] = lambda h: (Reply(304) if h.get("if-modified-since") == stamp
                                            else Reply(200, RSS, {**XML, "Last-Modified": stamp}))
    config = one(tmp_path, server.url("/feed.xml"))
    run(config)
    report, state = run(config)
    assert state["last_modified"] == stamp and report.new == 0
    assert server.hits("/feed.xml")[1].headers["if-modified-since"] == stamp
    assert len(stored(config)) == 2


def test_301_updates_the_stored_url_and_says_so(tmp_path, server, caplog):
    server.routes["/old.xml"] = Reply(301, headers={"Location": "/new.xml"})
    server.routes["/new.xml"] = Reply(200, RSS, XML)
    config = one(tmp_path, server.url("/old.xml"))
    with caplog.at_level(logging.INFO, logger="aggregator"):
        report, state = run(config)
    assert report.new == 2 and state["url"] == server.url("/new.xml")
    assert any("moved permanently (HTTP 301)" in r.getMessage() for r in caplog.records)
    run(config)
    assert len(server.hits("/old.xml")) == 1 and len(server.hits("/new.xml")) == 2


def test_302_keeps_the_configured_url(tmp_path, server):
    server.routes["/feed.xml"] = Reply(302, headers={"Location": "/today.xml"})
    server.routes["/today.xml"] = Reply(200, RSS, XML)
    config = one(tmp_path, server.url("/feed.xml"))
    report, state = run(config)
    assert report.new == 2 and state["url"] == server.url("/feed.xml")
    run(config)
    assert len(server.hits("/feed.xml")) == 2


def test_404_is_an_error_row_and_keeps_stored_articles(tmp_path, server):
    server.routes["/feed.xml"] = Reply(200, RSS, XML)
    config = one(tmp_path, server.url("/feed.xml"))
    run(config)
    server.routes["/feed.xml"] = Reply(404, b"gone fishing")
    report, state = run(config)
    assert report.error.startswith("HTTP 404 Not Found from http://127.0.0.1:")
    assert "check the source's url" in report.error
    assert state["status"] == "error" and state["error_count"] == 1 and state["last_error"] == report.error
    assert len(stored(config)) == 2


def test_410_marks_gone_until_the_config_changes(tmp_path, server):
    server.routes["/feed.xml"] = Reply(410, b"")
    server.routes["/v2.xml"] = Reply(200, RSS, XML)
    config = one(tmp_path, server.url("/feed.xml"))
    report, state = run(config)
    assert state["status"] == "gone" and "removed the feed" in report.error
    report, state = run(config)
    assert len(server.hits("/feed.xml")) == 1 and report.error.startswith("gone (HTTP 410")
    moved = one(tmp_path, server.url("/v2.xml"))
    report, state = run(moved)
    assert report.new == 2 and state["status"] == "ok"


def test_429_retry_after_is_honoured_even_by_run_once(tmp_path, server):
    server.routes["/feed.xml"] = Reply(429, b"slow down", {"Retry-After": "3600"})
    config = one(tmp_path, server.url("/feed.xml"))
    report, state = run(config)
    assert state["status"] == "backing off" and "Retry-After" in report.error
    retry = datetime.fromisoformat(state["retry_after"])
    assert 3590 < (retry - datetime.now(timezone.utc)).total_seconds() <= 3600
    report, _ = run(config)
    assert len(server.hits("/feed.xml")) == 1 and report.error.startswith("not fetched: the server asked us to wait")


def test_500_backs_off_exponentially(tmp_path, server):
    server.routes["/feed.xml"] = Reply(500, b"oops")
    config = one(tmp_path, server.url("/feed.xml"), interval="10m")
    delays = []
    for _ in range(3):
        before = datetime.now(timezone.utc).replace(microsecond=0)
        report, state = run(config)
        delays.append((datetime.fromisoformat(state["next_due"]) - before).total_seconds())
    assert "server error; will retry with backoff" in report.error
    assert state["status"] == "backing off" and state["error_count"] == 3
    for n, delay in enumerate(delays):
        assert 600 * 2 ** n * 0.9 - 2 <= delay <= 600 * 2 ** n * 1.1 + 2
    server.routes["/feed.xml"] = Reply(200, RSS, XML)
    _, state = run(config)
    assert state["status"] == "ok" and state["error_count"] == 0 and state["last_error"] is None


def test_backoff_is_capped_and_jittered():
    assert backoff_seconds(900, 30) <= 24 * 3600
    assert len({round(backoff_seconds(900, 2)) for _ in range(20)}) > 1


def test_timeout_is_a_failure_row(tmp_path, server):
    server.routes["/feed.xml"] = Reply(200, RSS, XML, delay=1.5)
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/feed.xml")}], timeout="0.3s")
    report, state = run(config)
    assert report.error.startswith("timed out after 0.3s") and state["status"] == "error"


@pytest.mark.parametrize("gzipped", [False, True])
def test_body_over_the_limit_stores_nothing(tmp_path, server, gzipped):
    body = RSS.replace(b"</channel>", b"<!--" + b"pad " * 20_000 + b"--></channel>")
    headers = {**XML, "Content-Encoding": "gzip"} if gzipped else XML
    server.routes["/feed.xml"] = Reply(200, gzip.compress(body) if gzipped else body, headers)
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/feed.xml")}], max_body_size="50kB")
    report, state = run(config)
    assert "larger than the 50000 bytes limit" in report.error and state["status"] == "error"
    assert ("after gzip decompression" in report.error) is gzipped
    assert stored(config) == []


def test_wrong_but_harmless_content_type_is_still_parsed(tmp_path, server):
    server.routes["/feed.xml"] = Reply(200, RSS, {"Content-Type": "text/plain"})
    report, state = run(one(tmp_path, server.url("/feed.xml")))
    assert report.new == 2 and state["status"] == "ok"


def test_content_type_that_cannot_be_a_feed_is_refused(tmp_path, server):
    server.routes["/feed.xml"] = Reply(200, b"\x89PNG\r\n\x1a\n....", {"Content-Type": "image/png"})
    report, _ = run(one(tmp_path, server.url("/feed.xml")))
    assert report.error == "the server sent image/png, not a feed; check the source's url"


HTML = {"Content-Type": "text/html; charset=utf-8"}


def test_html_page_whose_linked_feed_fails_names_both(tmp_path, server):
    server.routes["/"] = Reply(200, feed_bytes("page.html"), HTML)  # links to /feed.xml, which is a 404
    report, state = run(one(tmp_path, server.url("/")))
    assert report.error == (f"{server.url('/')} is a web page, not a feed; it links to the feed "
                            f"{server.url('/feed.xml')}, which failed: HTTP 404 Not Found from "
                            f"{server.url('/feed.xml')}: there is no feed at this URL; check the source's url")
    assert state["status"] == "error" and state["url"] == server.url("/") and state["found_on"] is None


def test_html_page_linking_to_a_feed_is_followed_once_and_said_so(tmp_path, server, caplog):
    from aggregator.ingest.source_status import source_rows

    server.routes["/"] = Reply(200, feed_bytes("page.html"), HTML)
    server.routes["/feed.xml"] = Reply(200, RSS, {**XML, "ETag": '"v1"'})
    config = one(tmp_path, server.url("/"))
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        report, state = run(config)
    assert (report.new, report.error) == (2, None)
    assert state["status"] == "ok" and state["url"] == server.url("/feed.xml") and state["etag"] == '"v1"'
    assert state["found_on"] == server.url("/") and state["http_status"] == 200
    [warning] = [r.getMessage() for r in caplog.records if "web page" in r.getMessage()]
    assert warning == (f"Feed: {server.url('/')} is a web page; reading the feed it links to, "
                       f"{server.url('/feed.xml')} (put that URL in the source's url to save a fetch)")
    with Store(config.storage.database) as store:
        [row] = source_rows(config, store)
    assert row["found_on"] == server.url("/") and row["status"] == "ok" and row["articles"] == 2
    assert row["location"] == (f"{server.url('/')} -> {server.url('/feed.xml')} (the feed linked from the web "
                               f"page {server.url('/')}; put its URL in the source's url)")
    run(config)  # the feed is fetched directly now, with its validators
    assert len(server.hits("/")) == 1 and len(server.hits("/feed.xml")) == 2
    assert server.hits("/feed.xml")[1].headers["if-none-match"] == '"v1"'


def test_a_found_feed_that_fails_sends_the_next_fetch_back_to_the_page(tmp_path, server):
    server.routes["/"] = Reply(200, feed_bytes("page.html"), HTML)
    server.routes["/feed.xml"] = Reply(200, RSS, {**XML, "ETag": '"v1"'})
    config = one(tmp_path, server.url("/"))
    run(config)
    server.routes["/feed.xml"] = Reply(404)
    report, state = run(config)
    assert report.error.startswith("HTTP 404") and state["status"] == "error"
    assert state["url"] == server.url("/") and state["found_on"] is None and state["etag"] is None
    server.routes["/feed.xml"] = Reply(200, RSS, XML)
    report, state = run(config)
    assert report.error is None and state["found_on"] == server.url("/") and len(server.hits("/")) == 2


def test_a_page_found_through_a_page_is_not_followed(tmp_path, server):
    """One hop only: a link to a page that links on is an error, and the third URL is never asked for."""
    server.routes["/"] = Reply(200, feed_bytes("page.html"), HTML)
    server.routes["/feed.xml"] = Reply(200, feed_bytes("page.html").replace(b"/feed.xml", b"/deeper.xml"), HTML)
    report, state = run(one(tmp_path, server.url("/")))
    assert report.error.startswith(f"{server.url('/')} is a web page, not a feed; it links to the feed "
                                   f"{server.url('/feed.xml')}, which we cannot read: not a feed")
    assert server.hits("/deeper.xml") == [] and state["status"] == "error"


@pytest.mark.parametrize("name,content_type", [
    ("rss20.xml", "text/html"), ("atom10.xml", "application/octet-stream"), ("rss10.rdf", "text/plain"),
    ("jsonfeed11.json", "text/html; charset=utf-8"), ("jsonfeed10.json", "application/octet-stream"),
    ("rss20.xml", "application/zip"),  # a wrong type that names a binary format: the bytes say otherwise
])
def test_the_content_decides_the_kind_not_the_content_type(tmp_path, server, caplog, name, content_type):
    server.routes["/f"] = Reply(200, feed_bytes(name), {"Content-Type": content_type})
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        report, state = run(one(tmp_path, server.url("/f")))
    assert report.error is None and report.new >= 1 and state["status"] == "ok"
    media_type = content_type.split(";")[0]
    [warning] = [r.getMessage() for r in caplog.records if "read leniently" in r.getMessage()]
    assert warning.startswith(f"Feed: read leniently: served as {media_type}, which is not ")


def test_ill_formed_but_complete_feed_is_read_with_one_warning(tmp_path, server, caplog):
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Tom & Jerry&nbsp;News</title>'
            b'<item><title>Fish &amp; chips&nbsp;again</title><link>https://x.example/1?a=1&b=2</link>'
            b'<description>Bare & here</description></item></channel></rss>\n<!-- cached 0.2s -->\n')
    server.routes["/f"] = Reply(200, body, XML)
    config = one(tmp_path, server.url("/f"))
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        report, state = run(config)
    assert (report.new, report.error, state["status"]) == (1, None, "ok")
    [article] = stored(config)
    assert article.title == "Fish & chips\u00a0again" and article.url == "https://x.example/1?a=1&b=2"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "leniently" in r.getMessage()]
    assert warnings == ["Feed: read leniently: not well-formed XML at line 1 (not well-formed (invalid token)), "
                        "recovered as feed readers do (some text may be lost or garbled); "
                        "the feed's publisher can fix this"]


def test_truncated_feed_is_refused_and_retried(tmp_path, server):
    server.routes["/f"] = Reply(200, RSS[:RSS.index(b"</item>") + 20], XML)
    report, state = run(one(tmp_path, server.url("/f")))
    assert report.error.startswith("the feed is cut off before its end") and state["status"] == "error"
    assert state["next_due"] is not None


@pytest.mark.parametrize("name,content_type,title,site", [
    ("rss20.xml", "application/rss+xml", "Ferry strike ends after talks", "Harbour Times"),
    ("rss10.rdf", "application/rdf+xml", "Central bank holds rates", "Daily Ledger"),
    ("rss091.xml", "text/xml", "Grain exports rise", "Baltic Review"),
    ("atom10.xml", "application/atom+xml", "EU AI rules approved", "Northgate Herald"),
    ("atom03.xml", "application/atom+xml", "Emissions report published", "Meridian Post"),
    ("jsonfeed11.json", "application/feed+json", "Shipping resumes in the Red Sea", "Atlas Wire"),
    ("jsonfeed10.json", "application/json", "Wildfires in Greece", "Sunrise Gazette"),
])
def test_each_feed_format(tmp_path, server, name, content_type, title, site):
    server.routes["/f"] = Reply(200, feed_bytes(name), {"Content-Type": content_type})
    config = one(tmp_path, server.url("/f"))
    report, _ = run(config)
    assert report.error is None and report.new >= 1
    article = next(a for a in stored(config) if a.title == title)
    assert article.site == site and article.url.startswith(("https://", server.url("/"))) and article.text


def test_relative_links_resolve_against_xml_base_and_feed_url(tmp_path, server):
    server.routes["/blog/feed"] = Reply(200, feed_bytes("atom10.xml"), {"Content-Type": "application/atom+xml"})
    server.routes["/rss"] = Reply(200, RSS, XML)
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/blog/feed")},
                                    {"name": "Other", "url": server.url("/rss")}])
    with Store(config.storage.database) as store:
        pipeline.ingest_all(config, store)
        atom = store.articles(source="Feed")[0]
        ferry = next(a for a in store.articles(source="Other") if a.guid == "ht-1001")
    assert atom.url == "https://northgate.example/blog/posts/ai-rules"
    assert 'href="https://northgate.example/blog/details"' in atom.content_html  # xml:base, not the entry link
    assert ferry.url == server.url("/news/ferry-strike") and "<script" not in ferry.content_html
    assert ferry.image == "https://harbour.example/img/ferry.jpg" and ferry.authors == ("Mara Ellis",)


def test_declared_encoding_that_lies(tmp_path, server):
    # UTF-8 bytes under an ISO-8859-1 declaration and an ISO-8859-1 HTTP charset
    server.routes["/f"] = Reply(200, feed_bytes("lying_encoding.xml"),
                                {"Content-Type": "application/rss+xml; charset=iso-8859-1"})
    # cp1252 bytes under a UTF-8 declaration
    cp1252 = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
              '<item><title>Caf\u00e9 \u201cquotes\u201d</title><guid>g</guid><description>x</description></item>'
              '</channel></rss>').encode("cp1252")
    server.routes["/g"] = Reply(200, cp1252, {"Content-Type": "application/rss+xml"})
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/f")},
                                    {"name": "Other", "url": server.url("/g")}])
    with Store(config.storage.database) as store:
        reports = pipeline.ingest_all(config, store)
        assert [r.error for r in reports] == [None, None]
        assert store.articles(source="Feed")[0].title == "Cr\u00e8me br\u00fbl\u00e9e wins \u201cbest dessert\u201d"
        assert store.articles(source="Other")[0].title == "Caf\u00e9 \u201cquotes\u201d"


def test_private_network_refused_unless_allowed(tmp_path, server):
    server.routes["/feed.xml"] = Reply(200, RSS, XML)
    raw = {"storage": {"database": "data/test.db"}, "sources": [{"name": "Feed", "url": server.url("/feed.xml")}]}
    report, state = run(parse_config(raw, tmp_path / "config.toml"))
    assert report.error.startswith("refused to connect to 127.0.0.1") and not server.requests
    raw["sources"][0]["allow_private_network"] = True
    report, state = run(parse_config(raw, tmp_path / "config.toml"))
    assert report.new == 2 and state["status"] == "ok"


def test_cache_control_raises_the_interval_but_never_lowers_it(tmp_path, server):
    server.routes["/long"] = Reply(200, RSS, {**XML, "Cache-Control": "max-age=7200"})
    server.routes["/short"] = Reply(200, RSS, {**XML, "Cache-Control": "max-age=60"})
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/long"), "interval": "15m"},
                                    {"name": "Short", "url": server.url("/short"), "interval": "15m"}])
    with Store(config.storage.database) as store:
        pipeline.ingest_all(config, store)
        waits = {n: (datetime.fromisoformat(s["next_due"]) - datetime.fromisoformat(s["last_fetch"])).total_seconds()
                 for n, s in store.source_states().items()}
    assert waits == {"Feed": 7200, "Short": 900}


def test_auto_interval_follows_the_feeds_pace(tmp_path, server):
    items = "".join(f"<item><title>Post {n}</title><guid>p{n}</guid><description>x</description>"
                    f"<pubDate>Mon, 02 Jun 2025 {10 + n:02d}:00:00 +0000</pubDate></item>" for n in range(6))
    server.routes["/hourly"] = Reply(200, f'<rss version="2.0"><channel><title>H</title>{items}</channel></rss>'.encode(), XML)
    report, state = run(one(tmp_path, server.url("/hourly"), interval="auto"))
    assert report.new == 6 and state["interval_seconds"] == 1800  # half the hourly gap


def test_learned_interval_stays_in_bounds():
    from aggregator.models import Article, ParseResult
    dates = [datetime(2025, 1, d, tzinfo=timezone.utc) for d in (1, 20)]
    slow = ParseResult(articles=[Article(id=str(i), source="s", title="t", published=d) for i, d in enumerate(dates)])
    assert learned_interval(slow) == 24 * 3600
    assert learned_interval(ParseResult()) is None


def test_daemon_mode_honours_next_due_and_run_once_does_not(tmp_path, server):
    server.routes["/feed.xml"] = Reply(200, RSS, XML)
    config = one(tmp_path, server.url("/feed.xml"))
    with Store(config.storage.database) as store:
        pipeline.ingest_all(config, store)
        assert pipeline.ingest_all(config, store, honour_schedule=True) == []
        assert len(pipeline.ingest_all(config, store)) == 1
    assert len(server.hits("/feed.xml")) == 2


def test_one_slow_host_does_not_stall_the_others_and_per_host_is_bounded(tmp_path):
    with FeedServer() as slow, FeedServer(host="127.0.0.2") as fast:
        active, peak, lock = [0], [0], threading.Lock()

        def counting(headers):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.3)
            with lock:
                active[0] -= 1
            return Reply(200, RSS, XML)

        for n in range(6):
            slow.routes[f"/s{n}"] = counting
            fast.routes[f"/f{n}"] = Reply(200, RSS, XML)
        sources = [{"name": f"slow{n}", "url": slow.url(f"/s{n}")} for n in range(6)]
        sources += [{"name": f"fast{n}", "url": fast.url(f"/f{n}")} for n in range(6)]
        config = make_config(tmp_path, sources, concurrency=4, per_host=2)
        started = time.monotonic()
        with Store(config.storage.database) as store:
            reports = pipeline.ingest_all(config, store)
        elapsed = time.monotonic() - started
    assert [r.source for r in reports] == [s["name"] for s in sources]
    assert all(r.error is None for r in reports)
    assert peak[0] == 2  # per_host
    assert 0.85 < elapsed < 3.0  # 6 slow fetches, 2 at a time = 3 rounds of 0.3 s; fast ones alongside
