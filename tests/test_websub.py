"""WebSub publish pings against a real local hub."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from aggregator.ingest.netguard import NetPolicy
from aggregator.publish.websub import notify_hub


class Hub:
    """Answers each POST with the next status of `statuses` (the last one repeats) and records the form."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.forms = list(statuses), []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hub.forms.append((self.headers["Content-Type"], parse_qs(body.decode())))
                status = hub.statuses.pop(0) if len(hub.statuses) > 1 else hub.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hub"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub_factory():
    hubs = []

    def make(statuses):
        hubs.append(Hub(statuses))
        return hubs[-1]

    yield make
    for hub in hubs:
        hub.close()


OPEN = NetPolicy(allow_private=True)
FEEDS = ["https://news.example/world.atom", "https://news.example/world.rss"]


def test_each_changed_feed_is_posted_as_a_publish_form(hub_factory):
    hub = hub_factory([204])
    report = notify_hub(hub.url, FEEDS, OPEN, sleep=lambda s: None)
    assert report.notified == FEEDS and report.failed == []
    assert [form for _, form in hub.forms] == [{"hub.mode": ["publish"], "hub.url": [u]} for u in FEEDS]
    assert {ctype for ctype, _ in hub.forms} == {"application/x-www-form-urlencoded"}


def test_server_errors_are_retried_with_growing_pauses(hub_factory):
    hub = hub_factory([503, 502, 204])
    pauses = []
    report = notify_hub(hub.url, FEEDS[:1], OPEN, sleep=pauses.append)
    assert report.notified == FEEDS[:1] and len(hub.forms) == 3 and pauses == [1.0, 2.0]


def test_a_refusal_is_not_retried_and_is_one_clear_line(hub_factory, caplog):
    hub = hub_factory([400])
    report = notify_hub(hub.url, FEEDS[:1], OPEN, sleep=lambda s: None)
    assert len(hub.forms) == 1 and report.notified == []
    assert report.failed == [f"WebSub hub {hub.url} did not take {FEEDS[0]}: HTTP 400 Bad Request; "
                             "check [publish] websub_hub"]
    assert report.failed[0] in caplog.text


def test_a_dead_hub_costs_bounded_attempts_and_never_raises(hub_factory):
    hub = hub_factory([204])
    url = hub.url
    hub.close()
    pauses = []
    report = notify_hub(url, FEEDS, OPEN, timeout=2, sleep=pauses.append)
    assert report.notified == [] and pauses == [1.0, 2.0]  # the second feed is not tried against a dead hub
    assert "after 3 attempts" in report.failed[0] and "network error" in report.failed[0]
    assert report.failed[1].endswith("1 more changed feeds not announced")


def test_private_hubs_are_refused_unless_allowed(hub_factory):
    hub = hub_factory([204])
    report = notify_hub(hub.url, FEEDS[:1], NetPolicy(), sleep=lambda s: None)
    assert hub.forms == [] and report.notified == [] and "allow_private_network" in report.failed[0]


def test_run_once_names_the_hub_in_every_feed_and_announces_the_changed_ones(hub_factory, project):
    import json as jsonlib

    import feedparser
    from click.testing import CliRunner
    from lxml import etree

    from aggregator.app.cli import cli

    hub = hub_factory([204])
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("[publish]\n", f'[publish]\nwebsub_hub = "{hub.url}"\n', 1)
    config.write_text(text + "\n[fetch]\nallow_private_network = true\n", encoding="utf-8")
    first = CliRunner().invoke(cli, ["-c", str(config), "run", "--once"])
    assert first.exit_code == 0, first.output
    _join_announcements()
    feeds = project / "feeds"
    announced = sorted(form["hub.url"][0] for _, form in hub.forms)
    expected = sorted(f"http://127.0.0.1:8080/{p.name}" for p in feeds.iterdir() if p.suffix in (".atom", ".rss", ".json"))
    assert announced == expected and len(expected) == 18  # 5 topics and "all", 3 formats each
    atom = etree.parse(str(feeds / "europe.atom")).getroot()
    assert atom.find("{http://www.w3.org/2005/Atom}link[@rel='hub']").get("href") == hub.url
    rss = etree.parse(str(feeds / "europe.rss")).getroot()
    assert rss.find("channel/{http://www.w3.org/2005/Atom}link[@rel='hub']").get("href") == hub.url
    assert jsonlib.loads((feeds / "europe.json").read_text())["hubs"] == [{"type": "WebSub", "url": hub.url}]
    assert any(link.rel == "hub" for link in feedparser.parse(str(feeds / "europe.atom")).feed.links)

    again = CliRunner().invoke(cli, ["-c", str(config), "run", "--once"])
    _join_announcements()
    assert again.exit_code == 0 and len(hub.forms) == 18  # nothing changed: nothing announced


def _join_announcements() -> None:
    """The CLI's process waits for the announcing thread at exit; in-process, the test waits for it."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "websub":
            thread.join(30)
