"""Dates as we store them: UTC, to the second, and never absurd.

A feed cannot pin itself to the top of every list by claiming the year
2099: a date more than a day ahead, or before 1990, counts as no date.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

MAX_FUTURE = timedelta(days=1)
EPOCH_FLOOR = datetime(1990, 1, 1, tzinfo=timezone.utc)


def iso_utc(value: datetime | None) -> str | None:
    """The one text form of a moment we store: UTC, to the second (None stays None)."""
    return value.astimezone(timezone.utc).isoformat(timespec="seconds") if value else None


def clamp_date(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """UTC-aware date, or None when absent or absurd (before 1990, more than a day ahead)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    now = now or datetime.now(timezone.utc)
    if value > now + MAX_FUTURE or value < EPOCH_FLOOR:
        return None
    return value
