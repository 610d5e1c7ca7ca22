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
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from aggregator import config
from aggregator.config import TopicConfig
from aggregator.enrich.text import fold_for_matching, word_token_chunks
from aggregator.models import Article

if TYPE_CHECKING:
    import regex

TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0
CATEGORY_WEIGHT = 2.0
REGEX_WEIGHT = 1.0
SOURCE_TOPIC_WEIGHT = 100.0
REGEX_TIMEOUT = 0.25  # seconds per rule and text; config/topic_regex.py already refuses (a+)+-style rules

log = logging.getLogger("aggregator")


@dataclass
class TopicMatch:
    """Why a topic did or did not match one article: what `explain` prints."""

    slug: str
    matched: bool
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def _plural_y(term: str) -> bool:
    """Whether a folded term also matches with its final "y" as "ies" ("policy", "policies")."""
    return len(term) > 3 and term.endswith("y") and term[-2] not in "aeiou"


def _term_regex(term: str) -> str:
    """A folded term as a regex: any whitespace between words; "policy" also as "policies"."""
    words = [re.escape(w) for w in term.split()]
    if _plural_y(term):
        words[-1] = words[-1][:-1] + "(?:y|ies)"
    return r"\s+".join(words)


_SUFFIX = r"(?:'s|s'|'|s|es)?"
_ENDINGS = ("", "s", "es")  # what _SUFFIX can add to the \w+ token that ends a term
_WORD_RE = re.compile(r"\w+")


def words_of(text: str) -> set[str]:
    """The text's \\w+ tokens: built once per folded title or body, looked up by every topic.

    Built a chunk at a time, so a long text's words do not all exist at once.
    """
    words: set[str] = set()
    for chunk in word_token_chunks(text):
        words.update(chunk)
    return words


@dataclass(frozen=True)
class _TermNeeds:
    """What every match of one folded term has, so that texts without it skip the regex.

    Each \\w+ run of the term is a whole token of the matched text: the
    lookbehind, the whitespace between words and the term's own
    punctuation are not word characters. Only the last run can change:
    "y" -> "ies", then an "s" or "es" ending ("'s" splits off as a token
    of its own). A match also starts with `prefix` verbatim.
    """

    prefix: str
    tokens: frozenset[str]  # all of these: the runs before the last
    last: frozenset[str]  # and one of these: the last run's forms

    @classmethod
    def of(cls, term: str) -> _TermNeeds | None:
        """None for a term without a word character (or folded to "", a lone accent): it may match anywhere."""
        runs = _WORD_RE.findall(term)
        if not runs:
            return None
        first = term.split()[0]
        prefix = first[:-1] if _plural_y(term) and first == term else first
        stems = {runs[-1], runs[-1][:-1] + "ies"} if _plural_y(term) else {runs[-1]}
        return cls(prefix, frozenset(runs[:-1]), frozenset(s + e for s in stems for e in _ENDINGS))

    def key_tokens(self) -> frozenset[str]:
        """Tokens one of which every match has, those of the longest run (likely the rarest)."""
        longest = max(self.tokens, key=len, default="")
        return frozenset({longest}) if len(longest) > len(min(self.last, key=len)) else self.last

    def possible(self, words: set[str]) -> bool:
        return self.tokens <= words and not self.last.isdisjoint(words)


class TermPattern:
    """Keywords or excludes: the whole-word regex, run only where it can match.

    Python's re tries the lookbehind and the whole alternation at every
    character, for every topic on every title and body: run that way it
    is most of the cost of tagging. Here the text's tokens rule out most terms
    (usually all of a topic's, with one set operation), and the regex
    runs with `match` only where a term still possible starts, left to
    right from the end of the last match, as finditer would (the
    lookbehind still sees the text before). A ruled-out term matches
    nowhere, so the matches are exactly `pattern.finditer`'s.
    """

    def __init__(self, terms: tuple[str, ...]):
        folded = sorted({fold_for_matching(t) for t in terms if t.strip()}, key=len, reverse=True)
        alternatives = "|".join(_term_regex(term) for term in folded)
        self.pattern = re.compile(rf"(?<![\w])({alternatives}){_SUFFIX}(?![\w])")
        needs = [need for need in map(_TermNeeds.of, folded) if need]
        self.plain = len(needs) < len(folded)  # a term may match anywhere: run the regex on the whole text
        self.by_key: dict[str, list[_TermNeeds]] = {}  # key token -> the terms it is a key of
        for need in needs:
            for key in need.key_tokens():
                self.by_key.setdefault(key, []).append(need)
        self.keys = frozenset(self.by_key)

    def matches(self, text: str, words: set[str]) -> list[re.Match]:
        """`list(pattern.finditer(text))`; `words` is `words_of(text)`."""
        if self.plain:
            return list(self.pattern.finditer(text))
        if not self.may_match(words):
            return []
        starts: set[int] = set()
        for key in self.keys.intersection(words):
            for need in self.by_key[key]:
                if need.possible(words):
                    i = text.find(need.prefix)
                    while i >= 0:
                        starts.add(i)
                        i = text.find(need.prefix, i + 1)
        found: list[re.Match] = []
        end = 0
        for i in sorted(starts):
            if i >= end and (m := self.pattern.match(text, i)):
                found.append(m)
                end = m.end()
        return found

    def may_match(self, words: set[str]) -> bool:
        """False when `matches` finds nothing for certain: the text has none of the key tokens."""
        return self.plain or not self.keys.isdisjoint(words)

    def search(self, text: str, words: set[str]) -> re.Match | None:
        """`pattern.search(text)`."""
        found = self.matches(text, words)
        return found[0] if found else None


