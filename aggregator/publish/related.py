"""Related posts: what a reader might want to read next, on the same subject.

Two steps. The search finds candidates fast: bm25 over salient words
(terms.py: frequent in the article, title words triple), the query being
the article's MAX_TERMS most salient words that are also rare among the
searched articles. Then each candidate is judged on the whole story
(enrich/profile.py, related_similarity.py): words and names, generic news
vocabulary left out, weighted by rarity, with topics and categories; a
candidate below MIN_SIMILARITY is not shown, so a list holds fewer links
rather than filler. The site's own "Related Posts" titles that match stored
articles come first: the editor's choice beats ours. An article never
relates to itself or to a copy in its duplicate cluster.

Three choices keep this fast at 100,000 articles. The search runs over the
newest SEARCH_WINDOW articles only, so its cost does not grow with the
store. Those articles' salient words, stored with each article, are read
once per publish into an inverted index in memory (TermWindow), so a search
costs a few numpy operations, not a full-text query (FTS5's bm25 weighs
each word over the whole store); only the candidates found, and a sample of
BACKGROUND_SAMPLE articles for word rarity, are read whole. And a list, once
computed, is kept in the store (related_cache) until the article's own text
changes: a published entry does not churn every time a new article arrives,
and republishing costs no searches at all. The measurements:
docs/decisions/0009 and 0014.
"""

from __future__ import annotations

import math
from array import array
from typing import Iterable

import numpy as np

from aggregator.enrich.terms import decode, encoded
from aggregator.enrich.text import fold_for_matching
from aggregator.models import Article, RelatedCandidate, RelatedLink
from aggregator.enrich.profile import Profile, from_stored, profile
from aggregator.publish.related_similarity import MIN_SIMILARITY, Background, score
from aggregator.storage.store import Store

MAX_TERMS = 16
SEARCH_WINDOW = 10_000
CANDIDATES_PER_SLOT = 2  # candidates the search hands to the judging step, per list slot (+1)
BACKGROUND_SAMPLE = 200  # newest articles whose profiles give word rarity
RECENCY_WEIGHT = 0.05  # orders links of like similarity; never lifts one over MIN_SIMILARITY
RECENCY_DAYS = 14.0
K1, B = 1.2, 0.75  # bm25's usual term-frequency saturation and length normalisation


