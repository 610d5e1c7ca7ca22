"""What an article is about, as related posts compare it: its words, the names in it, its categories.

In: an Article. Out: a Profile: weighted features (folded words, and the
multi-word names of people, places and organisations as features of their
own), its categories and topics, and how each name or capitalised word is
spelled in the text (for `explain`).

The enrich chain works the features out once per version of an article,
from the word counts its salient words come from (terms.py), and the store
keeps them (column `profile`): judging a related-post candidate reads a
line of features instead of reading and re-tokenizing the candidate whole.

Why not the stored salient words alone: they are the 24 most frequent
words, and in news most of those are the trade's own vocabulary
(officials, week, plan, figures) that says nothing about the subject. A
profile reads the text, leaves that vocabulary out (GENERIC) and keeps every
other word, so two stories on one subject meet on the words they share
however rare. A word inside a name counts for less than the same word alone,
and the name counts as a feature of its own: "Red Sea" and "Baltic Sea" are
two places, not one shared "sea".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

from aggregator.enrich import terms
from aggregator.enrich.terms import STOPWORDS
from aggregator.enrich.text import fold_for_matching, word_tokens
from aggregator.models import Article

PROFILE_CHARS = 8_000  # names are read from this much of the text; words from terms.TEXT_WORDS
MAX_WORDS = 96  # the most frequent words kept
INSIDE_NAME_WEIGHT = 0.5  # a word as part of a name ("Sea" in "Red Sea") counts half
NAME_PREFIX = "#"  # features that are names start with this; words never do (\w+ tokens)

# Words any news story may use whatever its subject: reporting, time, quantity, officialdom,
# vague verbs and adjectives. Kept out of profiles, so that two stories do not look alike
# because both were "announced on Tuesday by officials who expect figures next week".
GENERIC = frozenset("""
able according across added adding affected afternoon again ago ahead agreed aim aimed already although
announced announcement annual another anyone anything april area areas around asked august away back
based become began begin behind believe best better big billion biggest board both bring brought call
called calling calls came can cannot case cases cause caused central change changes chief city claim
claims clear close closely come comes coming comment comments concern concerns confirmed continue
continued cost costs could country countries course critics current currently daily date day days
deal decade decades december decided decision despite detail details did director dozens due during
earlier early either else end ended ending enough even evening events ever every expected experts
face faced facing fact fall february federal feel felt few figure figures final find first five
following former four friday full future gave general get getting give given giving going good got
government great group groups grow growing half head held help high higher hold home hope hopes hour
hours however hundreds important include included includes including increase information instead issue
issues january july june keep kept key kind know known large largest last late later latest lead leader
leaders least left less level levels likely line lines little local long longer look looking lost lot low
lower made main major make makes making march matter may meanwhile measures meeting meetings member members
message million minister ministers ministry monday month months morning move moved moves much must name
national near nearly need needed needs never next night nine none november number numbers october
office officer officers official officials often old ongoing open opened order others part parts past
people percent perhaps period place plan planned plans point points possible press previous
probably problem problems process public put question questions quickly rather reached read ready real
really reason recent recently record region regional release released remain remained remains report
reported reporters reports result results return right rise rising role run said saturday saw say saying
says second see seen senior september set seven several short show showed shows side sides significant
similar since situation six small so-called source sources speak speaking spokesman spokesperson
spokeswoman start started state statement states still stop sunday support take taken taking talk
talks team ten term terms thing things think third thousands three thursday time times today together
told took top total towards tuesday turn two under understand until update use used using various
warned warning warns way wednesday week weekend weeks well went whether whole wide without work worked
working world would year years yesterday yet young
""".split())

_EXCLUDED = STOPWORDS | GENERIC

# Runs of two or more capitalised words, joined by spaces or "of", in the body (titles are often
# title case throughout, so names are read from the text only).
_NAME_RE = re.compile(r"[A-ZÀ-ÖØ-Þ][\w'’.-]*(?:\s+(?:of\s+(?:the\s+)?)?[A-ZÀ-ÖØ-Þ][\w'’-]*)+")
# A capitalised word after a lowercase word or a comma: a name, not a sentence's first word.
_CAPITALISED_RE = re.compile(r"(?<=[a-z,;:] )[A-ZÀ-ÖØ-Þ][\w'’-]+")
_POSSESSIVE_RE = re.compile(r"['’]s?$")


@dataclass(frozen=True)
class Profile:
    """An article's features with their weights (tf, before idf), and the facts compared besides."""

    id: str
    weights: dict[str, float]
    categories: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    spelled: dict[str, str] = field(default_factory=dict)  # feature -> how the text writes it, for names


