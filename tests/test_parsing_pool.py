"""Large feeds are parsed in a worker process: same result as in place; a dead worker is one feed's error."""

from __future__ import annotations

import os
import time
from dataclasses import asdict

from aggregator import parsing_pool
from aggregator.config import TopicConfig
from aggregator.dedup import Fingerprint
from aggregator.sources.feed import parse_feed
from aggregator.terms import encoded
from aggregator.topics import TopicRules


def big_feed(items: int = 300) -> bytes:
    entries = "".join(
        f"<item><title>Story {i} about the harbour</title><link>https://news.example/{i}</link>"
        f"<guid>https://news.example/{i}</guid><pubDate>Tue, 03 Jun 2025 09:30:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Paragraph {i} of a long enough story, with "
        f"&lt;a href=&quot;https://news.example/{i}/more&quot;&gt;a link&lt;/a&gt;.&lt;/p&gt;</description></item>"
        for i in range(items))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Big</title>'
            f"<link>https://news.example/</link><description>d</description>{entries}</channel></rss>").encode()


def test_a_large_feed_parses_in_a_worker_exactly_as_in_place() -> None:
    data = big_feed()
    assert len(data) >= parsing_pool.POOL_MIN_BYTES
    pooled = parsing_pool.parse_feed_bytes(data, source="s", url="https://news.example/feed", content_type=None)
    inline = parse_feed(data, source="s", url="https://news.example/feed", content_type=None)
    assert parsing_pool._pool is not None  # it really went to the worker
    assert all(a.terms for a in pooled.articles)  # worked out in the worker, as the store would
    assert [a.terms for a in pooled.articles] == [encoded(a) for a in inline.articles]
    assert [asdict(a) | {"terms": ""} for a in pooled.articles] == [asdict(a) for a in inline.articles]
    assert len(pooled.articles) == 300


def test_the_worker_tags_and_fingerprints_as_the_main_thread_would() -> None:
    topics = (TopicConfig(slug="harbour", title="Harbour", keywords=("harbour",), min_score=2),
              TopicConfig(slug="links", title="Links", keywords=("link", "paragraph 7")),
              TopicConfig(slug="own", title="Own", keywords=("nothing in these stories",)))
    data = big_feed()
    pooled = parsing_pool.parse_feed_bytes(data, source="s", url="https://news.example/feed", content_type=None,
                                           topics=topics, source_topics=("own",))
    rules = TopicRules(topics, {"s": ("own",)})
    assert pooled.tags == {a.id: rules.tags(a) for a in pooled.articles}
    assert {tuple(t) for t in pooled.tags.values()} == {("harbour", "links", "own")}
    assert pooled.fingerprints.keys() == pooled.tags.keys()
    for article in pooled.articles[:20]:
        mine = Fingerprint.of(article)
        theirs = pooled.fingerprints[article.id]
        assert (mine.url_key, mine.body_key, mine.bands) == (theirs.url_key, theirs.body_key, theirs.bands)


def test_a_dead_worker_fails_one_feed_and_the_next_one_parses() -> None:
    data = big_feed()
    executor = parsing_pool._executor()
    executor.submit(os._exit, 1)  # a worker dies, as it would on an out-of-memory kill
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        result = parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None)
        if result.error:
            break
        time.sleep(0.05)
    assert result.error and "worker process died" in result.error
    again = parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None)
    assert again.error is None and len(again.articles) == 300
    parsing_pool.shutdown()
    assert parsing_pool._pool is None


def test_workers_collect_garbage_less_often_and_ignore_ctrl_c() -> None:
    """The worker initializer ran: gcpolicy's young threshold, and SIGINT ignored (the parent stops them)."""
    import gc
    import signal

    from aggregator.gcpolicy import YOUNG_THRESHOLD

    executor = parsing_pool._executor()
    assert executor.submit(gc.get_threshold).result(timeout=30)[0] == YOUNG_THRESHOLD
    assert executor.submit(signal.getsignal, signal.SIGINT).result(timeout=30) == signal.SIG_IGN
    parsing_pool.shutdown()


def test_the_daemon_goes_back_to_the_usual_collector_pace() -> None:
    """Commands collect garbage less often; a long-lived process must return to CPython's pace."""
    import gc

    from aggregator import gcpolicy

    saved = gc.get_threshold()
    try:
        gcpolicy.fewer_passes()
        assert gc.get_threshold() == (gcpolicy.YOUNG_THRESHOLD, *saved[1:])
        gcpolicy.usual_passes()
        assert gc.get_threshold() == (700, *saved[1:])
    finally:
        gc.set_threshold(*saved)


def test_a_late_report_of_a_dead_worker_leaves_the_fresh_pool_running() -> None:
    """Every feed in flight on a dead worker's pool fails on its own thread, some after a new pool started.

    Before, each of them stopped whatever pool was current: a late one
    stopped the fresh pool and failed (or crashed) the feeds running on it.
    """
    data = big_feed()
    broken = parsing_pool._executor()
    broken.submit(os._exit, 1).exception(timeout=30)
    fresh_failure = parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None)
    assert fresh_failure.error and "worker process died" in fresh_failure.error
    fresh = parsing_pool._executor()
    assert fresh is not broken
    running = fresh.submit(time.sleep, 0.5)
    parsing_pool._discard(broken)  # the late report
    assert running.result(timeout=30) is None  # not cancelled
    assert parsing_pool._executor() is fresh
    assert parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None).error is None
    parsing_pool.shutdown()
