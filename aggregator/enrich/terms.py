"""The words an article is about: what related posts match on.

An article's salient words are its most frequent useful words, title words
counting triple. The store keeps them with each article (column `terms`,
written with the row), so that ranking related posts reads a few hundred
bytes per article instead of re-reading and re-tokenizing every searched
body at every publish.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from aggregator.enrich.text import fold_for_matching, word_tokens

if TYPE_CHECKING:
    from aggregator.models import Article

KEPT = 24  # words kept per article: the pool related.py re-ranks by rarity
TEXT_WORDS = 1000  # a long article's subject is in its first thousand words
TITLE_WEIGHT = 3
PREFIX_CHARS = 64 * 1024  # of a longer text, only a prefix is split: 1,000 words fit in about 7 KB
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own
said same says she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves new one two three told last year years week
since may many much among amid per via within without according mr mrs ms us
""".split())

Terms = list[tuple[str, int]]


def salient_words(title: str, text: str) -> Terms:
    """(word, weight) for the KEPT most frequent useful words, most frequent first."""
    return salient(word_counts(title, text))


def word_counts(title: str, text: str) -> Counter[str]:
    """How often each folded word occurs in the text's first TEXT_WORDS words, title words
    counting TITLE_WEIGHT times: what the salient words and the profile (profile.py) both read."""
    counts = Counter(_first_words(text, TEXT_WORDS))
    for word in word_tokens(fold_for_matching(title)):
        counts[word] += TITLE_WEIGHT
    return counts


def salient(counts: Counter[str]) -> Terms:
    kept: Terms = []
    for word, count in counts.most_common():
        if len(word) > 2 and word not in STOPWORDS and not word.isdigit():
            kept.append((word, count))
            if len(kept) == KEPT:
                break
    return kept


def _first_words(text: str, count: int) -> tuple[str, ...]:
    """The first `count` words of the folded text, splitting only as much of it as they need.

    An article-sized text is folded and split whole (the fold and split dedup
    already did, remembered). A long one is cut to a prefix that holds more
    than `count` words: only its last word can be cut short, and it is not
    among them. Splitting all of a 10 MB text made 100 MB of words for these 1,000.
    """
    size = PREFIX_CHARS
    while len(text) > size:
        words = word_tokens(fold_for_matching(text[:size]))
        if len(words) > count:
            return words[:count]
        size *= 4
    return word_tokens(fold_for_matching(text))[:count]


def encoded(article: "Article") -> str:
    """The article's salient words as stored: the ones the enrich chain worked out (chain.py),
    or, for an article that did not go through it (a script, a test), worked out now."""
    return article.terms or encode(salient_words(article.title, article.text))


def encode(terms: Terms) -> str:
    """'word weight word weight ...': words are \\w+ tokens, so a space never occurs in one."""
    return " ".join(f"{word} {count}" for word, count in terms)


def decode(stored: str) -> Terms:
    parts = stored.split()
    return list(zip(parts[::2], map(int, parts[1::2])))
