"""Each source's state (`sources`): status, validators, errors, when it is next due.

In: a source's fetch outcome as fields. Out: the rows back, to plan the
next fetch and for `aggregator sources`; and each source's article count.
A batch's source state is written in its last transaction (articles.py):
a feed's new ETag is never stored without the articles it covers.
"""

from __future__ import annotations

from typing import Any

from aggregator.storage.connection import Connection


class SourcesMixin(Connection):
    def source_state(self, name: str) -> dict[str, Any]:
        cursor = self.conn.execute("SELECT * FROM sources WHERE name = ?", [name])
        row = cursor.fetchone()
        return dict(zip([d[0] for d in cursor.description], row)) if row else {}

    def source_states(self) -> dict[str, dict[str, Any]]:
        """Every stored source row by name (for `aggregator sources`, and to plan a run's fetches)."""
        cursor = self.conn.execute("SELECT * FROM sources")
        columns = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}

    def source_counts(self) -> dict[str, int]:
        return {s: n for s, n in self.conn.execute("SELECT source, COUNT(*) FROM articles GROUP BY source")}

    def save_source_state(self, name: str, **fields: Any) -> None:
        with self.transaction():
            self._upsert_source_state(name, fields)

    def _upsert_source_state(self, name: str, fields: dict[str, Any]) -> None:
        columns = ["name", *fields]
        updates = ", ".join(f"{c} = excluded.{c}" for c in fields) or "name = name"
        self.conn.execute(
            f"INSERT INTO sources ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT(name) DO UPDATE SET {updates}",
            [name, *fields.values()],
        )
