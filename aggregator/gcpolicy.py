"""Fewer garbage-collector passes while a command or a parse worker runs.

An ingest allocates millions of short-lived containers (parsed entries,
rows, token lists), almost none of them in reference cycles, so reference
counting frees them and the cyclic collector finds nothing. CPython's
default starts a collector pass every 700 net container allocations,
hundreds of useless passes per first ingest; a pass every 10,000
allocations costs a few hundredths of that. The older generations keep
their default pace.

The daemon's own process keeps CPython's default: it lives for weeks and
does a little work at a time, so there the collector costs next to
nothing, while the garbage a 10,000 threshold lets pile up shows as more
resident memory. Measurements: docs/decisions/0011-garbage-collector-pace.md.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
DEFAULT_YOUNG_THRESHOLD = 700  # CPython's


def fewer_passes() -> None:
    """For this process: a young-generation pass every YOUNG_THRESHOLD allocations."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def usual_passes() -> None:
    """For a long-lived process: CPython's default young threshold again."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(DEFAULT_YOUNG_THRESHOLD, middle, old)
