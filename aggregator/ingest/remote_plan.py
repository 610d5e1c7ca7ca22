"""When to fetch a feed and what to ask for: config and stored state in, a FetchJob out.

A pure decider, in the manner of reader's `_update.py`: it reads the
source's stored row and touches nothing, no network, no database. What it
decides, remote.py performs.

A source's row restarts when its config changes (`fingerprint`): a new URL
or interval is a new source, even one that was gone. A gone source (HTTP
410) and one the server asked to wait (Retry-After) are not fetched; one
that is not due yet is not fetched when the caller honours the schedule
(the daemon), and is by `run --once`, whose conditional GET keeps it cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aggregator.config import AUTO_DEFAULT, Config, IngestConfig, SourceConfig
from aggregator.enrich.dates import iso_utc
from aggregator.ingest.netguard import NetPolicy


@dataclass(frozen=True)
class FetchJob:
    """One fetch as decided: what to request and with which validators, or why it is not made now."""

    source: SourceConfig
    url: str
    policy: NetPolicy
    fingerprint: str
    etag: str | None = None
    last_modified: str | None = None
    error_count: int = 0
    interval: float = AUTO_DEFAULT  # the regular interval for this source now
    skip: str | None = None  # why it is not fetched this time (gone, Retry-After, not due)
    quiet_skip: bool = False  # not due yet: nothing to report
    fresh: bool = False  # first fetch since the source's config changed: forget the old state
    recorded_ok_at: datetime | None = None  # when an OK fetch was last written to the store
    found_on: str | None = None  # the web page `url` was found on, when the configured URL is a page
    known: dict[str, str] = field(default_factory=dict)  # full_text sources: stored id -> content hash
    topics: tuple = ()  # the config's TopicConfigs: articles are tagged where the feed is parsed
    max_entries: int = IngestConfig.max_entries  # entries read from the feed ([ingest] max_entries)


def fingerprint(source: SourceConfig) -> str:
    """What identifies a remote source's config: a change restarts its state (even 'gone')."""
    identity = [source.url, source.allow_private_network, source.interval]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def policy_for(config: Config, source: SourceConfig) -> NetPolicy:
    """What the source's fetches may reach: private addresses only where the config allows them."""
    return NetPolicy(allow_private=config.fetch.allow_private_network or source.allow_private_network)


def plan_fetch(config: Config, source: SourceConfig, state: dict[str, Any], *,
               honour_schedule: bool = False, now: datetime | None = None) -> FetchJob:
    """Decide what to request: URL, validators, or why not to fetch now."""
    now = now or now_utc()
    print_ = fingerprint(source)
    policy = policy_for(config, source)
    assert source.url is not None
    parsing = {"topics": config.topics, "max_entries": config.ingest.max_entries}
    if state.get("fingerprint") != print_:
        return FetchJob(source, source.url, policy, print_, interval=regular_interval(source, {}), fresh=True,
                        **parsing)
    job = FetchJob(source, state.get("url") or source.url, policy, print_, state.get("etag"),
                   state.get("last_modified"), state.get("error_count") or 0,
                   regular_interval(source, state),
                   recorded_ok_at=_parse_time(state.get("last_fetch")) if state.get("status") == "ok" else None,
                   found_on=state.get("found_on"), **parsing)
    if state.get("status") == "gone":
        return _skip(job, f"gone (HTTP 410 on {state.get('last_fetch') or '?'}): the publisher removed the "
                          "feed; not fetched until you change or remove this source in the config",
                     quiet=honour_schedule)
    retry = _parse_time(state.get("retry_after"))
    if retry and retry > now:
        return _skip(job, f"not fetched: the server asked us to wait until {iso_utc(retry)} (Retry-After)",
                     quiet=honour_schedule)
    due = _parse_time(state.get("next_due"))
    if honour_schedule and due and due > now:
        return _skip(job, "not due", quiet=True)
    return job


def _skip(job: FetchJob, reason: str, quiet: bool) -> FetchJob:
    return dataclasses.replace(job, skip=reason, quiet_skip=quiet)


def regular_interval(source: SourceConfig, state: dict[str, Any]) -> float:
    """The configured interval, or for "auto" the one learned from the feed's own pace."""
    if source.interval is not None:
        return source.interval
    learned = state.get("interval_seconds")
    return float(learned) if learned else AUTO_DEFAULT


def now_utc() -> datetime:
    """Now, to the second: the precision every stored time has."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def _parse_time(value: str | None) -> datetime | None:
    """A stored time, or None for none or one a hand edit made unreadable."""
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
