"""Large feeds are parsed in a worker process: same result as in place; a dead worker is one feed's error.

And the ingest modules depend on each other one way: fetching hands bodies to parsing, never back.
"""

from __future__ import annotations

import ast
import logging
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

from aggregator.ingest import parsing_pool
from aggregator.config import TopicConfig
from aggregator.dedup.detect import Fingerprint
from aggregator.models import ParseResult
from aggregator.ingest.feed import parse_feed
from aggregator.enrich import chain
from aggregator.enrich import profile
from aggregator.enrich.terms import encoded
from aggregator.enrich.topics import TopicRules
from helpers.command import wait_until


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
    """Parsed as in place, then through the same enrich chain the main thread runs (enrich/chain.py)."""
    data = big_feed()
    assert len(data) >= parsing_pool.POOL_MIN_BYTES
    pooled = parsing_pool.parse_feed_bytes(data, source="s", url="https://news.example/feed", content_type=None)
    inline = parse_feed(data, source="s", url="https://news.example/feed", content_type=None)
    assert parsing_pool._pool is not None  # it really went to the worker
    assert pooled.enriched and not inline.enriched
    assert all(a.terms for a in pooled.articles)  # worked out in the worker, as the store would
    assert [a.terms for a in pooled.articles] == [encoded(a) for a in inline.articles]
    # The chain adds what a parse does not: terms, profile, and the language when the feed declares none.
    assert [a.profile for a in pooled.articles] == [profile.encoded(a) for a in inline.articles]
    unparsed = {"terms": "", "profile": "", "language": ""}
    assert [asdict(a) | unparsed for a in pooled.articles] == [asdict(a) for a in inline.articles]
    assert pooled.articles == [chain.enrich(a, chain.steps(TopicRules(()))) for a in inline.articles]
    assert len(pooled.articles) == 300


def test_the_worker_tags_and_fingerprints_as_the_main_thread_would() -> None:
    topics = (TopicConfig(slug="harbour", title="Harbour", keywords=("harbour",), min_score=2),
              TopicConfig(slug="links", title="Links", keywords=("link", "paragraph 7")),
              TopicConfig(slug="own", title="Own", keywords=("nothing in these stories",)))
    data = big_feed()
    pooled = parsing_pool.parse_feed_bytes(data, source="s", url="https://news.example/feed", content_type=None,
                                           topics=topics, source_topics=("own",))
    inline = parse_feed(data, source="s", url="https://news.example/feed", content_type=None)
    rules = TopicRules(topics, {"s": ("own",)})
    assert pooled.articles == [chain.enrich(a, chain.steps(rules)) for a in inline.articles]
    assert [a.topics for a in pooled.articles] == [tuple(rules.tags(a)) for a in inline.articles]
    assert {a.topics for a in pooled.articles} == {("harbour", "links", "own")}
    assert pooled.fingerprints.keys() == {a.id for a in pooled.articles}
    for article in pooled.articles[:20]:
        mine = Fingerprint.of(article)
        theirs = pooled.fingerprints[article.id]
        assert (mine.url_key, mine.body_key, mine.bands) == (theirs.url_key, theirs.body_key, theirs.bands)


def test_a_dead_worker_fails_one_feed_and_the_next_one_parses() -> None:
    """SIGKILL the worker holding a feed: that feed is the error, the next one gets a fresh worker."""
    data = big_feed()
    assert parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None).error is None
    try:
        result, victim = parse_on_a_killed_worker(data)
        assert result.error and "worker process died on this feed: killed by SIGKILL" in result.error
        assert "\n" not in result.error
        again = parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None)
        assert again.error is None and len(again.articles) == 300
        assert victim not in parsing_pool.worker_pids()
    finally:
        parsing_pool.shutdown()
    assert parsing_pool._pool is None


def test_workers_collect_garbage_less_often_and_ignore_ctrl_c() -> None:
    """The worker start-up ran: gcpolicy's young threshold, and SIGINT ignored (the parent stops them)."""
    import gc

    from aggregator.gcpolicy import YOUNG_THRESHOLD

    pool = parsing_pool.workers()
    try:
        assert pool.call(gc.get_threshold)[0] == YOUNG_THRESHOLD
        assert pool.call(signal.getsignal, signal.SIGINT) == signal.SIG_IGN
    finally:
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


def test_a_dead_worker_fails_only_its_own_feed_while_another_parses() -> None:
    """Two feeds on two workers; one worker is killed: the other feed is parsed, not failed with it."""
    data = big_feed()
    pool = parsing_pool.workers()
    try:
        assert pool.size >= 2, "the pool has a worker per core; this machine has fewer than two"
        with pool.lend() as survivor_worker, pool.lend() as victim_worker:
            os.kill(victim_worker.process.pid, signal.SIGKILL)
            survivor = survivor_worker.call(parsing_pool._parse, data, "s", None, None, (), ())
            try:
                victim_worker.call(parsing_pool._parse, data, "s", None, None, (), ())
                raise AssertionError("a killed worker returned a result")
            except parsing_pool.WorkerDied as died:
                assert str(died) == "killed by SIGKILL (out of memory?)"
        assert survivor.error is None and len(survivor.articles) == 300
        assert parsing_pool.worker_pids() == [survivor_worker.process.pid]  # the dead one is gone
    finally:
        parsing_pool.shutdown()


