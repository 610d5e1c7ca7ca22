"""A remote feed source, fetched: a FetchJob in, a FetchOutcome (ParseResults and new state) out.

Three steps, so the pipeline can run the middle one on many threads while
only its own thread touches SQLite:

    plan_from_store(config, store, source)  -> FetchJob       remote_plan.py decides (no I/O)
    run_fetch(job, fetcher)                 -> FetchOutcome   HTTP + parse here, no database;
                                                              remote_state.py says what they mean
    (pipeline)                              store_results(..., source_state=outcome.state)

This module performs; it decides nothing the two pure modules can. Every
failure becomes a value in the outcome, never an exception.

The body decides what it is, not its Content-Type. A web page that links to
a feed (`<link rel="alternate" type="application/rss+xml" href=...>`) is
followed once, to that feed, with the same fetcher and network policy; the
feed's URL is then fetched directly, like a permanent redirect, and the
source's row keeps the page in `found_on` so `aggregator sources` says how
the feed was found. If that feed fails, the next fetch asks the page again.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator import ingest
from aggregator.config import Config, SourceConfig
from aggregator.ingest import remote_state
from aggregator.ingest.http import Fetcher, FetchLimits, FetchResult, Login
from aggregator.ingest.remote_plan import FetchJob, now_utc, plan_fetch
from aggregator.ingest.remote_state import FetchOutcome, http_error, refused_type
from aggregator.models import ParseResult

__all__ = ["FetchJob", "FetchOutcome", "new_fetcher", "plan_from_store", "read_login", "run_fetch"]

log = logging.getLogger("aggregator")


def plan_from_store(config: Config, store: Any, source: SourceConfig, *, honour_schedule: bool = False,
                    now: datetime | None = None, state: dict[str, Any] | None = None) -> FetchJob:
    """plan_fetch with what the store knows: the source's state, and for full_text its stored articles.

    `state` is the source's stored row when the caller already read every row at once.
    """
    state = store.source_state(source.name) if state is None else state
    job = plan_fetch(config, source, state, honour_schedule=honour_schedule, now=now)
    if source.full_text and not job.skip:
        job = dataclasses.replace(job, known=store.content_hashes_of_source(source.name))
    return job


def run_fetch(job: FetchJob, fetcher: Fetcher, now: datetime | None = None,
              rng: random.Random | None = None) -> FetchOutcome:
    """Fetch, interpret the HTTP answer, parse; every failure becomes a value."""
    if job.skip:
        return remote_state.not_fetched(job)
    now = now or now_utc()
    try:
        login = read_login(job.source)
    except OSError as exc:
        return remote_state.failed(job, now, f"cannot read password_file {job.source.password_file}: "
                                             f"{exc.strerror or exc}; fix the path or the file's permissions", rng)
    fetched = fetcher.fetch(job.url, job.policy, job.etag, job.last_modified, login=login)
    outcome = remote_state.answered(job, fetched, now, rng)
    if outcome is None:
        return _read(job, fetched, fetcher, login, now, rng)
    if outcome.state is not None and outcome.state["status"] == "ok":
        _log_move(job, fetched)
    return outcome


def _read(job: FetchJob, page: FetchResult, fetcher: Fetcher, login: Login | None, now: datetime,
          rng: random.Random | None) -> FetchOutcome:
    """Parse a 2xx body; follow a web page's feed link once; fetch full text where the source asks."""
    fetched, result, found_on, elapsed = page, _parse_body(job, page), None, page.elapsed
    if result.error and not job.found_on and (link := ingest.feed_links.linked_feed(page)):
        found = _follow_feed_link(job, page, link, fetcher, login)
        elapsed += found.fetched.elapsed
        if found.error or found.result is None:
            return remote_state.failed(job, now, found.error or "", rng, http_status=page.status, elapsed=elapsed)
        job, fetched, result, found_on = dataclasses.replace(job, url=link), found.fetched, found.result, page.final_url
    if result.error:
        return remote_state.failed(job, now, ingest.feed_links.explain_not_feed(result.error, fetched), rng,
                                   http_status=fetched.status, elapsed=elapsed)
    if job.source.full_text:
        result = ingest.full_text.with_full_text(result, job, fetcher)
    outcome = remote_state.feed_read(job, fetched, result, now, found_on=found_on, elapsed=elapsed)
    _log_move(job, fetched)
    return outcome


def _log_move(job: FetchJob, fetched: FetchResult) -> None:
    if remote_state.moved(job, fetched):
        log.warning("%s: the feed moved permanently (HTTP %s) to %s; fetching it there from now on "
                    "(update url in the config)", job.source.name, fetched.redirects[-1][0], fetched.moved_to)


def _parse_body(job: FetchJob, fetched: FetchResult) -> ParseResult:
    """The body as a feed: parsed in a worker process when it is large (parsing_pool)."""
    return ingest.parsing_pool.parse_feed_bytes(
        fetched.body or b"", source=job.source.name, url=fetched.final_url,
        content_type=fetched.content_type or None, topics=job.topics, source_topics=job.source.topics,
        max_entries=job.max_entries)


@dataclass(frozen=True)
class FoundFeed:
    """The fetch of the feed a page links to: its answer and parse, or why it is no use."""

    fetched: FetchResult
    result: ParseResult | None = None
    error: str | None = None


def _follow_feed_link(job: FetchJob, page: FetchResult, link: str, fetcher: Fetcher,
                      login: Login | None) -> FoundFeed:
    """Fetch and parse the feed a page links to: one hop, never a page found there in turn.

    Same fetcher and network policy as the page (address checks, limits,
    deadline); no validators, as the stored ones belong to the URL asked before.
    """
    where = f"{page.final_url} is a web page, not a feed; it links to the feed {link}"
    fetched = fetcher.fetch(link, job.policy, login=login)
    if fetched.error or fetched.status is None or not 200 <= fetched.status < 300:
        return FoundFeed(fetched, error=f"{where}, which failed: {fetched.error or http_error(fetched)}")
    if kind := refused_type(fetched):
        return FoundFeed(fetched, error=f"{where}, which is {kind}, not a feed; check the source's url")
    result = _parse_body(job, fetched)
    if result.error:
        return FoundFeed(fetched, error=f"{where}, which we cannot read: {result.error}")
    log.warning("%s: %s is a web page; reading the feed it links to, %s (put that URL in the source's url "
                "to save a fetch)", job.source.name, page.final_url, fetched.moved_to or link)
    return FoundFeed(fetched, result)


def read_login(source: SourceConfig) -> Login | None:
    """The source's Basic-authorization login (None without one); OSError if its password file is unreadable.

    Read at each fetch, so a rotated password needs no restart and the
    password is held only while the fetch runs.
    """
    if not source.username or source.password_file is None:
        return None
    return Login(source.username, source.password_file.read_text("utf-8").rstrip("\r\n"))


def new_fetcher(config: Config) -> Fetcher:
    """A Fetcher with the config's [fetch] limits, connection counts and User-Agent."""
    limits = FetchLimits(timeout=config.fetch.timeout, max_body_size=config.fetch.max_body_size)
    return Fetcher(limits, max_connections=config.fetch.concurrency, user_agent=config.fetch.user_agent,
                   per_host=config.fetch.per_host)
