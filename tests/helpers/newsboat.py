"""Subscribe the real newsboat reader to feed URLs, headless, and read what it stored.

newsboat keeps everything in an SQLite cache; `newsboat -x reload` fetches
and parses every subscribed URL without a terminal. A throwaway HOME,
config and cache per call keep the user's own newsboat untouched.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

CONFIG = "download-timeout 15\ndownload-retries 1\nreload-threads 2\nshow-read-feeds yes\n"


@dataclass(frozen=True)
class ReaderFeed:
    url: str
    title: str
    link: str
    items: list[tuple[str, str, str]]  # (title, url, guid) in feed order


def newsboat_read(urls: list[str], workdir: Path, timeout: float = 60) -> dict[str, ReaderFeed]:
    """What newsboat shows for each URL; raises with newsboat's log when it reports an error."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    (workdir / "urls").write_text("".join(f'"{u}"\n' for u in urls), encoding="utf-8")
    (workdir / "config").write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"), "http_proxy": "", "https_proxy": "",
           "HTTP_PROXY": "", "HTTPS_PROXY": "", "no_proxy": "127.0.0.1"}
    log = workdir / "newsboat.log"
    done = subprocess.run(
        ["newsboat", "-u", str(workdir / "urls"), "-c", str(workdir / "cache.db"), "-C", str(workdir / "config"),
         "-x", "reload", "-d", str(log), "-l", "4"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    errors = [line for line in log.read_text(errors="replace").splitlines()
              if "USERERROR" in line or "ERROR:" in line] if log.exists() else []
    if done.returncode != 0 or errors:
        raise AssertionError(f"newsboat failed ({done.returncode}): {done.stdout}{done.stderr}{errors}")
    return _read_cache(workdir / "cache.db")


def _read_cache(cache: Path) -> dict[str, ReaderFeed]:
    with sqlite3.connect(cache) as db:
        feeds = {}
        for rss_url, title, link in db.execute("SELECT rssurl, title, url FROM rss_feed"):
            items = db.execute("SELECT title, url, guid FROM rss_item WHERE feedurl = ? AND deleted = 0 "
                               "ORDER BY id DESC", [rss_url]).fetchall()
            feeds[rss_url] = ReaderFeed(rss_url, title, link, [tuple(i) for i in items])
    return feeds
