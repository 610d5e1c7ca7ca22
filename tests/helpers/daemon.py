"""Start the real daemon as a subprocess and watch it: shared by the daemon, server and crash tests."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable

SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vor", "ne", "di", "pa", "gri", "sol", "um", "be",
             "fa", "zo", "ti", "mar", "che", "lus", "o", "qua", "ber", "in")
WORDS = ("harbour", "council", "minister", "weather", "market", "railway", "festival", "election",
         "bridge", "school", "hospital", "river", "museum", "airport", "factory", "village")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def article_text(title: str, n: int, categories: str = "World", site: str = "Test Herald") -> str:
    """A plain-text article in the bundled format: site, categories, title, body paragraphs."""
    rng = random.Random(f"{title}|{n}")  # distinct text per article: dedup must not merge them

    def paragraph(count: int) -> str:
        words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(count)]
        words[::9] = [rng.choice(WORDS) for _ in words[::9]]
        return " ".join(words).capitalize() + "."

    return f"{site}\n{categories}\n\n{title}\n\n{paragraph(70)}\n\n{paragraph(40)}\n"


def write_article(folder: Path, name: str, title: str, n: int = 0, categories: str = "World",
                  mtime: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(article_text(title, n, categories), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def write_config(project: Path, port: int, sources: str, topics: str = "", storage: str = "") -> Path:
    config = project / "config.toml"
    text = f"""
[site]
title = "Daemon Test"
base_url = "http://127.0.0.1:{port}/"

[storage]
database = "data/test.db"
feeds_dir = "feeds"
{storage}

[server]
listen = "127.0.0.1:{port}"

[publish]
related_posts = 2

[fetch]
allow_private_network = true

{sources}

[topics.world]
title = "World"
categories = ["World"]
{topics}
"""
    config.write_text(textwrap.dedent(text), encoding="utf-8")
    return config


@dataclass
class Daemon:
    """A running `aggregator run` subprocess; its stdout and stderr go to files we can read any time."""

    process: subprocess.Popen
    project: Path
    port: int
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def health(self) -> dict:
        status, _, body = self.get("/healthz")
        assert status == 200, body
        return json.loads(body)


def start_daemon(project: Path, port: int, *extra: str, name: str = "daemon",
                 preexec_fn: Callable[[], None] | None = None) -> Daemon:
    """`aggregator run` in the background; `preexec_fn` sets up a fault in the child before exec."""
    out, err = project / f"{name}.out", project / f"{name}.err"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("AGGREGATOR_CONFIG", None)
    process = subprocess.Popen(
        [PYTHON, "-m", "aggregator", "-c", str(project / "config.toml"), *extra, "run"],
        stdout=out.open("wb"), stderr=err.open("wb"), cwd=project, env=env, preexec_fn=preexec_fn,
    )
    return Daemon(process, project, port, out, err)


def wait_for(condition: Callable[[], object], timeout: float = 15.0, every: float = 0.1,
             what: str = "condition", daemon: Daemon | None = None):
    """Poll until condition() is truthy; fail with the daemon's log when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, http.client.HTTPException, json.JSONDecodeError, sqlite3.Error):
            value = None
        if value:
            return value
        time.sleep(every)
    detail = f"\n--- daemon log ---\n{daemon.log()[-4000:]}" if daemon else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


def served(daemon: Daemon, path: str) -> bytes | None:
    status, _, body = daemon.get(path)
    return body if status == 200 else None


def integrity(database: Path) -> str:
    with sqlite3.connect(database, timeout=10) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def query(database: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(database, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


# --- a local feed server standing in for the internet ---


class FeedSite:
    """An RSS feed on 127.0.0.1 whose items the test changes; honours If-None-Match."""

    def __init__(self, keep_alive: bool = False) -> None:
        self.items: list[tuple[str, str]] = []  # (guid, title)
        self.requests = 0
        self.peers: list[tuple] = []  # the client's (address, port) per request: one per TCP connection
        self.not_modified = 0
        self.fail_with: int | None = None
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_GET(self) -> None:
                site.requests += 1
                site.peers.append(tuple(self.client_address))
                if site.fail_with:
                    self.send_response(site.fail_with)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = site.render()
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                if self.headers.get("If-None-Match") == etag:
                    site.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.rss"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def render(self) -> bytes:
        items = "".join(
            f"<item><title>{title}</title><link>https://example.com/{guid}</link><guid>{guid}</guid>"
            f"<category>World</category><description>{title} in detail, reported today.</description>"
            f"<pubDate>{formatdate(1_760_000_000 + 60 * i, usegmt=True)}</pubDate></item>"
            for i, (guid, title) in enumerate(self.items))
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Remote Wire</title>'
                f"<link>https://example.com/</link><description>test</description>{items}</channel></rss>"
                ).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
