"""Topic keywords take a shortcut (token sets, then the regex only where a term starts):
the same matches, scores and reasons as running each topic's regex over the whole text."""

from __future__ import annotations

import random
import re

import pytest

from aggregator.config import TopicConfig
from aggregator.models import Article
from aggregator.enrich.text import fold_for_matching
from aggregator.enrich.topics import TermPattern, TopicRules, words_of

TOPICS = (
    TopicConfig(slug="policy", title="P", keywords=("policy", "ally", "key", "journey", "strike", "bus", "Iraq"),
                exclude=("opinion piece", "sponsored")),
    TopicConfig(slug="places", title="Pl", keywords=("Zürich", "São Paulo", "new york", "york", "New York City",
                                                     "東京", "straße", "café"), min_score=2),
    TopicConfig(slug="phrases", title="Ph", keywords=("european union", "gene-editing trial", "rock 'n' roll",
                                                      "f-16", "u.s.", "data_centre", "2024", "naïve"),
                exclude=("football",)),
    TopicConfig(slug="odd", title="O", keywords=("c++", "at&t", "'quoted'", "e-mail-", "policy")),
    TopicConfig(slug="anywhere", title="A", keywords=("iraq", "++")),  # "++" has no word: the plain regex
    TopicConfig(slug="accent", title="Ac", keywords=("gaza", "\u0301")),  # folds to "": matches everywhere
)

FRAGMENTS = [
    "policy", "policies", "Policy's", "policies'", "POLICY\u2019S", "policys", "policyes", "xpolicy", "ally",
    "allies", "ally's", "keys", "kies", "journeys", "journies", "strike", "strikes", "striking", "bus", "buses",
    "bus'", "busses", "iraq", "Iraq\u2019s", "iraqi", "Zurich", "Z\u00fcrich", "Z\u00dcRICH's", "sao paulo",
    "S\u00e3o-Paulo", "sao  paulo", "new york", "New\u00a0York", "new york city", "newyork", "yorks", "york's",
    "\u6771\u4eac", "\u6771\u4eac\u90fd", "stra\u00dfe", "strasse", "caf\u00e9", "cafes", "european union",
    "European\n Union", "european-union", "gene-editing trials", "gene editing trial", "gene-editing-trial",
    "rock 'n' roll", "rock \u2019n\u2019 rolls", "f-16", "f-16s", "F16", "u.s.", "U.S.'s", "us", "u.s",
    "data_centre", "data_centres", "data centre", "2024", "2024s", "12024", "na\u00efve", "naive", "c++", "c++s",
    "c", "at&t", "at&ts", "AT & T", "'quoted'", "quoted", "e-mail-", "e-mail", "football", "footballs",
    "opinion pieces", "opinion piece", "sponsored", "++", "+", "gaza", "the", "a", "in", "of", ",", ".", "(", ")",
    "\u2014", "'", "\u2019", '"', "-", "_", "s", "es", "ies",
]
SEPARATORS = [" ", " ", " ", "", "-", "'", "\n", ", ", "\u00a0", "\t", "_"]


def text(rng: random.Random, size: int) -> str:
    parts = [rng.choice(FRAGMENTS) + rng.choice(SEPARATORS) for _ in range(size)]
    return "".join(parts)


def articles(seed: int, count: int) -> list[Article]:
    rng = random.Random(seed)
    return [Article(id=str(i), source="s", title=text(rng, rng.randint(0, 6)), text=text(rng, rng.randint(0, 60)))
            for i in range(count)]


def as_lists(matches: list) -> list:
    return [(m.slug, m.matched, m.score, m.reasons) for m in matches]


def plain_matches(self: TermPattern, text: str, words: set[str]) -> list[re.Match]:
    return list(self.pattern.finditer(text))


def test_explain_equals_the_plain_regex_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = TopicRules(TOPICS)
    sample = articles(seed=7, count=600)
    fast = [as_lists(rules.explain(a)) for a in sample]
    monkeypatch.setattr(TermPattern, "matches", plain_matches)
    assert fast == [as_lists(rules.explain(a)) for a in sample]
    reasons = [r for explained in fast for _, _, _, rs in explained for r in rs]
    assert sum(r.startswith("text has") for r in reasons) > 500  # the check compared real hits
    assert sum(r.startswith("excluded by") for r in reasons) > 50


def test_matches_equal_finditer_spans_and_groups() -> None:
    for topic in TOPICS:
        for terms in (topic.keywords, topic.exclude):
            if not terms:
                continue
            pattern = TermPattern(terms)
            for article in articles(seed=len(terms), count=200):
                for t in (fold_for_matching(article.title), fold_for_matching(article.text)):
                    expect = [(m.span(), m.group(1)) for m in pattern.pattern.finditer(t)]
                    assert [(m.span(), m.group(1)) for m in pattern.matches(t, words_of(t))] == expect, (terms, t)
                    found, first = pattern.search(t, words_of(t)), pattern.pattern.search(t)
                    assert (found and found.span()) == (first and first.span())


def test_terms_without_words_fall_back_to_the_plain_regex() -> None:
    assert not TermPattern(("iraq", "new york")).plain
    assert TermPattern(("iraq", "++")).plain
    assert TermPattern(("gaza", "\u0301")).plain


def test_a_longer_term_consumes_the_shorter_one_inside_it() -> None:
    rules = TopicRules((TopicConfig(slug="t", title="T", keywords=("york", "new york")),))
    (m,) = rules.explain(Article(id="x", source="s", title="New York's mayor", text="York and new\u00a0york"))
    assert m.reasons == ["title has 'new york'", "text has 'new york', 'york'"]


def test_words_of_is_findall_of_word_characters() -> None:
    for sample in ["", "a_b c-d e'f 12x", "na\u00efve caf\u00e9 \u6771\u4eac\u90fd, stra\u00dfe!", "x\u0301y \u00b2",
                   *(text(random.Random(i), 30) for i in range(50))]:
        for t in (sample, fold_for_matching(sample)):
            assert words_of(t) == set(re.findall(r"\w+", t)), t


def _fold_reference(text: str) -> str:
    """fold_for_matching without its shortcuts: NFKD, no combining marks, plain quotes, one space."""
    import unicodedata

    quotes = {"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"',
              "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-"}
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join(quotes.get(c, c) for c in text)
    from aggregator.enrich.text import _SPACE_RE

    return _SPACE_RE.sub(" ", text.lower()).strip()


def test_folding_shortcut_for_quotes_and_dashes_gives_the_same_text() -> None:
    """Curly quotes and dashes are replaced before the ASCII check; ″ (which NFKD splits) is not."""
    pieces = ["Iraq", "\u2019s", "\u201cquoted\u201d", "\u2014", "\u2013", "\u2212", "\u2032", "\u2033", "\u201b",
              "\u201e", "Zu\u0308rich", "Zürich", "São", "ﬁne", "Ⅸ", "東京", "  ", "\n", "\u00a0", "a", "B",
              " ", "\t", "\r", "\x0b", "\x0c", "\u2009"]
    rng = random.Random(7)
    for _ in range(2000):
        sample = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert fold_for_matching(sample) == _fold_reference(sample), repr(sample)
        assert fold_for_matching(sample) == _fold_reference(sample), repr(sample)  # remembered
    long = "".join(rng.choice(pieces) for _ in range(12_000))  # over the remembered size: folded every time
    assert len(long) > 20_000 and fold_for_matching(long) == _fold_reference(long)
