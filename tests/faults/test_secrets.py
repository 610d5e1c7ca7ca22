"""A login in a source URL works for fetching and shows nowhere: not in logs, command output,
exports, published feeds and pages, nor /healthz. Real server, real CLI, real daemon."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.daemon import free_port, start_daemon, wait_for, write_config

SECRETS = ("s3cret-pass", "hunter2", "tok3n-value")
RSS = (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Members wire</title>'
       b"<link>https://example.com/</link><description>x</description>"
       b"<item><title>Members-only story</title><link>https://example.com/m1</link><guid>m1</guid>"
       b"<category>World</category><description>Only for members, reported today.</description></item>"
       b"</channel></rss>")


class LoginSite:
    """Serves the feed only with the right Basic authorization, as a members' feed does."""

    def __init__(self) -> None:
        expected = "Basic " + base64.b64encode(b"reader:s3cret-pass").decode()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                ok = self.headers.get("Authorization") == expected
                site.authorized += ok
                self.send_response(200 if ok else 401)
                body = RSS if ok else b"login required"
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.authorized = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    running = LoginSite()
    yield running
    running.close()


def sources(site: LoginSite) -> str:
    return (f'[[sources]]\nname = "Members"\nurl = "http://reader:s3cret-pass@127.0.0.1:{site.port}/feed.xml"\n\n'
            f'[[sources]]\nname = "Down"\nurl = "http://admin:hunter2@127.0.0.1:1/feed.xml"\n\n'
            f'[[sources]]\nname = "Token"\nurl = "http://tok3n-value@127.0.0.1:1/other.xml"\n')


def cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aggregator", "-c", str(project / "config.toml"), *args],
                          capture_output=True, text=True, timeout=120, cwd=project)


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in {where}: {text[:2000]}"


def published_text(project: Path) -> str:
    return "\n".join(p.read_text("utf-8", "replace") for p in (project / "feeds").rglob("*") if p.is_file())


def test_logins_fetch_but_never_show_in_cli_output_exports_or_feeds(tmp_path: Path, site: LoginSite):
    write_config(tmp_path, free_port(), sources(site))
    run = cli(tmp_path, "run", "--once")
    assert site.authorized == 1, run.stderr  # the login was sent, as Basic authorization
    assert "Members-only story" in published_text(tmp_path)
    assert "admin:***@127.0.0.1:1" in run.stderr and "http://***@127.0.0.1:1" in run.stderr, run.stderr
    for where, result in [("run --once", run), ("sources", cli(tmp_path, "sources")),
                          ("sources --json", cli(tmp_path, "sources", "--json")),
                          ("sources export", cli(tmp_path, "sources", "export")),
                          ("articles --json", cli(tmp_path, "articles", "--json")),
                          ("run --once, debug log", cli(tmp_path, "--log-level", "debug", "run", "--once"))]:
        assert_no_secret(f"{where} (stdout)", result.stdout)
        assert_no_secret(f"{where} (stderr)", result.stderr)
    rows = [json.loads(line) for line in cli(tmp_path, "sources", "--json").stdout.splitlines()]
    assert [r["location"] for r in rows] == [f"http://reader:***@127.0.0.1:{site.port}/feed.xml",
                                             "http://admin:***@127.0.0.1:1/feed.xml",
                                             "http://***@127.0.0.1:1/other.xml"]
    assert "***@127.0.0.1:1" in rows[1]["last_error"]
    assert_no_secret("published feeds and pages", published_text(tmp_path))


def test_healthz_shows_no_login(tmp_path: Path, site: LoginSite):
    port = free_port()
    write_config(tmp_path, port, sources(site))
    daemon = start_daemon(tmp_path, port)
    try:
        health = wait_for(lambda: (h := daemon.health()) and all(s["status"] != "pending" for s in h["sources"])
                          and h, what="every source fetched once", daemon=daemon)
        assert_no_secret("/healthz", json.dumps(health))
        assert {s["name"]: s["location"] for s in health["sources"]}["Members"] == \
            f"http://reader:***@127.0.0.1:{site.port}/feed.xml"
    finally:
        daemon.stop()
    assert_no_secret("the daemon's log", daemon.log() + daemon.stdout())


def test_username_and_password_file_log_in_and_the_password_shows_nowhere(tmp_path: Path, site: LoginSite):
    """The better way: the login out of the URL, the password in a file of its own (read at each fetch)."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "members.txt").write_text("s3cret-pass\n", "utf-8")
    write_config(tmp_path, free_port(),
                 f'[[sources]]\nname = "Members"\nurl = "http://127.0.0.1:{site.port}/feed.xml"\n'
                 f'username = "reader"\npassword_file = "secrets/members.txt"\n\n'
                 f'[[sources]]\nname = "Lost key"\nurl = "http://127.0.0.1:{site.port}/other.xml"\n'
                 f'username = "reader"\npassword_file = "secrets/missing.txt"\n')
    run = cli(tmp_path, "--log-level", "debug", "run", "--once")
    assert site.authorized == 1 and "Members-only story" in published_text(tmp_path), run.stderr
    [line] = [line for line in run.stderr.splitlines() if line.startswith("error: Lost key")]
    assert "cannot read password_file" in line and "missing.txt" in line
    for where, result in [("run --once", run), ("sources --json", cli(tmp_path, "sources", "--json")),
                          ("check", cli(tmp_path, "check"))]:
        assert_no_secret(f"{where} (stdout)", result.stdout)
        assert_no_secret(f"{where} (stderr)", result.stderr)


def test_a_login_is_not_sent_to_another_origin_on_redirect(tmp_path: Path):
    """A redirect to another host gets no Authorization header; the feed's own host does."""
    from aggregator.ingest.netguard import NetPolicy
    from aggregator.ingest.http import Fetcher, Login
    from helpers.feed_server import FeedServer, Reply

    with FeedServer() as home, FeedServer(host="127.0.0.2") as elsewhere, Fetcher() as fetcher:
        elsewhere.routes["/feed.xml"] = Reply(200, RSS)
        home.routes["/feed.xml"] = Reply(302, headers={"Location": elsewhere.url("/feed.xml")})
        result = fetcher.fetch(home.url("/feed.xml"), NetPolicy(allow_private=True), login=Login("reader", "pw"))
    assert result.error is None and result.body == RSS
    assert home.hits("/feed.xml")[0].headers["authorization"].startswith("Basic ")
    assert "authorization" not in elsewhere.hits("/feed.xml")[0].headers
