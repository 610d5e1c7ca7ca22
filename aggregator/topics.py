"""Topic rules from the config, compiled once, applied to many articles.

Matching runs on folded text (lowercase, no accents, plain quotes), so
"Iraq’s" in a typographic source matches the keyword "iraq" and
"Zürich" matches "zurich". A keyword in the title weighs more than one in
the body; a topic needs `min_score` to match, and any `exclude` term or a
source not listed in `sources` keeps an article out whatever its score.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import regex  # like re, plus a timeout: a topic's regex comes from the user and may backtrack

from .config import TopicConfig
from .models import Article
from .normalize import fold_for_matching

TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0
CATEGORY_WEIGHT = 2.0
REGEX_WEIGHT = 1.0
SOURCE_TOPIC_WEIGHT = 100.0
REGEX_TIMEOUT = 0.25  # seconds per rule and text; config.py already refuses (a+)+-style rules

log = logging.getLogger("aggregator")


@dataclass
class TopicMatch:
    """Why a topic did or did not match one article: what `explain` prints."""

    slug: str
    matched: bool
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def _term_regex(term: str) -> str:
    """A folded term as a regex: any whitespace between words; "policy" also as "policies"."""
    words = [re.escape(w) for w in term.split()]
    if len(term) > 3 and term.endswith("y") and term[-2] not in "aeiou":
        words[-1] = words[-1][:-1] + "(?:y|ies)"
    return r"\s+".join(words)


def _term_pattern(terms: tuple[str, ...]) -> re.Pattern | None:
    """Whole words or phrases, with possessive and simple plural endings allowed."""
    folded = sorted({fold_for_matching(t) for t in terms if t.strip()}, key=len, reverse=True)
    if not folded:
        return None
    alternatives = "|".join(_term_regex(term) for term in folded)
    return re.compile(rf"(?<![\w])({alternatives})(?:'s|s'|'|s|es)?(?![\w])")


@dataclass
class CompiledTopic:
    config: TopicConfig
    keywords: re.Pattern | None
    excludes: re.Pattern | None
    regexes: list[regex.Pattern]
    categories: frozenset[str]
    sources: frozenset[str]

    @classmethod
    def compile(cls, topic: TopicConfig) -> "CompiledTopic":
        return cls(
            config=topic,
            keywords=_term_pattern(topic.keywords),
            excludes=_term_pattern(topic.exclude),
            regexes=[regex.compile(p, regex.I | regex.V0) for p in topic.regex],
            categories=frozenset(fold_for_matching(c) for c in topic.categories),
            sources=frozenset(topic.sources),
        )

    def match(self, title: str, body: str, categories: set[str], source: str,
              source_topics: tuple[str, ...] = ()) -> TopicMatch:
        """Score one article (title and body already folded)."""
        slug = self.config.slug
        result = TopicMatch(slug, False)
        if self.sources and source not in self.sources:
            result.reasons.append(f"source {source!r} is not in sources")
            return result
        if self.excludes and (hit := self.excludes.search(title) or self.excludes.search(body)):
            result.reasons.append(f"excluded by {hit.group(1)!r}")
            return result
        if slug in source_topics:
            result.score += SOURCE_TOPIC_WEIGHT
            result.reasons.append(f"source {source!r} puts every article in this topic")
        if self.keywords:
            for where, text, weight in (("title", title, TITLE_WEIGHT), ("text", body, BODY_WEIGHT)):
                hits = sorted({m.group(1) for m in self.keywords.finditer(text)})
                if hits:
                    result.score += weight * len(hits)
                    result.reasons.append(f"{where} has {', '.join(repr(h) for h in hits)}")
        shared = sorted(self.categories & categories)
        if shared:
            result.score += CATEGORY_WEIGHT * len(shared)
            result.reasons.append(f"category {', '.join(repr(c) for c in shared)}")
        for pattern in self.regexes:
            if _bounded_search(pattern, title) or _bounded_search(pattern, body):
                result.score += REGEX_WEIGHT
                result.reasons.append(f"regex {pattern.pattern!r}")
        result.matched = result.score >= self.config.min_score and result.score > 0
        if not result.matched and result.score > 0:
            result.reasons.append(f"score {result.score:g} is below min_score {self.config.min_score:g}")
        return result


def _bounded_search(pattern: regex.Pattern, text: str) -> bool:
    """Search, giving up (as "no match") after REGEX_TIMEOUT so one article cannot stall ingest."""
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        log.warning("topic regex %r gave up after %gs on one article; simplify it", pattern.pattern,
                    REGEX_TIMEOUT)
        return False


class TopicRules:
    """All topics of one config; build once, then call `tags` per article."""

    def __init__(self, topics: tuple[TopicConfig, ...], source_topics: dict[str, tuple[str, ...]] | None = None):
        self.topics = [CompiledTopic.compile(t) for t in topics]
        self.source_topics = source_topics or {}

    def explain(self, article: Article) -> list[TopicMatch]:
        title = fold_for_matching(article.title)
        body = fold_for_matching(article.text or article.summary)
        categories = {fold_for_matching(c) for c in article.categories}
        own = self.source_topics.get(article.source, ())
        return [t.match(title, body, categories, article.source, own) for t in self.topics]

    def tags(self, article: Article) -> list[str]:
        return [m.slug for m in self.explain(article) if m.matched]