def _term_pattern(terms: tuple[str, ...]) -> TermPattern | None:
    """Whole words or phrases, with possessive and simple plural endings allowed."""
    return TermPattern(terms) if any(t.strip() for t in terms) else None


@dataclass
class CompiledTopic:
    config: TopicConfig
    keywords: TermPattern | None
    excludes: TermPattern | None
    regexes: list[regex.Pattern]
    categories: frozenset[str]
    sources: frozenset[str]
    languages: frozenset[str]

    @classmethod
    def compile(cls, topic: TopicConfig) -> CompiledTopic:
        return cls(
            config=topic,
            keywords=_term_pattern(topic.keywords),
            excludes=_term_pattern(topic.exclude),
            regexes=_user_regexes(topic.regex),
            categories=frozenset(fold_for_matching(c) for c in topic.categories),
            sources=frozenset(topic.sources),
            languages=frozenset(topic.languages),
        )

    def may_score(self, categories: set[str], own: tuple[str, ...], words: tuple[set[str], set[str]]) -> bool:
        """Whether anything could give this topic a score (a score of 0 never matches): most topics
        share no keyword, category or source with a given article, and `tags` skips them here."""
        if self.regexes or self.config.slug in own or not self.categories.isdisjoint(categories):
            return True
        return self.keywords is not None and any(self.keywords.may_match(w) for w in words)

    def match(self, title: str, body: str, categories: set[str], source: str,
              source_topics: tuple[str, ...] = (), words: tuple[set[str], set[str]] | None = None,
              language: str = "") -> TopicMatch:
        """Score one article (title and body already folded; `words`: their `words_of`, if known)."""
        slug = self.config.slug
        title_words, body_words = (words_of(title), words_of(body)) if words is None else words
        result = TopicMatch(slug, False)
        if self.sources and source not in self.sources:
            result.reasons.append(f"source {source!r} is not in sources")
            return result
        if self.languages and language and language not in self.languages:
            result.reasons.append(f"language {language!r} is not in languages")
            return result
        if self.excludes and (hit := self.excludes.search(title, title_words)
                                  or self.excludes.search(body, body_words)):
            result.reasons.append(f"excluded by {hit.group(1)!r}")
            return result
        if slug in source_topics:
            result.score += SOURCE_TOPIC_WEIGHT
            result.reasons.append(f"source {source!r} puts every article in this topic")
        if self.keywords:
            for where, text, text_words, weight in (("title", title, title_words, TITLE_WEIGHT),
                                                    ("text", body, body_words, BODY_WEIGHT)):
                hits = sorted({m.group(1) for m in self.keywords.matches(text, text_words)})
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


def _user_regexes(patterns: tuple[str, ...]) -> list[regex.Pattern]:
    """Compiled as `aggregator check` judged them (config/topic_regex.py: the `regex` package,
    which has a timeout); a config without regex rules never loads it."""
    return [config.topic_regex.compile_rule(p) for p in patterns]


def _bounded_search(pattern: regex.Pattern, text: str) -> bool:
    """Search, giving up (as "no match") after REGEX_TIMEOUT so one article cannot stall ingest."""
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        log.warning("topic regex %r gave up after %gs on one article; simplify it", pattern.pattern,
                    REGEX_TIMEOUT)
        return False


@lru_cache(maxsize=8)
def _compiled(topics: tuple[TopicConfig, ...]) -> list[CompiledTopic]:
    """Each config's topics compiled once per process, not once per source: a parse worker
    builds TopicRules per source, since each source puts its articles in its own topics."""
    return [CompiledTopic.compile(t) for t in topics]


class TopicRules:
    """All topics of one config; build once, then call `tags` per article.

    Compiled on first use: a run that finds nothing new tags nothing.
    """

    def __init__(self, topics: tuple[TopicConfig, ...], source_topics: dict[str, tuple[str, ...]] | None = None):
        self.configs = topics
        self.source_topics = source_topics or {}

    @cached_property
    def topics(self) -> list[CompiledTopic]:
        return _compiled(self.configs)

    @cached_property
    def uses_words(self) -> bool:
        return any(t.keywords or t.excludes for t in self.topics)

    def explain(self, article: Article) -> list[TopicMatch]:
        folded = self._folded(article)
        return [folded.matched_by(t) for t in self.topics]

    def tags(self, article: Article) -> list[str]:
        """explain's matched slugs, without scoring the topics that cannot score (the reasons
        explain writes for every topic cost more than deciding which topics match)."""
        folded = self._folded(article)
        return [t.config.slug for t in self.topics
                if t.may_score(folded.categories, folded.own, folded.words) and folded.matched_by(t).matched]

    def _folded(self, article: Article) -> _FoldedArticle:
        title = fold_for_matching(article.title)
        body = fold_for_matching(article.text or article.summary)
        return _FoldedArticle(article, title, body, {fold_for_matching(c) for c in article.categories},
                              self.source_topics.get(article.source, ()),
                              (words_of(title), words_of(body)) if self.uses_words else (set(), set()))


@dataclass(frozen=True)
class _FoldedArticle:
    """An article as every topic's rules read it: folded once, matched against each topic."""

    article: Article
    title: str
    body: str
    categories: set[str]
    own: tuple[str, ...]  # the topics its source puts every article in
    words: tuple[set[str], set[str]]  # words_of(title), words_of(body)

    def matched_by(self, topic: CompiledTopic) -> TopicMatch:
        return topic.match(self.title, self.body, self.categories, self.article.source, self.own, self.words,
                           self.article.language)
