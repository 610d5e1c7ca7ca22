"""The values that flow between stages.

Every stage takes and returns these plain dataclasses, so a stage can be
tested without the ones before or after it, and no third-party type (a
feedparser dict, a sqlite row, an http.client response) leaks past the module
that imports its library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SiteRelated:
    """One entry of a site's own "Related Posts" block: evidence, not body text."""

    title: str
    author: str = ""


@dataclass(frozen=True)
class Article:
    """One story as it flows between stages, and as we store and publish it.

    `id` is stable: the same input always yields the same id, so ingesting
    twice updates instead of duplicating.

    Frozen: a stage that adds something (topics, salient words, a cluster)
    returns a new Article made with `dataclasses.replace`, so a value a
    stage received never changes under the stage that handed it over. The
    sequences are tuples; a parser may pass lists, which become tuples here.
    """

    id: str
    source: str
    title: str
    site: str = ""
    url: str | None = None
    guid: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    summary: str = ""
    text: str = ""
    content_html: str = ""
    image: str | None = None
    site_related: tuple[SiteRelated, ...] = ()
    origin: str = ""  # file path or feed URL it came from
    content_hash: str = ""
    topics: tuple[str, ...] = ()  # set by the enrich chain's tagging (enrich/chain.py)
    cluster_id: str = ""  # the id of its duplicate cluster's representative, set by dedup
    terms: str = ""  # its salient words (enrich/terms.py), set by the enrich chain; else the store works them out
    profile: str = ""  # its related-post features (enrich/profile.py), set by the enrich chain; else worked out
    language: str = ""  # ISO 639-1, as the source declares it or the enrich chain detects it; "" unknown

    def __post_init__(self) -> None:
        for name in _SEQUENCE_FIELDS:
            value = getattr(self, name)
            if type(value) is not tuple:
                object.__setattr__(self, name, tuple(value))  # the one write a frozen dataclass allows itself


_SEQUENCE_FIELDS = ("authors", "categories", "site_related", "topics")


@dataclass(frozen=True)
class RelatedLink:
    id: str
    title: str
    url: str
    site: str = ""
    published: datetime | None = None


@dataclass(frozen=True)
class RelatedCandidate:
    """A stored article as related-post ranking sees it: its link, cluster and topics, no text.

    Ranking reads a few dozen of these per list; loading whole articles
    (bodies, JSON fields) cost a fifth of a cold publish.
    """
    link: RelatedLink
    cluster_id: str
    topics: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.link.id


@dataclass(frozen=True)
class Skipped:
    """An input we could not use, and why, phrased for the person who owns it."""

    origin: str
    reason: str


@dataclass
class ParseResult:
    """What one input (a file or a fetched feed) produced.

    A builder, filled in by the ingest stage alone (a parser, and the reader
    that names its file or adds the file's state); the stages after it only
    read it. A step that changes its articles (the parse worker's enrich
    chain, full_text.py) returns a new one made with `dataclasses.replace`.
    """

    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None  # the whole input failed (a feed that could not be fetched)
    file: "FileState | None" = None  # a local file's new state, stored with the batch
    unchanged: int = 0  # articles of a local file skipped unread because it did not change
    # True when the articles have been through the enrich chain (enrich/chain.py) where the
    # feed was parsed (a worker process); the main thread enriches the others.
    enriched: bool = False
    # Dedup fingerprints already computed where the feed was parsed, by article id; the
    # main thread computes whatever is missing.
    fingerprints: dict[str, Any] = field(default_factory=dict)
    # What the input was read in spite of (an ill-formed feed recovered leniently, entries past
    # the cap): one line each, without the source's name. The main process logs them; a parse
    # worker cannot.
    warnings: list[str] = field(default_factory=list)
    # The tracebacks of exceptions caught at a unit's boundary (the feed, or one entry, in
    # `error` or `skipped`), for the debug log: again the main process logs them.
    tracebacks: list[str] = field(default_factory=list)


@dataclass
class FileState:
    """What we last stored from one local file, so an unchanged file is neither read nor parsed.

    `mtime_ns` is None when the file was modified too close to when we read
    it for its timestamp to prove a later edit would change it.
    """

    path: str  # absolute
    source: str
    content_hash: str
    size: int
    mtime_ns: int | None
    article_ids: list[str] = field(default_factory=list)


def warning_line(warnings: list[str], shown: int = 3) -> str | None:
    """What a read was read in spite of, as the one line a source's status keeps (None: nothing)."""
    if not warnings:
        return None
    more = len(warnings) - shown
    return "; ".join(warnings[:shown]) + (f" (and {more} more)" if more > 0 else "")


@dataclass
class IngestReport:
    """Counts for one source batch; printed by the CLI and logged by the daemon.

    A builder filled by its one owner, the pipeline's batch of that source
    (pipeline.gather and store_batch); the callers only read it.
    """

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # what was read in spite of a problem (logged too)

    def counts(self) -> str:
        return (f"{self.source}: {self.new} new, {self.updated} updated, "
                f"{self.unchanged} unchanged, {len(self.skipped)} skipped")

    def summary(self) -> str:
        return self.counts() + (f"; error: {self.error}" if self.error else "")


@dataclass(frozen=True)
class LocalFile:
    """A file handed to a local parser: its bytes already read and bounded."""

    path: Path
    data: bytes
    relative: str
