"""The full-text index (`articles_fts`, FTS5) and the articles waiting for it (`fts_pending`).

In: the articles stored since the index was last caught up, listed by
trigger in fts_pending. Out: an index current with the stored text, and a
safe FTS5 query for what a user typed.

Storing an article only lists it as pending; the commands that write
catch the index up in bulk (Store.close after a write, the daemon after
each publish), which costs far less than indexing row by row inside every
batch's transaction (docs/decisions/0008). A search on a writable store
catches up first; a read-only store searches what is indexed, and says how
many articles it cannot see.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time

from aggregator.enrich.text import fold_for_matching
from aggregator.storage.connection import Connection

log = logging.getLogger("aggregator")

# Articles indexed per transaction when catching up: a backlog of 100,000 then holds
# the write lock for a few seconds at a time, for about the same total.
FTS_CATCH_UP_ROWS = 20_000


class SearchError(ValueError):
    """A search query SQLite cannot read; str() quotes it and shows the syntax."""


SEARCH_SYNTAX = ('words (all required), "a phrase", prefix*, title:word or text:word, '
                 "a OR b, a NOT b (or a -b), parentheses")
_OPERATORS = re.compile(r'["*():^]|(?:^|\s)-\S|\b(?:AND|OR|NOT|NEAR)\b')
_EXCLUSION = re.compile(r"(^|\s)-(?=[^\s-])")


def fts_query(text: str) -> str:
    """What a user typed -> an FTS5 query: FTS5's own syntax, plus `-word` for NOT word.

    Text without any operator is taken as plain words, each quoted, so that
    "U.S. tariffs" or "covid-19" search as typed instead of failing as syntax.
    """
    text = text.strip()
    if not _OPERATORS.search(text):
        words = [w for w in fold_for_matching(text).replace('"', " ").split() if w]
        return " ".join(f'"{w}"' for w in words) or '""'
    if text.startswith("-"):
        raise SearchError(f"search {text!r}: an exclusion (-word) needs something to exclude it from, "
                          f"like 'gaza -football'; syntax: {SEARCH_SYNTAX}")
    return _EXCLUSION.sub(lambda m: f"{m[1]}NOT ", text)


def search_error(query: str, exc: sqlite3.OperationalError) -> SearchError | None:
    """The user's mistake in a query, or None when the error is not about the query."""
    message = str(exc)
    if not message.startswith(("fts5:", "no such column", "unknown special query", "unterminated string")):
        return None
    return SearchError(f"search {query!r} is not a valid query ({message}); syntax: {SEARCH_SYNTAX}")


class FullTextMixin(Connection):
    def index_pending_text(self) -> None:
        """Index the articles stored since the full-text index was last caught up.

        A store that may not write (read-only, or a file this process cannot
        write) leaves them pending: searches go on without them, and say so.
        """
        if self.read_only:
            self._warn_unindexed()
            return
        try:
            self._catch_up_text()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY":
                raise
            self._warn_unindexed()

    def _warn_unindexed(self) -> None:
        pending = self.conn.execute("SELECT count(*) FROM fts_pending").fetchone()[0]
        if pending:
            log.warning("%s is read-only here: a search cannot see the %d articles stored since the full-text "
                        "index was last updated; run any aggregator command with write access to index them",
                        self.path, pending)

    def _catch_up_text(self) -> None:
        since = time.monotonic()
        while self.conn.execute("SELECT EXISTS (SELECT 1 FROM fts_pending)").fetchone()[0]:
            since = self._let_others_write(since)
            with self.transaction():  # a concurrent catch-up may have drained the list meanwhile
                last = self.conn.execute("SELECT rowid FROM fts_pending ORDER BY rowid LIMIT 1 OFFSET ?",
                                         [FTS_CATCH_UP_ROWS - 1]).fetchone()
                bound = last[0] if last else 2**63 - 1
                self.conn.execute("INSERT INTO articles_fts (rowid, title, text) SELECT a.rowid, a.title, a.text "
                                  "FROM fts_pending p JOIN articles a ON a.rowid = p.rowid WHERE p.rowid <= ?", [bound])
                self.conn.execute("DELETE FROM fts_pending WHERE rowid <= ?", [bound])
