"""When each source runs: one APScheduler 3 job per enabled source, plus the retention tick.

    interval   the source's own; "auto" runs every DEFAULT_INTERVAL and the feed's
               stored next_due (learned from its pace, its backoff, Retry-After)
               decides whether a run fetches
    jitter     10% of the interval, at most MAX_JITTER, so sources that share an
               interval do not all fire in the same second
    first run  at start (or when added or changed by a reload); runs of one
               source are coalesced and never overlap (max_instances=1)
    due_by     how late a feed may be due and still be fetched by this run: the
               jitter's slack, so a job that fires a moment before the feed's
               next_due does not skip a whole interval
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config import AUTO_MIN, Config, SourceConfig

DEFAULT_INTERVAL = AUTO_MIN   # a source whose interval is "auto": its stored next_due decides whether a run fetches
MAX_JITTER = 60.0             # seconds; jitter is 10% of the interval up to this
RETENTION_EVERY = 3600.0      # time-based pruning happens even when nothing is fetched
MAX_WORKERS = 8


def job_id(name: str) -> str:
    return f"source:{name}"


def interval_of(source: SourceConfig) -> float:
    return source.interval or DEFAULT_INTERVAL


def jitter_of(source: SourceConfig) -> float:
    return min(interval_of(source) * 0.1, MAX_JITTER)


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
        for source in config.sources:
            if source.enabled:
                self.add(source)
        self.scheduler.add_job(self.tick, "interval", seconds=RETENTION_EVERY, id="retention", name="retention")
        self.scheduler.start()

    def add(self, source: SourceConfig) -> None:
        assert self.scheduler is not None
        self.scheduler.add_job(
            self.run_source, trigger_for(source), args=[source.name], id=job_id(source.name),
            name=source.name, next_run_time=datetime.now(timezone.utc),
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


def trigger_for(source: SourceConfig) -> IntervalTrigger:
    return IntervalTrigger(seconds=interval_of(source), jitter=jitter_of(source), timezone=timezone.utc)
