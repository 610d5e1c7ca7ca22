"""Telling a WebSub hub that a feed we publish changed, so subscribers get it at once.

A reader that supports WebSub subscribes at the hub named by the feed's
`<link rel="hub">` and is pushed new items instead of polling us. After a
publish that changed feeds, each changed feed's public URL is POSTed to
the hub as `hub.mode=publish`, `hub.url=<feed>` (the form hubs accept from
publishers: Google's, Superfeedr, WebSub.rocks). A hub that is down costs
a few retries and a warning; the feeds are already written, and readers
that poll still get them.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import certifi
from urllib3 import PoolManager, Timeout
from urllib3.exceptions import HTTPError

from aggregator.config import Config
from aggregator.ingest.netguard import BlockedAddress, NetPolicy
from aggregator.ingest.transport import pool_manager
from aggregator.redact import redact

log = logging.getLogger("aggregator")

ATTEMPTS = 3
UNREACHABLE = "network error"
FEED_SUFFIXES = {".atom", ".rss", ".json"}
FIRST_PAUSE = 1.0  # seconds before the second attempt; doubled before each next one


@dataclass
class HubReport:
    notified: list[str] = field(default_factory=list)  # feed URLs the hub accepted
    failed: list[str] = field(default_factory=list)  # one line per feed URL the hub never accepted


def notify_hub(hub: str, feed_urls: list[str], policy: NetPolicy, timeout: float = 10.0,
               attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> HubReport:
    """POST each URL to the hub; retry network errors, 429 and 5xx; never raise."""
    report = HubReport()
    if not feed_urls:
        return report
    with _hub_pool(hub, policy) as manager:
        for i, url in enumerate(feed_urls):
            error = _notify_one(manager, hub, url, timeout, attempts, sleep)
            if error is None:
                report.notified.append(url)
                continue
            report.failed.append(f"WebSub hub {redact(hub)} did not take {url}: {error}")
            log.warning("%s", report.failed[-1])
            if error.startswith(UNREACHABLE):  # the others would wait as long for the same answer
                untried = len(feed_urls) - i - 1
                if untried:
                    report.failed.append(f"WebSub hub {redact(hub)}: {untried} more changed feeds not announced")
                    log.warning("%s", report.failed[-1])
                break
    return report


def announce(config: Config, written: list[Path]) -> threading.Thread | None:
    """Tell the configured hub about the feed files a publish changed, on a thread of its own.

    The thread is not a daemon thread: `run --once` waits for it (bounded by
    the attempts and timeouts) instead of cutting the announcement off.
    """
    hub = config.publish.websub_hub
    feeds_dir = config.storage.feeds_dir
    urls = [config.site.base_url + path.relative_to(feeds_dir).as_posix() for path in written
            if path.suffix in FEED_SUFFIXES and path.parent == feeds_dir]
    if not hub or not urls:
        return None
    policy = NetPolicy(allow_private=config.fetch.allow_private_network)
    thread = threading.Thread(target=notify_hub, args=(hub, urls, policy, min(config.fetch.timeout, 10.0)),
                              name="websub", daemon=False)
    thread.start()
    return thread


def _notify_one(manager: PoolManager, hub: str, url: str, timeout: float, attempts: int,
                sleep: Callable[[float], None]) -> str | None:
    pause, error = FIRST_PAUSE, "not tried"
    for attempt in range(attempts):
        if attempt:
            sleep(pause)
            pause *= 2
        try:
            response = manager.request("POST", hub, fields={"hub.mode": "publish", "hub.url": url},
                                       encode_multipart=False, redirect=False, retries=False,
                                       timeout=Timeout(total=timeout))
        except BlockedAddress:
            return ("its address is private (loopback, LAN, link-local); set [fetch] allow_private_network "
                    "= true if the hub is meant to be on this network")
        except HTTPError as exc:
            error = f"{UNREACHABLE} ({exc.__class__.__name__}: {exc})"
            continue
        if 200 <= response.status < 300:
            return None
        error = f"HTTP {response.status} {response.reason or ''}".strip()
        if response.status < 500 and response.status != 429:
            return error + "; check [publish] websub_hub"  # the hub refused it: retrying will not help
    return error + f" after {attempts} attempts; the next publish that changes the feed tries again"


class _hub_pool:
    """A pool manager under the same network policy as fetching (no private addresses unless allowed)."""

    def __init__(self, hub: str, policy: NetPolicy):
        tls = ssl.create_default_context(cafile=certifi.where()) if hub.lower().startswith("https:") else None
        self.manager = pool_manager(policy, tls, 1)

    def __enter__(self) -> PoolManager:
        return self.manager

    def __exit__(self, *exc: object) -> None:
        self.manager.clear()
