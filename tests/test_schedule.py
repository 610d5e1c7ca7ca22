"""The daemon's schedule: each source on a fixed grid, spread by whole seconds, the interval kept.

APScheduler 3's own jitter counts each run from the previous run's delayed
time, so the delays add up (measured below with its IntervalTrigger); the
grid does not drift, and a run moved off it (the run at start, a reload's
run now) does not shift the ones after it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from apscheduler.triggers.interval import IntervalTrigger

from aggregator.app.schedule import GridTrigger, jitter_of, offset_of, trigger_for
from aggregator.config.model import SourceConfig

START = datetime(2026, 12, 3, 9, 0, 0, 250_000, tzinfo=timezone.utc)


def source(name: str, interval: float = 900.0) -> SourceConfig:
    return replace(SourceConfig(name=name, url="https://news.example/feed.xml"), interval=interval)


def runs(trigger: IntervalTrigger, first: datetime, count: int) -> list[datetime]:
    """The run at `first` and the next ones, as APScheduler asks for them (each from the previous)."""
    times = [first]
    while len(times) < count:
        times.append(trigger.get_next_fire_time(times[-1], times[-1]))
    return times


def test_runs_stay_on_the_grid_one_interval_apart_after_the_run_at_start() -> None:
    feed = source("Harbour Times")
    times = runs(trigger_for(feed, START), START, 50)
    grid = START.replace(microsecond=0) + timedelta(seconds=900 + offset_of(feed))
    assert times[1] == grid  # the first after the run at start: a whole interval later, at its own second
    assert all(b - a == timedelta(seconds=900) for a, b in zip(times[1:], times[2:]))


def test_a_run_moved_off_the_grid_does_not_shift_the_next_ones() -> None:
    trigger = trigger_for(source("Harbour Times"), START)
    on_grid = runs(trigger, START, 4)
    moved = on_grid[2] + timedelta(seconds=37)  # a reload ran it now, between two grid points
    assert trigger.get_next_fire_time(moved, moved) == on_grid[3]


def test_apschedulers_jitter_stretches_the_interval_and_the_grid_does_not() -> None:
    jittered = IntervalTrigger(seconds=900, jitter=90, start_date=START, timezone=timezone.utc)
    drifted = runs(jittered, START, 200)
    gridded = runs(GridTrigger(seconds=900, start_date=START + timedelta(seconds=930), timezone=timezone.utc),
                   START, 200)
    average = (drifted[-1] - drifted[0]).total_seconds() / 199
    assert 920 < average < 970  # 900 + about half the jitter, every time
    assert (gridded[-1] - gridded[1]).total_seconds() / 198 == 900


def test_sources_spread_over_slots_of_their_window_the_same_at_every_start() -> None:
    feeds = [source(f"Desk {n}") for n in range(300)]
    offsets = {f.name: offset_of(f) for f in feeds}
    assert jitter_of(feeds[0]) == 60  # a 15-minute interval's window: 6 slots, 10 s apart
    assert set(offsets.values()) == {0, 10, 20, 30, 40, 50}
    assert min(Counter(offsets.values()).values()) >= 30  # every slot has its share, none is empty
    assert offsets == {f.name: offset_of(f) for f in feeds}
    later = START + timedelta(days=3)
    same_second = [f for f in feeds if offsets[f.name] == offsets["Desk 0"]]
    assert len(same_second) > 1
    assert len({trigger_for(f, later).get_next_fire_time(None, later) for f in same_second}) == 1
    assert offset_of(source("Quick", interval=1.0)) == 0  # a window under a second: no spread
    assert {offset_of(source(f"Desk {n}", interval=30.0)) for n in range(300)} == {0, 1, 2}  # a slot a second
