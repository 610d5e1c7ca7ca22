"""`aggregator init [DIR]`: a commented config.toml to start from, and the folders it names.

The starter runs as written (a local folder source, one topic, feeds
published next to it), so `aggregator check` accepts it and `aggregator
run --once` works before the user adds a single feed; every other key is
shown commented out with its default, as a reference.
"""

from __future__ import annotations

from pathlib import Path

STARTER = '''\
# aggregator configuration. Paths are relative to this file.
# `aggregator check` validates it; `aggregator run --once` ingests and publishes once;
# `aggregator run` keeps running (scheduler + HTTP server). README.md documents every key.

[site]
title = "My news digest"
base_url = "http://127.0.0.1:8080/"   # where feeds/ is served: ids and self links use it
# description = ""
# language = "en"

[storage]
database = "aggregator.db"
feeds_dir = "feeds"

# [publish]
# max_items = 50             # entries per feed
# related_posts = 5          # related posts listed under each entry

# [fetch]
# timeout = "30s"
# max_body_size = "20MB"
# allow_private_network = false   # true to fetch from this machine or the LAN

# [server]
# listen = "127.0.0.1:8080"

# A local folder: drop saved pages, Markdown, HTML or feed files in it.
[[sources]]
name = "Inbox"
path = "articles"

# A remote feed (RSS, Atom or JSON Feed); or run `aggregator sources add URL`.
# [[sources]]
# name = "Example News"
# url = "https://news.example/feed.xml"
# topics = ["world"]         # topics every article of this source gets
# interval = "30m"           # default: adapts to how often the feed changes

# One topic: one Atom, RSS and JSON feed. Articles match by words, categories or regexes.
[topics.world]
title = "World"
keywords = ["election", "ceasefire", "summit"]
# categories = ["World"]
# exclude = ["football"]
# regex = ['\\bUN\\b']
'''


class InitError(ValueError):
    """init would overwrite something; str() says what."""


def write_starter(folder: Path) -> Path:
    """config.toml and its articles/ folder in `folder` (created if missing); never overwrites a config."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    if config.exists():
        raise InitError(f"{config} already exists; edit it, or choose another folder")
    (folder / "articles").mkdir(exist_ok=True)
    config.write_text(STARTER, encoding="utf-8")
    return config
