"""Storage: one SQLite database holding what every stage writes, and the SQL that reads it.

In: batches of articles with their topics, dedup rows, source and file
state (from the pipeline); publish's kept related lists. Out: articles and
state for every command, through `store.Store` (one mixin per table family).
Only this package speaks SQL.

schema.py imports sqlite-utils (and with it numpy), needed only when a
database is created, so submodules load on first use.
"""

import importlib

_SUBMODULES = {"store", "connection", "schema", "migrations", "articles", "topics", "sources", "files",
               "duplicates", "fulltext", "retention", "related_cache", "rows", "salvage", "faults", "status_counts"}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
