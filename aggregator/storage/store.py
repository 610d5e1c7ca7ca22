"""`Store`: the database, composed of one mixin per table family.

In: a database path, and whether this process may write it. Out: one
object whose methods are every query the stages run. Each family's SQL is
in its own module:

  connection.py     the connection, transactions, the meta table
  articles.py       articles: a batch written whole; every read of articles
  topics.py         article_topics
  sources.py        sources (fetch state)        files.py  files (local file state)
  duplicates.py     dedup_signatures, exact-key lookups, clusters
  fulltext.py       articles_fts and fts_pending
  retention.py      pruning, and the pruned ids
  related_cache.py  related_cache, and the salient words related posts read
  schema.py         the current schema, created whole   migrations.py  older databases brought up to it
  salvage.py        copying what is readable out of a damaged database

A store that wrote leaves the full-text index current when it closes, so a
command that only reads (a read-only store) finds everything stored.
"""

from __future__ import annotations

import logging
import sqlite3

from aggregator.storage.articles import ArticlesMixin, WriteOutcome
from aggregator.storage.connection import BUSY_TIMEOUT_MS, WRITE_BATCH
from aggregator.storage.fulltext import SearchError, fts_query
from aggregator.storage.related_cache import RelatedCacheMixin
from aggregator.storage.retention import RetentionMixin
from aggregator.storage.salvage import Salvage, quick_check, salvage  # `aggregator recover` imports them here

__all__ = ["BUSY_TIMEOUT_MS", "WRITE_BATCH", "Salvage", "SearchError", "Store", "WriteOutcome", "fts_query", "quick_check",
           "salvage"]

log = logging.getLogger("aggregator")


class Store(ArticlesMixin, RetentionMixin, RelatedCacheMixin):
    """One database file shared by the daemon and CLI commands (WAL, busy timeout).

    `Store(path)` may write, and brings an older database to the current
    schema; `Store(path, read_only=True)` never writes (connection.py).
    """

    def close(self) -> None:
        """Close the connection; after a write, first index the stored text for search.

        Every command that stores articles closes its store, so the index is
        written in one bulk pass per command, and a read-only search later
        sees every article. A failure here loses nothing: the articles stay
        pending, and the next writing command indexes them.
        """
        try:
            if self.wrote and not self.read_only:
                self.index_pending_text()
        except sqlite3.Error:
            log.warning("%s: the full-text index was not brought up to date; the next command that writes "
                        "does it", self.path, exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            super().close()