def profile(article: Article, spellings: bool = False) -> Profile:
    """The article's profile: its stored features when it has them, else worked out now.

    `spellings`: also note how the text writes each name and capitalised word
    (what `explain` shows; ranking does not need it, and the store keeps none)."""
    if article.profile and not spellings:
        return from_stored(article.id, article.profile, article.categories, article.topics)
    weights, spelled = features(terms.word_counts(article.title, article.text), article.text, spellings)
    return Profile(article.id, weights, _categories(article.categories), frozenset(article.topics), spelled)


def from_stored(article_id: str, stored: str, categories: Iterable[str], topics: Iterable[str]) -> Profile:
    return Profile(article_id, decode(stored), _categories(categories), frozenset(topics))


def encoded(article: Article) -> str:
    """The article's features as stored: the enrich chain's, or (a script, a test) worked out now."""
    return article.profile or worked_out(article.title, article.text)


def worked_out(title: str, text: str) -> str:
    """The stored form of the features of a title and text (what the enrich chain stores)."""
    return encode(features(terms.word_counts(title, text), text)[0])


def features(counts: Counter[str], text: str, spellings: bool = False) -> tuple[dict[str, float], dict[str, str]]:
    """(feature -> weight, feature -> spelling) from the article's word counts (terms.word_counts)
    and its text, where names are found. `counts` is left as it is."""
    useful = {w: n for w, n in counts.items() if w not in _EXCLUDED and len(w) > 2 and not w.isdigit()}
    if len(useful) > MAX_WORDS:
        useful = dict(sorted(useful.items(), key=lambda item: (-item[1], item[0]))[:MAX_WORDS])
    kept: dict[str, float] = dict(useful)
    spelled: dict[str, str] = {}
    names: Counter[str] = Counter()
    text = text[:PROFILE_CHARS]
    for match in _NAME_RE.finditer(text):
        name, words = _name(match.group())
        if len(words) < 2:
            continue
        names[name] += 1
        if spellings:
            spelled.setdefault(NAME_PREFIX + name, _spelling(match.group(), name))
        for word in words:
            if word in kept:
                kept[word] -= 1 - INSIDE_NAME_WEIGHT
    for match in _CAPITALISED_RE.finditer(text) if spellings else ():
        word = fold_for_matching(_POSSESSIVE_RE.sub("", match.group()))
        if word in kept:
            spelled.setdefault(word, _POSSESSIVE_RE.sub("", match.group()))
    weights = {word: _saturated(count) for word, count in kept.items() if count > 0}
    weights.update({NAME_PREFIX + name: _saturated(count) for name, count in names.items()})
    return weights, spelled


def encode(weights: dict[str, float]) -> str:
    """'feature weight ...'; a name's words joined by '+', which no word token holds."""
    return " ".join(f"{feature.replace(' ', '+')} {_weight_text(weight)}" for feature, weight in weights.items())


@lru_cache(maxsize=1024)
def _weight_text(weight: float) -> str:
    """A weight as stored. Weights come from word counts, so a few hundred values recur in every
    article: each is formatted once (a third of encoding an article's profile)."""
    return f"{weight:.4g}"


def decode(stored: str) -> dict[str, float]:
    parts = stored.split()
    return {feature.replace("+", " "): float(weight) for feature, weight in zip(parts[::2], parts[1::2])}


def _categories(categories: Iterable[str]) -> frozenset[str]:
    return frozenset(fold_for_matching(c) for c in categories if c.strip())


def _useful(word: str) -> bool:
    return len(word) > 2 and not word.isdigit() and word not in _EXCLUDED


@lru_cache(maxsize=4096)
def _name(surface: str) -> tuple[str, tuple[str, ...]]:
    """A name's folded form without leading function words ("The European Commission" ->
    "european commission"), and its useful words. Remembered: news repeats its names, within
    an article and across a feed."""
    words = list(word_tokens(fold_for_matching(_POSSESSIVE_RE.sub("", surface))))
    while words and (words[0] in STOPWORDS or words[0] in GENERIC):
        words.pop(0)
    return " ".join(words), tuple(w for w in words if _useful(w))


def _spelling(surface: str, name: str) -> str:
    """The name as the text writes it, without the function words _name drops ("The ")."""
    words = surface.split()
    while len(words) > 1 and not fold_for_matching(" ".join(words)).startswith(name.split(" ")[0]):
        words.pop(0)
    return _POSSESSIVE_RE.sub("", " ".join(words))


def _saturated(count: float) -> float:
    """A word's weight grows with the log of its count: the tenth mention adds little to the first."""
    return 1.0 + math.log(count) if count >= 1 else count
