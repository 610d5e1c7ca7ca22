"""Where things are published: feed file names, their URLs, entry ids and article links.

Cheap to import (no feedgen): the CLI and the daemon name the feeds they
list or serve with these, and every renderer names what it writes with them.
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from pathlib import Path

from aggregator.config import TopicConfig
from aggregator.enrich.urls import safe_url

ID_NAMESPACE = uuid.UUID("5b0c6b3e-43a4-4c43-9d8e-6f1d2e3a9b71")
ALL_TOPIC = TopicConfig(slug="all", title="All articles", description="Every article, newest first")
EXTENSIONS = {"atom": "atom", "rss": "rss", "json": "json"}
MIME_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}")
# An article's id and link are asked for once per feed, format and related list that shows
# it; both are pure functions of strings, so each is worked out once and then looked up.
NAMES_KEPT = 16384


@lru_cache(maxsize=NAMES_KEPT)
def entry_id(article_id: str) -> str:
    """Globally unique and stable across topics and base URL changes (newsboat keys on it)."""
    return f"urn:uuid:{uuid.uuid5(ID_NAMESPACE, article_id)}"


@lru_cache(maxsize=NAMES_KEPT)
def article_link(base_url: str, article_id: str, url: str | None) -> str:
    """The article's own URL, or the page we publish for a local article."""
    return safe_url(url) or f"{base_url}articles/{page_name(article_id)}"


def page_name(article_id: str) -> str:
    """A local article page's file name: the id when it is a plain token, never a path."""
    if SAFE_NAME.fullmatch(article_id):
        return f"{article_id}.html"
    return f"{uuid.uuid5(ID_NAMESPACE, article_id).hex}.html"


def feed_path(feeds_dir: Path, slug: str, fmt: str) -> Path:
    return feeds_dir / f"{slug}.{EXTENSIONS[fmt]}"


def feed_url(base_url: str, slug: str, fmt: str) -> str:
    return f"{base_url}{slug}.{EXTENSIONS[fmt]}"
