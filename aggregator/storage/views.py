"""SQL views over the tables, for people browsing the file with sqlite-utils or Datasette.

Kept apart from schema.py so that migrations read them without loading sqlite-utils.
"""

# Each article with its topics and cluster; each source with its state and article count.
# The code itself reads the tables.
VIEWS = {
    "articles_view": """SELECT a.id, a.title, a.url, a.site, a.source, a.published, a.first_seen,
        (SELECT group_concat(t.topic, ', ') FROM article_topics t WHERE t.article_id = a.id) AS topics,
        COALESCE(a.cluster_id, a.id) AS cluster,
        (a.cluster_id IS NOT NULL AND a.cluster_id != a.id) AS is_copy, a.summary
        FROM articles a""",
    "source_status": """SELECT s.name, s.kind, s.location, s.status, s.last_fetch, s.last_success,
        s.last_error, s.error_count, s.http_status, s.next_due, s.warning,
        (SELECT count(*) FROM articles a WHERE a.source = s.name) AS articles
        FROM sources s""",
}
