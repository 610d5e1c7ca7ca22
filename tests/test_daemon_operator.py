"""The daemon as systemd and Prometheus see it: sd_notify readiness, watchdog pings, /metrics."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers.daemon import FeedSite, free_port, start_daemon, wait_for, write_article, write_config


@pytest.fixture
def notify(tmp_path: Path, monkeypatch):
    """A NOTIFY_SOCKET like systemd's, and WatchdogSec=2 (pings expected every second)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    yield sock
    sock.close()


def messages_until(sock: socket.socket, wanted: str) -> list[str]:
    seen: list[str] = []
    while True:
        fields = sock.recv(4096).decode().split("\n")
        seen += fields
        if wanted in fields:
            return seen


def test_ready_watchdog_and_stopping_reach_systemd(tmp_path: Path, notify: socket.socket) -> None:
    write_article(tmp_path / "articles", "a.txt", "Opening story", 0)
    port = free_port()
    write_config(tmp_path, port, '[[sources]]\nname = "Local"\npath = "articles"\n')
    daemon = start_daemon(tmp_path, port)
    try:
        assert "STATUS=1 sources" in messages_until(notify, "READY=1")  # one datagram carries both
        assert daemon.get("/healthz")[0] in (200, 503)  # serving when it says ready
        messages_until(notify, "WATCHDOG=1")
        messages_until(notify, "WATCHDOG=1")  # and again: pings keep coming
        daemon.signal(signal.SIGHUP)
        messages_until(notify, "RELOADING=1")
        messages_until(notify, "READY=1")  # the reload is done
        daemon.signal(signal.SIGTERM)
        messages_until(notify, "STOPPING=1")
        assert daemon.process.wait(15) == 0
    finally:
        daemon.stop()


def test_metrics_count_fetches_and_read_the_store(tmp_path: Path) -> None:
    site = FeedSite()
    try:
        site.items = [("g1", "First wire story"), ("g2", "Second wire story")]
        port = free_port()
        write_article(tmp_path / "articles", "a.txt", "Opening story", 0)
        write_config(tmp_path, port, f'[[sources]]\nname = "Local"\npath = "articles"\n\n'
                                     f'[[sources]]\nname = "Wire"\nurl = "{site.url}"\n')
        daemon = start_daemon(tmp_path, port)
        try:
            def scraped() -> dict:
                status, headers, body = daemon.get("/metrics")
                assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
                values = {(s.name, tuple(sorted(s.labels.items()))): s.value
                          for family in text_string_to_metric_families(body.decode()) for s in family.samples}
                return values if values.get(("aggregator_articles", ())) == 3 else {}

            values = wait_for(scraped, what="three articles in /metrics", daemon=daemon)
            assert values[("aggregator_fetches_total", (("status", "200"),))] >= 1
            assert values[("aggregator_articles_stored_total", (("change", "new"),))] == 3
            assert values[("aggregator_source_up", (("source", "Wire"),))] == 1
            assert values[("aggregator_source_last_success_timestamp_seconds", (("source", "Local"),))] > 1.7e9
            wait_for(lambda: daemon.get("/metrics")[2].find(b"aggregator_publish_duration_seconds_count 0") < 0,
                     what="a publish measured", daemon=daemon)
            status, _, page = daemon.get("/status.html")  # the status page is served with the feeds
            assert status == 200 and b"Wire" in page and b"<svg" in page
        finally:
            daemon.stop()
    finally:
        site.close()
