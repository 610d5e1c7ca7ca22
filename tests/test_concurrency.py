"""run_bounded: every job's result comes back once, hosts are capped, and free
slots are refilled before a batch of results is handed to the caller, so
fetching goes on while the caller writes."""

from __future__ import annotations

import threading
import time

from aggregator.ingest.concurrency import run_bounded


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
    assert first == [(0, 0)] and [pair for batch in batches for pair in batch] == [(1, 1)]
