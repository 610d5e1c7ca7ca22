"""Each local file's last stored state (`files`): size, mtime, content hash, the articles it gave.

In: the states of the files a batch was read from. Out: a source's file
states, so an unchanged file is skipped unread (ingest/local.py). A file's
state is written with the last of the articles it produced (articles.py),
so it is never marked as read without them.
"""

from __future__ import annotations

import json
from typing import Iterable

from aggregator.models import FileState
from aggregator.storage.connection import Connection


class FilesMixin(Connection):
    def file_states(self, source: str) -> dict[str, FileState]:
        """What was last stored from each of a source's local files, keyed by absolute path."""
        rows = self.conn.execute(
            "SELECT path, source, content_hash, article_ids, size, mtime_ns FROM files WHERE source = ?",
            [source])
        return {r[0]: FileState(path=r[0], source=r[1], content_hash=r[2] or "",
                                article_ids=json.loads(r[3] or "[]"), size=r[4] if r[4] is not None else -1,
                                mtime_ns=r[5]) for r in rows}

    def _save_files(self, files: Iterable[FileState], now: str) -> None:
        self.conn.executemany(
            "INSERT INTO files (path, source, content_hash, article_ids, seen, size, mtime_ns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET source = excluded.source, "
            "content_hash = excluded.content_hash, article_ids = excluded.article_ids, "
            "seen = excluded.seen, size = excluded.size, mtime_ns = excluded.mtime_ns",
            [(f.path, f.source, f.content_hash, json.dumps(f.article_ids), now, f.size, f.mtime_ns)
             for f in files],
        )
