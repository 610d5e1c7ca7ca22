"""Run slow jobs on threads, bounded overall and per key (a feed's host).

A job is only handed to a thread when its key has a free slot, so threads
never sit blocked waiting for a busy host while other hosts' jobs queue
behind them: one slow or rate-limited site cannot stall the rest. Results
come back to the calling thread in batches, everything that finished since
the last batch, which is where the caller does its SQLite writes (one
connection, one thread). Free slots are refilled before a batch is handed
over, so the threads keep fetching while the caller writes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_bounded(items: Iterable[T], key: Callable[[T], str], work: Callable[[T], R],
                limit: int, per_key: int) -> Iterator[list[tuple[T, R]]]:
    """Yield lists of (item, work(item)) in completion order; an exception in work (our bug) propagates."""
    queues: OrderedDict[str, deque[T]] = OrderedDict()
    for item in items:
        queues.setdefault(key(item), deque()).append(item)
    active: dict[str, int] = {k: 0 for k in queues}
    running: dict[Future, tuple[T, str]] = {}
    limit, per_key = max(1, limit), max(1, per_key)
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="fetch") as pool:

        def fill() -> None:
            progressed = True
            while progressed and len(running) < limit:
                progressed = False
                for k in list(queues):  # one job per key per round: round robin across hosts
                    if len(running) >= limit:
                        break
                    if active[k] < per_key and queues[k]:
                        item = queues[k].popleft()
                        running[pool.submit(work, item)] = (item, k)
                        active[k] += 1
                        progressed = True
                    if not queues[k]:
                        del queues[k]

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            finished = []
            for future in done:
                item, k = running.pop(future)
                active[k] -= 1
                finished.append((item, future.result()))
            fill()
            yield finished
