"""What a loaded config is: frozen values, and every default in one place.

Each dataclass is one table of config.toml; a field's default is what a
missing key means. Defaults that are not a field's (how often a source is
fetched when it names no interval, the bounds of "auto") are constants
here too, so every other module reads them from this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = "config.toml"
FORMATS = ("atom", "rss", "json")

# Fetch intervals, in seconds.
LOCAL_INTERVAL = 300.0  # a [[sources]] path without `interval`: how often the file or folder is read
REMOTE_INTERVAL = 900.0  # a [[sources]] url without `interval`
AUTO_DEFAULT = 3600.0  # interval = "auto" before the feed's own pace is learned
AUTO_MIN, AUTO_MAX = 15 * 60.0, 24 * 3600.0  # the bounds of a learned "auto" interval


@dataclass(frozen=True)
class SiteConfig:
    title: str = "News Digest"
    base_url: str = "http://127.0.0.1:8080/"
    description: str = ""
    language: str = "en"


@dataclass(frozen=True)
class StorageConfig:
    database: Path = Path("aggregator.db")
    feeds_dir: Path = Path("feeds")
    keep_days: int = 0
    max_articles_per_source: int = 0


@dataclass(frozen=True)
class PublishConfig:
    max_items: int = 50
    related_posts: int = 5
    formats: tuple[str, ...] = FORMATS
    full_content: bool = True
    websub_hub: str = ""  # a WebSub hub: named in every feed, told after each publish that changed feeds


@dataclass(frozen=True)
class IngestConfig:
    known_categories: tuple[str, ...] = ()
    max_file_size: int = 10 * 1024 * 1024
    max_entries: int = 20_000  # entries read from one feed (fetched or a file) or JSON list; the rest are left


@dataclass(frozen=True)
class FetchConfig:
    timeout: float = 30.0
    max_body_size: int = 10 * 1024 * 1024
    concurrency: int = 16
    per_host: int = 2
    allow_private_network: bool = False
    user_agent: str = ""  # empty: "aggregator/<version> (+<project URL>)"


@dataclass(frozen=True)
class DedupConfig:
    threshold: float = 0.75  # overlap of shingles; measured by bench/eval_quality.py


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:8080"


@dataclass(frozen=True)
class SourceConfig:
    name: str
    path: Path | None = None
    url: str | None = None
    topics: tuple[str, ...] = ()
    interval: float | None = None  # seconds; None means "auto"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_private_network: bool = False
    full_text: bool = False
    enabled: bool = True
    username: str = ""  # with password_file: Basic authorization, kept out of the URL (and so out of every output)
    password_file: Path | None = None  # read at each fetch; its content is never logged or printed
    home_page: str = ""  # the site's own page (OPML htmlUrl): kept by import, written back by export

    @property
    def kind(self) -> str:
        return "local" if self.path is not None else "remote"

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else str(self.url)


@dataclass(frozen=True)
class TopicConfig:
    slug: str
    title: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_score: float = 1.0
    languages: tuple[str, ...] = ()  # ISO 639-1 codes; empty: every language. Unknown never excludes.


@dataclass(frozen=True)
class Config:
    path: Path
    site: SiteConfig = field(default_factory=SiteConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    sources: tuple[SourceConfig, ...] = ()
    topics: tuple[TopicConfig, ...] = ()

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)
