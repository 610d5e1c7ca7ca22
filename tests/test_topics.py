"""Topic rules: each rule kind, folding, possessives and plurals, scoring, explain, bad regexes."""

from __future__ import annotations

import time

from aggregator.config import TopicConfig
from aggregator.config.topic_regex import checked_rule, compile_rule
from aggregator.enrich.topics import TopicRules
from aggregator.models import Article


def art(title: str, text: str = "", categories: list[str] | None = None, source: str = "s") -> Article:
    return Article(id="x", source=source, title=title, text=text, categories=categories or [])


def tags(topic: TopicConfig, article: Article, source_topics: dict | None = None) -> list[str]:
    return TopicRules((topic,), source_topics).tags(article)


def test_keywords_are_whole_words_case_and_accent_insensitive() -> None:
    topic = TopicConfig(slug="t", title="T", keywords=("zurich", "IRAQ"))
    assert tags(topic, art("Banks in Z\u00fcrich")) == ["t"]
    assert tags(topic, art("iraq vote")) == ["t"]
    assert tags(topic, art("Iraqi vote")) == []  # a different word
    assert tags(topic, art("Suriraq")) == []


def test_possessives_and_simple_plurals_match() -> None:
    topic = TopicConfig(slug="t", title="T", keywords=("iraq", "strike", "policy"))
    assert tags(topic, art("Iraq\u2019s new cabinet")) == ["t"]  # typographic apostrophe
    assert tags(topic, art("Iraq's new cabinet")) == ["t"]
    assert tags(topic, art("Air strikes overnight")) == ["t"]
    assert tags(topic, art("New policies announced")) == ["t"]


def test_phrases_match_across_whitespace_but_not_partially() -> None:
    topic = TopicConfig(slug="t", title="T", keywords=("european union",))
    assert tags(topic, art("The European\u00a0 Union summit")) == ["t"]
    assert tags(topic, art("European leaders and union members")) == []


def test_categories_regex_sources_and_exclude() -> None:
    cat = TopicConfig(slug="t", title="T", categories=("Middle East",))
    assert tags(cat, art("x", categories=["middle east"])) == ["t"]
    rx = TopicConfig(slug="t", title="T", regex=(r"\bF-?16s?\b",))
    assert tags(rx, art("Deal for f16 jets")) == ["t"]
    only = TopicConfig(slug="t", title="T", keywords=("gaza",), sources=("wire",))
    assert tags(only, art("Gaza", source="blog")) == []
    assert tags(only, art("Gaza", source="wire")) == ["t"]
    excl = TopicConfig(slug="t", title="T", keywords=("iraq",), exclude=("football",))
    assert tags(excl, art("Iraq's football team wins")) == []


def test_a_regex_rule_runs_as_the_config_check_accepted_it() -> None:
    """One engine: `regex`-only syntax that `aggregator check` accepts is what tagging runs."""
    topic = TopicConfig(slug="t", title="T", regex=(checked_rule(r"\p{L}+stan\b"),))
    assert tags(topic, art("Elections in Kazakhstan")) == ["t"]
    assert tags(topic, art("Elections in Kenya")) == []
    [compiled] = TopicRules((topic,)).topics[0].regexes
    assert (compiled.pattern, compiled.flags) == (r"\p{L}+stan\b", compile_rule(r"\p{L}+stan\b").flags)


def test_min_score_weighs_title_over_body() -> None:
    topic = TopicConfig(slug="t", title="T", keywords=("gaza",), min_score=2)
    assert tags(topic, art("Gaza talks")) == ["t"]            # title: 2
    assert tags(topic, art("Talks", "Talks on Gaza.")) == []  # body: 1


def test_source_topics_put_every_article_in() -> None:
    topic = TopicConfig(slug="t", title="T", keywords=("never",))
    assert tags(topic, art("anything"), {"s": ("t",)}) == ["t"]


def test_explain_names_the_terms_and_rules() -> None:
    rules = TopicRules((TopicConfig(slug="me", title="ME", keywords=("iraq",), min_score=5),
                        TopicConfig(slug="eu", title="EU", keywords=("iraq",), exclude=("football",))))
    me, eu = rules.explain(art("Iraq's vote", "football fans in Iraq"))
    assert not me.matched and "title has 'iraq'" in me.reasons and any("below min_score" in r for r in me.reasons)
    assert not eu.matched and eu.reasons == ["excluded by 'football'"]


def test_catastrophic_regex_gives_up_quickly() -> None:
    topic = TopicConfig(slug="t", title="T", regex=(r"(x|x)*y",))
    start = time.monotonic()
    assert tags(topic, art("x" * 40, "x" * 5000)) == []
    assert time.monotonic() - start < 3
