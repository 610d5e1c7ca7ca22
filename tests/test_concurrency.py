"""run_bounded: every job's result comes back once, hosts are capped, and free
slots are refilled before a batch of results is handed to the caller, so
fetching goes on while the caller writes."""

from __future__ import annotations

import re
import threading
import time

from aggregator.ingest.concurrency import run_bounded


def workers() -> list[threading.Thread]:
    """run_bounded's worker threads still alive (named fetch-0, fetch-1, ...)."""
    return [t for t in threading.enumerate() if re.fullmatch(r"fetch-\d+", t.name)]


def test_every_result_comes_back_once_and_no_host_exceeds_its_cap() -> None:
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def work(item: tuple[str, int]) -> int:
        host, n = item
        with lock:
            running[host] = running.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), running[host])
        time.sleep(0.005)
        with lock:
            running[host] -= 1
        return n * n

    items = [(f"host{n % 3}", n) for n in range(30)]
    results = [pair for batch in run_bounded(items, key=lambda i: i[0], work=work, limit=6, per_key=2)
               for pair in batch]
    assert sorted(results) == sorted((item, item[1] ** 2) for item in items)
    assert max(peak.values()) <= 2


def test_the_next_job_starts_while_the_caller_still_holds_a_batch() -> None:
    second_started = threading.Event()

    def work(n: int) -> int:
        if n == 1:
            second_started.set()
        return n

    batches = run_bounded([0, 1], key=lambda n: "one-host", work=work, limit=1, per_key=1)
    first = next(batches)
    # The caller is "writing" the first batch; the only slot must already be working on job 1.
    assert second_started.wait(timeout=5), "the free slot was not refilled before the batch was handed over"
    # Job 1 may have finished before the caller took its batch: then the batch carries both.
    assert first[0] == (0, 0) and first + [pair for batch in batches for pair in batch] == [(0, 0), (1, 1)]


def test_an_exception_in_a_job_reaches_the_caller_and_no_new_job_starts() -> None:
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        if n == 0:
            raise RuntimeError("our bug")
        time.sleep(0.01)
        return n

    try:
        for _batch in run_bounded(range(50), key=lambda n: "one-host", work=work, limit=4, per_key=1):
            pass
    except RuntimeError as exc:
        assert str(exc) == "our bug"
    else:
        raise AssertionError("the job's exception was swallowed")
    assert len(started) < 50 and not workers()


def test_many_threads_on_one_busy_host_all_end() -> None:
    """Workers waiting for the one host's slot are released when its last job is out."""
    results = [pair for batch in run_bounded(range(40), key=lambda n: "one-host", work=lambda n: -n,
                                             limit=16, per_key=2) for pair in batch]
    assert sorted(results) == [(n, -n) for n in range(40)]
    assert not workers()


def test_results_waiting_for_a_slow_caller_do_not_pile_up() -> None:
    """The threads run ahead of the caller by at most `limit` jobs: a first ingest of thousands
    of feeds whose writes are slower than its fetches keeps a few parsed feeds in memory, not all."""
    lock = threading.Lock()
    started, received, ahead = 0, 0, []

    def work(item: int) -> int:
        nonlocal started
        with lock:
            started += 1
            ahead.append(started - received)
        return item

    done = []
    for batch in run_bounded(range(60), key=lambda i: f"host-{i % 6}", work=work, limit=3, per_key=2):
        with lock:
            received += len(batch)
        done += [item for item, _ in batch]
        time.sleep(0.01)  # the caller's writes, slower than the jobs
    assert sorted(done) == list(range(60))
    assert max(ahead) <= 3 + 3  # at most `limit` out beyond the batch the caller holds