class TermWindow:
    """The searched articles' salient words as an inverted index: word -> (articles, weights).

    Built from Store.recent_terms (id, cluster id, encoded words), oldest first.
    """

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self.ids: list[str] = []
        self.stored: list[str] = []  # each article's words as stored, decoded only if it is queried
        self.vocabulary: dict[str, int] = {}
        clusters: dict[str, int] = {}
        cluster_of, docs, word_ids, weights = array("i"), array("i"), array("i"), array("i")
        for position, (article_id, cluster_id, stored) in enumerate(rows):
            self.ids.append(article_id)
            self.stored.append(stored)
            cluster_of.append(clusters.setdefault(cluster_id, len(clusters)))
            parts = stored.split()
            docs.extend([position] * (len(parts) // 2))
            word_ids.extend([self.vocabulary.setdefault(word, len(self.vocabulary)) for word in parts[::2]])
            weights.extend(map(int, parts[1::2]))
        self.position = {article_id: i for i, article_id in enumerate(self.ids)}
        self.clusters, self.cluster_of = clusters, np.array(cluster_of, dtype=np.int32)
        self._index(np.array(docs, dtype=np.int32), np.array(word_ids, dtype=np.int32),
                    np.array(weights, dtype=np.float64))

    def _index(self, docs: np.ndarray, word_ids: np.ndarray, counts: np.ndarray) -> None:
        """Postings sorted by word, each weighted by bm25's saturated, length-normalised frequency."""
        total = len(self.ids)
        lengths = np.bincount(docs, weights=counts, minlength=total)
        average = lengths.mean() if total else 1.0
        saturated = counts * (K1 + 1) / (counts + K1 * (1 - B + B * lengths[docs] / average))
        df = np.bincount(word_ids, minlength=len(self.vocabulary))
        idf = np.log((total - df + 0.5) / (df + 0.5) + 1.0)
        order = np.argsort(word_ids, kind="stable")
        self.docs, self.scores = docs[order], (saturated * idf[word_ids])[order]  # a posting's share of bm25
        # Plain lists: a query reads a few dozen of these, and numpy's per-item access is slow.
        self.df, self.idf = df.tolist(), idf.tolist()
        self.starts = [0, *np.cumsum(df).tolist()]

    def query(self, article: Article) -> list[int]:
        """The MAX_TERMS words (as ids) that best say what `article` is about, best first.

        Frequent in the article and rare in the window; a word no other
        article in the window uses finds nothing and is left out.
        """
        own = self.position.get(article.id)
        words = decode(self.stored[own] if own is not None else encoded(article))
        chosen: list[tuple[float, int]] = []
        for word, count in words:
            word_id = self.vocabulary.get(word)
            if word_id is None or self.df[word_id] - (own is not None) < 1:
                continue
            chosen.append((count * self.idf[word_id], word_id))
        chosen.sort(key=lambda pair: -pair[0])  # stable: ties keep frequency order
        return [word_id for _, word_id in chosen[:MAX_TERMS]]

    def search(self, article: Article, count: int) -> list[tuple[str, float]]:
        """(id, bm25 score) of the `count` best matches, best first: one per duplicate
        cluster (its best-matching copy), never the article's own cluster."""
        word_ids = self.query(article)
        if not word_ids:
            return []
        spans = [slice(self.starts[w], self.starts[w + 1]) for w in word_ids]
        scores = np.bincount(np.concatenate([self.docs[s] for s in spans]),
                             weights=np.concatenate([self.scores[s] for s in spans]), minlength=len(self.ids))
        own_cluster = self.clusters.get(article.cluster_id or article.id)
        if own_cluster is not None:
            scores[self.cluster_of == own_cluster] = 0.0
        if article.id in self.position:
            scores[self.position[article.id]] = 0.0
        matched = np.flatnonzero(scores > 0)
        if len(matched) > 2 * count:  # twice as many: copies of one story count once below
            matched = matched[np.argpartition(-scores[matched], 2 * count - 1)[:2 * count]]
        ranked = sorted(zip((-scores[matched]).tolist(), (self.ids[i] for i in matched.tolist()),
                            self.cluster_of[matched].tolist()))
        hits, seen = [], set()
        for score, article_id, cluster in ranked:
            if cluster not in seen:
                seen.add(cluster)
                hits.append((article_id, -score))
        return hits[:count]


def related_posts(store: Store, article: Article, limit: int) -> list[RelatedLink]:
    """Up to `limit` related articles, best first: the site's own picks, then ours.

    At most one article per duplicate cluster, and never one from the
    article's own cluster (a copy of itself is not "related").
    """
    return related_for_many(store, [article], limit)[article.id]


def related_for_many(store: Store, articles: list[Article], limit: int) -> dict[str, list[RelatedLink]]:
    """related_posts for many articles: kept lists read, and their links looked up, in a few queries.

    A kept list is reused while the article's text is unchanged and every
    article on it is still stored; the others are computed and kept.
    """
    if limit <= 0:
        return {a.id: [] for a in articles}
    kept = store.cached_related([a.id for a in articles])
    usable = {a.id: kept[a.id][2][:limit] for a in articles
              if a.id in kept and kept[a.id][0] == a.content_hash and kept[a.id][1] >= limit}
    links = store.headlines([i for ids in usable.values() for i in ids])
    result: dict[str, list[RelatedLink]] = {}
    missing: list[Article] = []
    for article in articles:
        ids = usable.get(article.id)
        if ids is not None and all(i in links for i in ids):
            result[article.id] = [links[i] for i in ids]
        else:
            missing.append(article)
    computed = compute_related(store, missing, limit)
    for article in missing:
        result[article.id] = [c.link for c in computed[article.id]]
    store.save_related({a.id: (a.content_hash, limit, [p.id for p in computed[a.id]]) for a in missing})
    return result


def compute_related(store: Store, articles: list[Article], limit: int) -> dict[str, list[RelatedCandidate]]:
    """The ranking itself, without the kept lists: one window read, one read of the candidates."""
    if not articles:
        return {}
    window = TermWindow(store.recent_terms(SEARCH_WINDOW))
    hits = {a.id: window.search(a, (limit + 1) * CANDIDATES_PER_SLOT) for a in articles}
    found = list({i: None for ids in hits.values() for i, _ in ids})
    candidates = store.related_candidates(found)
    background, profiles = judged(store, window.ids[-BACKGROUND_SAMPLE:], found)
    return {a.id: _pick(a, [*site_choices(store, a), *_ranked(a, profile(a), [i for i, _ in hits[a.id]],
                                                                  candidates, profiles, background)], limit)
            for a in articles}


def judged(store: Store, sample: list[str], ids: list[str],
           spellings: bool = False) -> tuple[Background, dict[str, Profile]]:
    """The background of word rarity from `sample`, and the profiles of `ids`, in one read:
    the stored features, or with `spellings` (explain) the articles whole."""
    wanted = list(dict.fromkeys([*sample, *ids]))
    if spellings:
        profiles = {i: profile(a, spellings=True) for i, a in store.get_many(wanted).items()}
    else:
        profiles = {i: from_stored(i, stored, categories, topics)
                    for i, (stored, categories, topics) in store.stored_profiles(wanted).items()}
    return Background(profiles[i] for i in sample if i in profiles), profiles


def _pick(article: Article, ranked: list[RelatedCandidate], limit: int) -> list[RelatedCandidate]:
    """The first `limit` of `ranked`, one per duplicate cluster and none from the article's own."""
    picks: list[RelatedCandidate] = []
    used = {article.id, article.cluster_id or article.id}
    for candidate in ranked:
        if candidate.id in used or candidate.cluster_id in used:
            continue
        picks.append(candidate)
        used.update((candidate.id, candidate.cluster_id))
        if len(picks) == limit:
            break
    return picks


def _ranked(article: Article, own: Profile, ids: list[str], candidates: dict[str, RelatedCandidate],
            profiles: dict[str, Profile], background: Background) -> list[RelatedCandidate]:
    """Candidates at or above MIN_SIMILARITY, most similar first (recency orders near-ties)."""
    scored = []
    for i in ids:
        if i in candidates and i in profiles:
            similarity = score(own, profiles[i], background)
            if similarity >= MIN_SIMILARITY:
                scored.append((similarity + RECENCY_WEIGHT * _recency(article, candidates[i]), i))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [candidates[i] for _, i in scored]


def site_choices(store: Store, article: Article) -> list[RelatedCandidate]:
    """Stored articles whose titles match the site's own "Related Posts", in the site's order."""
    keys = [fold_for_matching(r.title) for r in article.site_related]
    matches = store.ids_by_title_keys([k for k in keys if k])
    ids = list(dict.fromkeys(matches[k] for k in keys if k in matches))
    found = store.related_candidates(ids)
    return [found[i] for i in ids if i in found]


def _recency(article: Article, other: RelatedCandidate) -> float:
    if not (article.published and other.link.published):
        return 0.0
    days = abs((article.published - other.link.published).total_seconds()) / 86400
    return math.exp(-days / RECENCY_DAYS)
