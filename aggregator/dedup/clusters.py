"""Clusters as readers see them: each story once, with the other copies listed.

Apart from dedup.py so that publishing (and an unchanged refresh, which
imports the publisher) does not import numpy.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Iterable, Protocol

from aggregator.models import Article
from aggregator.enrich.urls import safe_url



@dataclass(frozen=True)
class ClusterView:
    """A cluster as a feed shows it: the representative, then the other copies."""

    representative: Article
    copies: list[Article]


class ClusterStore(Protocol):
    def clusters_of(self, cluster_ids: list[str]) -> dict[str, list[Article]]: ...


def collapse_clusters(store: ClusterStore, articles: list[Article]) -> list[ClusterView]:
    """Each cluster once, where its first member appears in `articles`, shown by its representative.

    The representative is used even when the listed member is another copy,
    so a story has the same entry (and id) in every topic feed.
    """
    order = list(dict.fromkeys(a.cluster_id or a.id for a in articles))
    members = store.clusters_of(order)
    listed = {a.id: a for a in articles}
    views = []
    for cluster in order:
        group = members.get(cluster) or [a for a in articles if (a.cluster_id or a.id) == cluster]
        group = [listed.get(a.id, a) for a in group]
        views.append(ClusterView(group[0], group[1:]))
    return views


def also_reported_html(copies: Iterable[Article]) -> str:
    """The "Also reported by" list appended to an entry: site name and link per copy."""
    items = []
    for copy in copies:
        name = html.escape(copy.site or copy.source)
        link = safe_url(copy.url)
        if link:
            items.append(f'<li><a href="{html.escape(link, quote=True)}">{name}</a></li>')
        else:
            items.append(f"<li>{name}</li>")
    if not items:
        return ""
    return '<h3>Also reported by</h3><ul class="also-reported">' + "".join(items) + "</ul>"
