"""The enrich chain: an Article as parsed in, the Article as stored out.

A chain is a short tuple of steps, each a plain function from Article to
Article that returns a new value (`dataclasses.replace`) and never changes
the one it got, as structlog's processors do with an event. The same chain
runs in a parse worker process (ingest/parsing_pool.py, for a large feed)
and on the main thread (pipeline.store_batch, for the rest), so an article
comes out the same wherever its feed was parsed.

    scrub      characters XML 1.0 cannot hold, and a feed URL's login, out (scrub.py)
    language   its language when the source did not declare one (language.py)
    tag        the topics the config's rules put it in (topics.py)
    add_terms  its salient words and profile, what related posts match and judge on (terms.py, profile.py)

Dedup follows the chain, in dedup/: it needs the store.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable

from aggregator.enrich import language, profile, terms
from aggregator.enrich.scrub import scrub
from aggregator.enrich.topics import TopicRules
from aggregator.models import Article

Step = Callable[[Article], Article]


def steps(rules: TopicRules) -> tuple[Step, ...]:
    """The chain for one config's topic rules (and its sources' own topics)."""
    return (scrub, with_language, tagger(rules), add_terms)


def enrich(article: Article, chain: Iterable[Step]) -> Article:
    """The article through every step, in order."""
    for step in chain:
        article = step(article)
    return article


def with_language(article: Article) -> Article:
    """The article with its language: as declared, else as CLD2 reads its title and text."""
    if article.language:
        return article
    detected = language.detected_language(article.title, article.text)
    return replace(article, language=detected) if detected else article


def tagger(rules: TopicRules) -> Step:
    """The step that puts an article in the topics `rules` give it."""

    def tag(article: Article) -> Article:
        topics = tuple(rules.tags(article))
        return article if topics == article.topics else replace(article, topics=topics)

    return tag


def add_terms(article: Article) -> Article:
    """The article with its salient words and its profile, worked out from one count of the words
    of its title and text as they are now."""
    counts = terms.word_counts(article.title, article.text)
    return replace(article, terms=terms.encode(terms.salient(counts)),
                   profile=profile.encode(profile.features(counts, article.text)[0]))
