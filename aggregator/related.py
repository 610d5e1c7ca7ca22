"""Related posts: what a reader might want to read next.

Text similarity comes from FTS5's bm25 over the article's salient terms,
blended with shared topics and closeness in time. Salient means frequent
in the article (title words count triple) and rare in the store: a word
every other article uses says nothing about what this one is about, and
makes bm25 score thousands of rows for nothing. The site's own "Related
Posts" titles that match stored articles come first: the editor's choice
beats ours. An article never relates to itself or to a copy in its
duplicate cluster.

Three choices keep this fast at 100,000 articles. The search runs over the
newest SEARCH_WINDOW articles only (FTS5 skips older rows, so the cost does
not grow with the store), with the MAX_TERMS most salient words; ranking
reads candidates' links, clusters and topics, never their text. And a list,
once computed, is kept in the store (related_cache) until the article's own
text changes: a published entry does not churn every time a new article
arrives, and republishing costs no searches at all.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from collections import Counter

from .models import Article, RelatedCandidate, RelatedLink
from .normalize import fold_for_matching
from .store import Store

MAX_TERMS = 8
TERM_POOL = 24  # the article's most frequent words, re-ranked by rarity down to MAX_TERMS
SEARCH_WINDOW = 10_000
PARALLEL_MIN = 64  # lists to compute before a second connection pays for itself
CANDIDATES_PER_SLOT = 4
TOPIC_WEIGHT = 0.3
RECENCY_WEIGHT = 0.15
RECENCY_DAYS = 14.0
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own
said same says she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves new one two three told last year years week
since may many much among amid per via within without according mr mrs ms us its it's he's she's
""".split())
WORD_RE = re.compile(r"[a-z0-9][a-z0-9'-]*[a-z0-9]|[a-z0-9]")


def salient_terms(article: Article, rarity: "WordRarity | None" = None) -> list[str]:
    """The words a search for this article's neighbours should use, best first.

    Frequency in the article (title words count triple), weighted by how
    rare each word is among the searched articles when `rarity` is given.
    """
    title_words = [w for w in WORD_RE.findall(fold_for_matching(article.title)) if _useful(w)]
    counts = Counter(w for w in WORD_RE.findall(fold_for_matching(article.text[:6000])) if _useful(w))
    for word in title_words:
        counts[word] += 3
    pool = [w for w, _ in counts.most_common(TERM_POOL if rarity else MAX_TERMS)]
    if rarity:
        pool.sort(key=lambda w: -counts[w] * rarity(w))  # stable: ties keep frequency order
    return pool[:MAX_TERMS]


class WordRarity:
    """Inverse document frequency of words among the searched articles, looked up once per word.

    One per connection (sqlite3 connections stay on their thread); a cold
    publish of ~300 lists looks up about 400 distinct words, ~0.15 s in all.
    """

    def __init__(self, store: Store, min_rowid: int) -> None:
        self.store, self.min_rowid = store, min_rowid
        self.total = store.count_articles_after(min_rowid)
        self.known: dict[str, float] = {}

    def __call__(self, word: str) -> float:
        if word not in self.known:
            matches = self.store.count_matches(fts_or_query([word]), self.min_rowid)
            self.known[word] = math.log((self.total + 1) / (matches + 1))
        return self.known[word]


def _useful(word: str) -> bool:
    return len(word) > 2 and word not in STOPWORDS and not word.isdigit()


def fts_or_query(terms: list[str]) -> str:
    return " OR ".join(f'"{t.replace(chr(34), "")}"' for t in terms)


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
    computed = _compute_many(store, missing, limit)
    for article in missing:
        result[article.id] = [c.link for c in computed[article.id]]
    store.save_related({a.id: (a.content_hash, limit, [p.id for p in computed[a.id]]) for a in missing})
    return result


def _compute_many(store: Store, articles: list[Article], limit: int) -> dict[str, list[RelatedCandidate]]:
    """compute_related for many articles, on two read connections when there are many.

    SQLite releases the GIL while it runs the full-text query, the bulk of
    each list, so a second connection on a second thread nearly halves a cold
    publish; a handful of lists is not worth opening it.
    """
    if len(articles) < PARALLEL_MIN or (os.cpu_count() or 1) < 2:
        return _compute_on(store, articles, limit)
    half = len(articles) // 2
    with Store(store.path) as second, ThreadPoolExecutor(max_workers=1) as helper:
        later = helper.submit(_compute_on, second, articles[half:], limit)
        computed = _compute_on(store, articles[:half], limit)
        computed.update(later.result())
    return computed


def _compute_on(store: Store, articles: list[Article], limit: int) -> dict[str, list[RelatedCandidate]]:
    rarity = WordRarity(store, store.recent_rowid_floor(SEARCH_WINDOW))
    return {a.id: compute_related(store, a, limit, rarity) for a in articles}


def compute_related(store: Store, article: Article, limit: int,
                    rarity: WordRarity | None = None) -> list[RelatedCandidate]:
    """The ranking itself, without the kept lists."""
    rarity = rarity or WordRarity(store, store.recent_rowid_floor(SEARCH_WINDOW))
    own = {article.id, article.cluster_id or article.id}
    picks: list[RelatedCandidate] = []
    used = set(own)
    for candidate in [*_site_choices(store, article), *_ranked_candidates(store, article, limit, rarity)]:
        if candidate.id in used or candidate.cluster_id in used:
            continue
        picks.append(candidate)
        used.update((candidate.id, candidate.cluster_id))
        if len(picks) == limit:
            break
    return picks


def _ranked_candidates(store: Store, article: Article, limit: int,
                       rarity: WordRarity) -> list[RelatedCandidate]:
    """Text matches (bm25 over salient terms) re-ranked with shared topics and recency."""
    terms = salient_terms(article, rarity)
    if not terms:
        return []
    own = {article.id, article.cluster_id or article.id}
    hits = store.search_ranked(fts_or_query(terms), own, (limit + 1) * CANDIDATES_PER_SLOT,
                               min_rowid=rarity.min_rowid)
    candidates = store.related_candidates([i for i, _ in hits])
    best_text = max((-s for _, s in hits), default=1.0) or 1.0
    scored: list[tuple[float, str]] = []
    for article_id, bm25 in hits:
        other = candidates.get(article_id)
        if other is None or article_id in own or other.cluster_id in own:
            continue
        scored.append((_blend(article, other, -bm25 / best_text), article_id))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [candidates[i] for _, i in scored]


def _site_choices(store: Store, article: Article) -> list[RelatedCandidate]:
    """Stored articles whose titles match the site's own "Related Posts", in the site's order."""
    keys = [fold_for_matching(r.title) for r in article.site_related]
    matches = store.ids_by_title_keys([k for k in keys if k])
    ids = list(dict.fromkeys(matches[k] for k in keys if k in matches))
    found = store.related_candidates(ids)
    return [found[i] for i in ids if i in found]


def _blend(article: Article, other: RelatedCandidate, text_score: float) -> float:
    shared = len(set(article.topics) & set(other.topics))
    topic_score = shared / max(1, len(article.topics))
    recency = 0.0
    if article.published and other.link.published:
        days = abs((article.published - other.link.published).total_seconds()) / 86400
        recency = math.exp(-days / RECENCY_DAYS)
    return text_score + TOPIC_WEIGHT * topic_score + RECENCY_WEIGHT * recency
