"""Fewer garbage-collector passes while a command or a parse worker runs.

An ingest allocates millions of short-lived containers (parsed entries,
rows, token lists), almost none of them in reference cycles, so reference
counting frees them and the cyclic collector finds nothing. CPython starts
a collector pass every 700 net container allocations: in a first ingest of
10,000 articles that was about 650 passes and 0.4-0.5 s of the main
thread, and 30-40 us per article in a parse worker (bench/README.md). A
pass every 10,000 allocations costs a few hundredths of that; the older
generations keep their default pace, so a long-running daemon still
collects whatever cycles it makes.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


def fewer_passes() -> None:
    """For this process: a young-generation pass every YOUNG_THRESHOLD allocations."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
