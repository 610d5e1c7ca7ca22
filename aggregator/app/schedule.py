"""When each source runs: one APScheduler 3 job per enabled source, plus the retention tick.

    interval   the source's own; "auto" runs every DEFAULT_INTERVAL and the feed's
               stored next_due (learned from its pace, its backoff, Retry-After)
               decides whether a run fetches
    spread     each source runs in one of SLOTS slots of whole seconds spread over
               10% of the interval (at most MAX_JITTER), picked from its name:
               sources that share an interval do not all fire at once, those that
               share a slot fire in one scheduler wakeup and run back to back, and
               the interval is kept exactly (GridTrigger)
    first run  at start (or when added or changed by a reload); runs of one
               source are coalesced and never overlap (max_instances=1)
    due_by     how late a feed may be due and still be fetched by this run: the
               jitter's slack, so a job that fires a moment before the feed's
               next_due does not skip a whole interval
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config import AUTO_MIN, Config, SourceConfig

DEFAULT_INTERVAL = AUTO_MIN   # a source whose interval is "auto": its stored next_due decides whether a run fetches
MAX_JITTER = 60.0             # seconds; jitter is 10% of the interval up to this
SLOTS = 6                     # start times per window: a job run alone after a pause costs three times
                              # one run among others (docs/decisions/0018), so sources come in groups
RETENTION_EVERY = 3600.0      # time-based pruning happens even when nothing is fetched
MAX_WORKERS = 8


def job_id(name: str) -> str:
    return f"source:{name}"


def interval_of(source: SourceConfig) -> float:
    return source.interval or DEFAULT_INTERVAL


def jitter_of(source: SourceConfig) -> float:
    return min(interval_of(source) * 0.1, MAX_JITTER)


def offset_of(source: SourceConfig) -> int:
    """The source's slot within its jitter window, in whole seconds: the same at every start (CRC-32 of
    its name). A 60-s window has slots 10 s apart; a window under SLOTS seconds, one per second."""
    window = int(jitter_of(source))
    slots = max(1, min(SLOTS, window))
    return zlib.crc32(source.name.encode("utf-8")) % slots * (window // slots)


def due_by(source: SourceConfig, now: datetime | None = None) -> datetime:
    """The latest next_due a run of `source` starting `now` still fetches (its jitter, and a second)."""
    return (now or datetime.now(timezone.utc)) + timedelta(seconds=jitter_of(source) + 1)


@dataclass(frozen=True)
class Resync:
    """What a reload changed in the schedule."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: int


class Schedule:
    """The daemon's BackgroundScheduler: `run_source(name)` per source on its trigger, `tick()` hourly."""

    def __init__(self, run_source: Callable[[str], None], tick: Callable[[], None]):
        self.run_source = run_source
        self.tick = tick
        self.scheduler: BackgroundScheduler | None = None

    def start(self, config: Config) -> None:
        workers = max(2, min(config.fetch.concurrency, MAX_WORKERS))
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        now = datetime.now(timezone.utc)
        for source in config.sources:
            if source.enabled:
                self.add(source, now)
        self.scheduler.add_job(self.tick, "interval", seconds=RETENTION_EVERY, id="retention", name="retention")
        self.scheduler.start()

    def add(self, source: SourceConfig, now: datetime | None = None) -> None:
        assert self.scheduler is not None
        now = now or datetime.now(timezone.utc)
        self.scheduler.add_job(
            self.run_source, trigger_for(source, now), args=[source.name], id=job_id(source.name),
            name=source.name, next_run_time=now,
            misfire_grace_time=max(1, int(interval_of(source))), replace_existing=True,
        )

    def resync(self, old: Config, new: Config) -> Resync:
        """Jobs for the reloaded config: added and removed sources, and a changed one run again now."""
        assert self.scheduler is not None
        before = {s.name: s for s in old.sources if s.enabled}
        after = {s.name: s for s in new.sources if s.enabled}
        for name in before.keys() - after.keys():
            self.scheduler.remove_job(job_id(name))
        for name in after.keys() - before.keys():
            self.add(after[name])
        changed = 0
        for name in before.keys() & after.keys():
            if before[name] == after[name]:
                continue
            changed += 1
            if interval_of(before[name]) != interval_of(after[name]):
                self.scheduler.reschedule_job(job_id(name), trigger=trigger_for(after[name]))
            self.scheduler.modify_job(job_id(name), next_run_time=datetime.now(timezone.utc),
                                      misfire_grace_time=max(1, int(interval_of(after[name]))))
        return Resync(tuple(sorted(after.keys() - before.keys())), tuple(sorted(before.keys() - after.keys())),
                      changed)

    def run_now(self, names: set[str] | frozenset[str]) -> None:
        """The named sources run again now (those a storage fault stopped)."""
        if self.scheduler is None:
            return
        for name in sorted(names):
            try:
                self.scheduler.modify_job(job_id(name), next_run_time=datetime.now(timezone.utc))
            except Exception:  # removed by a reload meanwhile
                pass

    def shutdown(self) -> None:
        """No more runs start; the running ones finish (the daemon waits for them, up to its grace)."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)


def trigger_for(source: SourceConfig, now: datetime | None = None) -> GridTrigger:
    """Runs at (now, to the second) + offset + k intervals, k >= 1: the first after the run at start."""
    anchor = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    start = anchor + timedelta(seconds=interval_of(source) + offset_of(source))
    return GridTrigger(seconds=interval_of(source), start_date=start, timezone=timezone.utc)


class GridTrigger(IntervalTrigger):
    """An interval trigger whose runs stay on its grid: start_date + k * interval.

    APScheduler counts the next run from the previous run's time, and its
    jitter delays each run by a random amount, so the delays add up: an
    interval with 10% jitter ran about 5% less often than asked. A run moved
    off the grid (the one at start, a reload's run now) is not counted from
    either: the next run is the next grid point.
    """

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        after = max(now, previous_fire_time + timedelta(microseconds=1)) if previous_fire_time else now
        return super().get_next_fire_time(None, after)
