"""Why an article lists another as related: the similarity and what the two share.

In: a store, an article and the ids of its related posts. Out: a Reason per
id: the similarity related.py ranked by, the shared words and names that
made most of it, shared topics and categories, and whether the site itself
listed it (its own "Related Posts" come first whatever their similarity).
`explain ID` prints these; eval/run.py prints them for wrong links.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.models import Article
from aggregator.publish import related
from aggregator.enrich.profile import profile
from aggregator.publish.related_similarity import shown, similarity
from aggregator.storage.store import Store


@dataclass(frozen=True)
class Reason:
    similarity: float
    terms: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    site_pick: bool = False

    def summary(self) -> str:
        """One line: "similarity 0.41, the site's own pick: terms ...; names ...; topics ...; categories ..."."""
        parts = [f"{label} {', '.join(values)}" for label, values in
                 (("terms", self.terms), ("names", self.names), ("topics", self.topics),
                  ("categories", self.categories)) if values]
        head = f"similarity {self.similarity:.2f}" + (", the site's own pick" if self.site_pick else "")
        return head + ": " + ("; ".join(parts) or "nothing shared")


def why(store: Store, article: Article, ids: list[str]) -> dict[str, Reason]:
    """A Reason for each of `ids` that is stored; reads only."""
    sample = [i for i, _, _ in store.recent_terms(related.BACKGROUND_SAMPLE)]
    background, profiles = related.judged(store, sample, ids, spellings=True)
    own = profile(article, spellings=True)
    picks = {c.id for c in related.site_choices(store, article)}
    reasons = {}
    for i in ids:
        if i not in profiles:
            continue
        match = similarity(own, profiles[i], background)
        terms, names = shown(match, own, profiles[i])
        reasons[i] = Reason(match.similarity, tuple(terms), tuple(names), match.topics, match.categories, i in picks)
    return reasons
