"""Counts per day for the status page: articles per source and per topic, copies merged.

An article's day is the day it was first stored (`first_seen`, UTC), not
its claimed publication date: the page answers "what did this source give
us lately", and publishers' dates can be months old or in the future.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta


def _series(rows: list[tuple[str, str, int]], first_day: date, days: int) -> dict[str, tuple[int, ...]]:
    """{key: counts per day, oldest first} from (key, YYYY-MM-DD, count) rows."""
    index = {(first_day + timedelta(days=i)).isoformat(): i for i in range(days)}
    series: dict[str, list[int]] = {}
    for key, day, count in rows:
        if day in index:
            series.setdefault(key, [0] * days)[index[day]] = count
    return {key: tuple(counts) for key, counts in series.items()}


def per_source(conn: sqlite3.Connection, first_day: date, days: int) -> dict[str, tuple[int, ...]]:
    rows = conn.execute(
        "SELECT source, substr(first_seen, 1, 10) AS day, count(*) FROM articles "
        "WHERE first_seen >= ? GROUP BY source, day", [first_day.isoformat()]).fetchall()
    return _series(rows, first_day, days)


def per_topic(conn: sqlite3.Connection, first_day: date, days: int) -> dict[str, tuple[int, ...]]:
    rows = conn.execute(
        "SELECT t.topic, substr(a.first_seen, 1, 10) AS day, count(*) FROM article_topics t "
        "JOIN articles a ON a.id = t.article_id WHERE a.first_seen >= ? GROUP BY t.topic, day",
        [first_day.isoformat()]).fetchall()
    return _series(rows, first_day, days)


def merged(conn: sqlite3.Connection, first_day: date, days: int) -> tuple[int, ...]:
    """Copies joined to a cluster whose representative is another article, per day they arrived."""
    rows = conn.execute(
        "SELECT '', substr(first_seen, 1, 10) AS day, count(*) FROM articles "
        "WHERE first_seen >= ? AND cluster_id IS NOT NULL AND cluster_id != id GROUP BY day",
        [first_day.isoformat()]).fetchall()
    return _series(rows, first_day, days).get("", (0,) * days)
