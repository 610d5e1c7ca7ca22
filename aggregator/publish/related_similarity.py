"""How alike two articles' subjects are: a number from their profiles, and the evidence behind it.

In: two Profiles (enrich/profile.py) and a Background (how common each
feature is among the newest stored articles). Out: a Match: the similarity
and the shared features that made it, strongest first.

The similarity is the cosine of the two idf-weighted profiles, plus a
little for shared topics and categories, minus a little when both have some
and share none. Idf is what discounts a word every story uses, and what
makes a word-sense trap cheap: "strike" in a rail dispute and in a football
report is one shared word among dozens that are not shared, so the cosine
stays low unless the rest of the two stories agree. Topics and categories
weigh by their own rarity: sharing "World" says less than sharing "Health".
MIN_SIMILARITY is where a link stops being worth showing (eval/README.md
has the figures it was chosen from); a list ends there instead of being
filled with the next best.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from aggregator.enrich.profile import NAME_PREFIX, Profile

MIN_SIMILARITY = 0.25
TOPIC_WEIGHT = 0.2
CATEGORY_WEIGHT = 0.2
DISJOINT_PENALTY = 0.1  # each, when both articles have topics (or categories) and share none
SHOWN_FEATURES = 6  # shared words and names `explain` prints


@dataclass(frozen=True)
class Match:
    similarity: float
    text: float  # the cosine of the two profiles alone
    shared: tuple[tuple[str, float], ...]  # (feature, its share of the cosine), strongest first
    topics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


class Background:
    """Document frequencies of features, topics and categories over a sample of stored articles.

    Idf from a sample: the stored salient words (terms.py) hold only each
    article's most frequent words, so a word used once in every story never
    shows up in them; the sample's full profiles count it where it occurs.
    """

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self.features: Counter[str] = Counter()
        self.topics: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.size = 0
        for profile in profiles:
            self.size += 1
            self.features.update(profile.weights.keys())
            self.topics.update(profile.topics)
            self.categories.update(profile.categories)
        self._vectors: dict[str, tuple[Profile, dict[str, float]]] = {}
        self.unseen = math.log(1.0 + max(self.size, 1))  # idf of a feature the sample never saw
        self._idf = {f: self.idf(self.features, f) for f in self.features}

    def idf(self, counts: Counter[str], key: str) -> float:
        """Smoothed: a feature the sample never saw weighs as one it saw once."""
        return math.log(1.0 + max(self.size, 1) / max(counts[key], 1))

    def vector(self, profile: Profile) -> dict[str, float]:
        """The profile's unit-length idf-weighted vector, computed once per profile."""
        found = self._vectors.get(profile.id)
        if found is None or found[0] is not profile:
            idf, unseen = self._idf.get, self.unseen
            found = (profile, _unit({f: w * idf(f, unseen) for f, w in profile.weights.items()}))
            self._vectors[profile.id] = found
        return found[1]

    def set_cosine(self, counts: Counter[str], a: frozenset[str], b: frozenset[str]) -> float:
        shared = a & b
        if not shared:
            return 0.0
        weight = {x: self.idf(counts, x) ** 2 for x in a | b}
        return sum(weight[x] for x in shared) / math.sqrt(sum(weight[x] for x in a) * sum(weight[x] for x in b))


def score(a: Profile, b: Profile, background: Background) -> float:
    """The similarity alone: what ranking needs, without listing what is shared."""
    va, vb = background.vector(a), background.vector(b)
    small, large = (vb, va) if len(va) > len(vb) else (va, vb)
    return _with_labels(sum(w * large[f] for f, w in small.items() if f in large), a, b, background)


def similarity(a: Profile, b: Profile, background: Background) -> Match:
    """The similarity, and the shared features behind it, strongest first."""
    va, vb = background.vector(a), background.vector(b)
    small, large = (vb, va) if len(va) > len(vb) else (va, vb)
    shared = sorted(((f, w * large[f]) for f, w in small.items() if f in large), key=lambda p: (-p[1], p[0]))
    text = sum(share for _, share in shared)
    return Match(_with_labels(text, a, b, background), text, tuple(shared), tuple(sorted(a.topics & b.topics)),
                 tuple(sorted(a.categories & b.categories)))


def _with_labels(text: float, a: Profile, b: Profile, background: Background) -> float:
    """The text cosine, plus shared topics and categories, minus a little for none shared."""
    result = text
    for weight, counts, x, y in ((TOPIC_WEIGHT, background.topics, a.topics, b.topics),
                                 (CATEGORY_WEIGHT, background.categories, a.categories, b.categories)):
        if x and y:
            agreement = background.set_cosine(counts, x, y)
            result += weight * agreement - (DISJOINT_PENALTY if agreement == 0 else 0.0)
    return result


def shown(match: Match, a: Profile, b: Profile, count: int = SHOWN_FEATURES) -> tuple[list[str], list[str]]:
    """The strongest shared words and names of a match, as the texts spell them: (terms, names).

    A capitalised word (Gaza, Iraq) and a multi-word name (European Central Bank) are names.
    """
    terms: list[str] = []
    names: list[str] = []
    whole = {f[len(NAME_PREFIX):] for f, _ in match.shared if f.startswith(NAME_PREFIX)}
    for feature, _ in match.shared:
        spelling = a.spelled.get(feature) or b.spelled.get(feature)
        if feature.startswith(NAME_PREFIX):
            names.append(spelling or feature[len(NAME_PREFIX):])
        elif any(feature in name.split(" ") for name in whole):
            continue  # "Nations" is shown as part of "United Nations"
        elif spelling:
            names.append(spelling)
        else:
            terms.append(feature)
    return terms[:count], names[:count]


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {f: w / norm for f, w in vector.items()} if norm else {}