def test_a_worker_killed_while_idle_fails_no_feed() -> None:
    data = big_feed()
    try:
        assert parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None).error is None
        idle = parsing_pool.worker_pids()
        for pid in idle:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(alive(pid) for pid in idle), "the idle workers to die", timeout=20.0)
        result = parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None)
        assert result.error is None and len(result.articles) == 300
        assert not set(idle) & set(parsing_pool.worker_pids())
    finally:
        parsing_pool.shutdown()


def test_a_bug_in_the_worker_is_raised_in_the_caller_and_the_worker_stays() -> None:
    """Our own bugs still raise (with the worker's traceback as the cause); the worker is not lost."""
    pool = parsing_pool.workers()
    try:
        pool.call(os.getpid)
        before = parsing_pool.worker_pids()
        try:
            pool.call(int, "not a number")
            raise AssertionError("the worker's ValueError was swallowed")
        except ValueError as exc:
            assert isinstance(exc.__cause__, parsing_pool.RemoteTraceback)
            assert "Traceback" in str(exc.__cause__)
        assert parsing_pool.worker_pids() == before
    finally:
        parsing_pool.shutdown()


def test_feeds_on_many_threads_while_workers_keep_dying_all_get_an_answer() -> None:
    """The old executor raised `OSError: handle is closed` or hung when a submit raced its break-up.

    Here eight threads parse while workers are SIGKILLed over and over: every
    call returns a result or this feed's error, none raises, none waits forever.
    """
    data = big_feed()
    answers: list[ParseResult] = []
    failures: list[BaseException] = []

    def parse_some() -> None:
        try:
            for _ in range(6):
                answers.append(parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None))
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever escaped
            failures.append(exc)

    threads = [threading.Thread(target=parse_some) for _ in range(8)]
    deadline = time.monotonic() + 90
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            for pid in parsing_pool.worker_pids()[:1]:
                kill_quietly(pid)
            for thread in threads:
                thread.join(0.02)
        assert not any(t.is_alive() for t in threads), "a parse never returned"
        assert not failures, failures
        assert len(answers) == 48
        assert all(a.error is None or "worker process died on this feed" in a.error for a in answers)
        assert any(a.error for a in answers), "no worker was killed while it held a feed"
        assert parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None).error is None
    finally:
        for thread in threads:
            thread.join(60)
        parsing_pool.shutdown()


# --- helpers ---


def parse_on_a_killed_worker(data: bytes) -> tuple[ParseResult, int]:
    """Parse `data` on a worker that is SIGKILLed once it holds the feed; (the result, its pid).

    The idle workers are stopped (SIGSTOP) first, so the feed cannot be
    finished before the kill lands, and the kill waits for the pool's own
    word that the feed was handed over: no timing decides the outcome.
    """
    idle = parsing_pool.worker_pids()
    assert idle, "a worker must exist before it can be stopped"
    for pid in idle:
        os.kill(pid, signal.SIGSTOP)
    handed = HandoverLog()
    results: list[ParseResult] = []
    thread = threading.Thread(target=lambda: results.append(
        parsing_pool.parse_feed_bytes(data, source="s", url=None, content_type=None)))
    try:
        thread.start()
        victim = wait_until(lambda: handed.pids, "the pool to hand the feed to a worker", timeout=20.0)[0]
        os.kill(victim, signal.SIGKILL)
        thread.join(30)
    finally:
        handed.close()
        for pid in idle:
            kill_quietly(pid, signal.SIGCONT)
    assert not thread.is_alive(), "the parse did not return after its worker was killed"
    return results[0], victim


class HandoverLog(logging.Handler):
    """Collects the pids from the pool's debug line "<source>: parse worker <pid> has the feed"."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pids: list[int] = []
        self.logger = logging.getLogger("aggregator")
        self.saved_level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("s: parse worker "):
            self.pids.append(int(record.args[1]))

    def close(self) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved_level)
        super().close()


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or reaped while we read
        return False


def kill_quietly(pid: int, signum: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# --- the ingest modules depend on each other one way ---

INGEST = Path(parsing_pool.__file__).parent
PARSE_SIDE = {"feed", "feed_xml", "feed_fast", "feed_json", "feed_entries", "xml_document", "parsing_pool"}
FETCH_SIDE = {"remote", "remote_plan", "remote_state", "http", "http_request", "http_body", "http_errors",
              "http_headers", "transport", "netguard", "concurrency", "feed_links", "full_text"}


def ingest_imports() -> dict[str, set[str]]:
    """Each ingest module -> the ingest modules it uses: imported anywhere in it (type-only
    imports too), or reached as `ingest.name` (the package's load-on-first-use attributes)."""
    names = {p.stem for p in INGEST.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in names:
        tree = ast.parse((INGEST / f"{name}.py").read_text("utf-8"))
        used: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "aggregator.ingest":
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aggregator.ingest."):
                used.add(node.module.rsplit(".", 1)[1])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ingest":
                used.add(node.attr)
        graph[name] = (used & names) - {name}
    return graph


def test_the_ingest_modules_import_each_other_without_a_cycle() -> None:
    graph = ingest_imports()
    assert {"remote", "parsing_pool", "feed"} <= graph.keys()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name not in done:
            for used in graph[name]:
                visit(used, (*path, name))
            done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_parsing_uses_nothing_of_fetching() -> None:
    """remote.py hands bodies to parsing_pool, which parses with feed.py: never the other way round."""
    graph = ingest_imports()
    assert "parsing_pool" in graph["remote"]
    for name in PARSE_SIDE:
        assert not graph[name] & FETCH_SIDE, (name, graph[name] & FETCH_SIDE)
