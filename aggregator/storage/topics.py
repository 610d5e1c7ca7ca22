"""Which topics each article is in (`article_topics`).

In: topic assignments (article id -> slugs), with each article's date.
Out: an article's topics, and each topic's article count. A topic's
newest articles are read by articles.py straight from this table's index.
"""

from __future__ import annotations

import time

from aggregator.storage.connection import IN_CLAUSE_KEYS, Connection, chunks

RETAG_BATCH = 5_000  # topic assignments per transaction


class TopicsMixin(Connection):
    def _replace_topics(self, stale: list[str], assignments: dict[str, list[str]], newest: dict[str, str]) -> None:
        """Drop the topics of the `stale` ids, then insert every assignment of a stored article.

        `newest`: each article's COALESCE(published, first_seen), the date its topics are listed by.
        """
        for chunk in chunks(stale, IN_CLAUSE_KEYS):
            self.conn.execute(f"DELETE FROM article_topics WHERE article_id IN ({', '.join('?' for _ in chunk)})",
                              chunk)
        self.conn.executemany(
            "INSERT OR IGNORE INTO article_topics (article_id, topic, newest) VALUES (?, ?, ?)",
            [(article_id, slug, newest[article_id]) for article_id, slugs in assignments.items() if article_id in newest
             for slug in slugs],
        )

    def replace_topics(self, assignments: dict[str, list[str]]) -> None:
        """Re-tag: replace the topics of many articles, RETAG_BATCH articles per transaction
        (each article's topics change whole; a re-tag cut short is finished by running it again)."""
        ids = list(assignments)
        since = time.monotonic()
        for start in range(0, len(ids), RETAG_BATCH):
            since = self._let_others_write(since)
            chunk = {article_id: assignments[article_id] for article_id in ids[start:start + RETAG_BATCH]}
            with self.transaction():
                newest = dict(self._rows_in("SELECT id, COALESCE(published, first_seen) FROM articles "
                                            "WHERE id IN ({marks})", list(chunk)))
                self._replace_topics(list(chunk), chunk, newest)

    def topics_of(self, ids: list[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {i: [] for i in ids}
        for article_id, topic in self._rows_in(
                "SELECT article_id, topic FROM article_topics WHERE article_id IN ({marks}) ORDER BY topic", ids):
            result[article_id].append(topic)
        return result

    def topic_counts(self) -> dict[str, int]:
        return {t: n for t, n in self.conn.execute(
            "SELECT topic, COUNT(*) FROM article_topics GROUP BY topic")}
