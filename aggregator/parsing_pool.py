"""Feed parsing in worker processes, one per core.

Fetching runs on threads and storing on the main thread, all under one GIL;
parsing a large feed is pure CPU (decode, sanitize, extract text, fingerprint,
tag), so it goes to worker processes. The main thread's deduplication and
SQLite need about half a core while the workers need more than one, so there
is a worker for every core, the main thread's included: on two cores, two
workers made a first ingest of 10,000 articles 7-25% faster than one (six
alternating pairs) for 50 MB more memory. Small feeds are parsed in place:
sending them costs more than it saves.
Workers come from a forkserver (never a fork of this threaded process) that
preloads the parser, ignore Ctrl-C (the parent stops them), and a crashed
worker becomes that feed's error, never the run's.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .config import TopicConfig
from .models import ParseResult
from .sources.feed import parse_feed
from .topics import TopicRules

POOL_MIN_BYTES = 64 * 1024
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def parse_feed_bytes(data: bytes, *, source: str, url: str | None, content_type: str | None,
                     topics: tuple[TopicConfig, ...] = (), source_topics: tuple[str, ...] = ()) -> ParseResult:
    """parse_feed, in a worker process when the feed is large and a second core exists.

    There the articles are also fingerprinted for dedup and tagged with `topics`
    (`source_topics`: the topics the source puts every article in).
    """
    if len(data) < POOL_MIN_BYTES or (os.cpu_count() or 1) < 2:
        return parse_feed(data, source=source, url=url, content_type=content_type)
    pool = _executor()
    try:
        return pool.submit(_parse, data, source, url, content_type, topics, source_topics).result()
    except BrokenProcessPool:
        _discard(pool)  # the next feed starts a fresh worker
        return ParseResult(error="the feed parser's worker process died on this feed "
                                 "(out of memory?); it will be retried")


def _parse(data: bytes, source: str, url: str | None, content_type: str | None,
           topics: tuple[TopicConfig, ...], source_topics: tuple[str, ...]) -> ParseResult:
    """In the worker: parse, then fingerprint, tag and find salient words (pure CPU, off the main thread)."""
    from .dedup import Fingerprint
    from .terms import encoded

    result = parse_feed(data, source=source, url=url, content_type=content_type)
    for article in result.articles:
        result.fingerprints[article.id] = Fingerprint.of(article)
        article.terms = encoded(article)  # right after the fingerprint: its text fold is remembered
    rules = TopicRules(topics, {source: source_topics})  # its topics compiled once per process (topics.py)
    result.tags = {a.id: rules.tags(a) for a in result.articles}
    return result


def _start_worker() -> None:
    """Ignore Ctrl-C (the parent stops the pool) and collect garbage less often (gcpolicy.py)."""
    from .gcpolicy import fewer_passes

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fewer_passes()


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["aggregator.sources.feed", "aggregator.dedup", "aggregator.topics",
                                             "aggregator.terms"])
            _pool = ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=context,
                                        initializer=_start_worker)
        return _pool


def _discard(broken: ProcessPoolExecutor) -> None:
    """Drop a pool that broke, unless a thread that saw it break first has already replaced it.

    Every feed in flight on a broken pool fails, each on its own fetch
    thread. Stopping whatever pool is current would let a late one stop the
    fresh pool other threads are already using, failing their feeds too.
    """
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the workers (tests call this; interpreter exit stops them too)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None
