"""The values between stages are frozen, and one enrich chain runs wherever a feed was parsed.

Each stage returns a new Article (dataclasses.replace) and leaves the one it
got as it was; a feed parsed in a worker process and one parsed in place are
stored alike.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from aggregator import pipeline
from aggregator.config import TopicConfig
from aggregator.dedup.detect import Deduplicator
from aggregator.enrich import chain
from aggregator.enrich.scrub import scrub
from aggregator.enrich.terms import encode, salient_words
from aggregator.enrich.text import content_hash
from aggregator.enrich.topics import TopicRules
from aggregator.ingest import parsing_pool
from aggregator.ingest.feed import parse_feed
from aggregator.models import Article, ParseResult, SiteRelated
from aggregator.storage.store import Store

HARBOUR = TopicConfig(slug="harbour", title="Harbour", keywords=("harbour",))
RULES = TopicRules((HARBOUR,))


def story(article_id: str = "a1", **fields) -> Article:
    title, text = fields.pop("title", "Harbour wall repairs begin"), fields.pop("text", "The harbour wall is mended.")
    return Article(id=article_id, source="s", title=title, text=text, content_hash=content_hash(title, text), **fields)


def test_an_article_is_frozen_and_its_sequences_are_tuples() -> None:
    article = story(authors=["Ann"], categories=["Ports"], site_related=[SiteRelated("Other")], topics=["x"])
    assert (article.authors, article.categories, article.topics) == (("Ann",), ("Ports",), ("x",))
    assert article.site_related == (SiteRelated("Other"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.topics = ("y",)  # type: ignore[misc]
    assert hash(article) == hash(dataclasses.replace(article))  # a value: equal copies hash alike


def test_each_step_returns_a_new_article_and_leaves_its_input_alone() -> None:
    parsed = story(title="Harbour\x00 wall", authors=["Ann\x1f"], origin="https://reader:secret@feeds.example/x.xml")
    before = copy.deepcopy(parsed)
    enriched = chain.enrich(parsed, chain.steps(RULES))
    assert parsed == before
    assert enriched.title == "Harbour wall" and enriched.authors == ("Ann",)
    assert enriched.origin == "https://reader:***@feeds.example/x.xml"
    assert enriched.topics == ("harbour",)
    assert enriched.terms == encode(salient_words(enriched.title, enriched.text))


def test_scrub_gives_back_the_same_value_when_nothing_needs_it() -> None:
    clean = story(origin="https://feeds.example/x.xml")
    assert scrub(clean) is clean


def test_dedup_sets_cluster_ids_on_new_values(tmp_path: Path) -> None:
    first, copy_of_it = story("a1"), story("a2", url="https://copy.example/1")
    with Store(tmp_path / "a.db") as store:
        done = Deduplicator(store).assign([first, copy_of_it])
    assert [a.cluster_id for a in done.articles] == ["a1", "a1"]
    assert (first.cluster_id, copy_of_it.cluster_id) == ("", "")


def big_feed(items: int = 200) -> bytes:
    entries = "".join(
        f"<item><title>Story {i} about the harbour</title><link>https://news.example/{i}</link>"
        f"<guid>https://news.example/{i}</guid><pubDate>Tue, 03 Jun 2025 09:30:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Paragraph {i} of a long enough story about ferries and the harbour wall, "
        f"told at length so that the feed is large.&lt;/p&gt;</description></item>"
        for i in range(items))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Big</title>'
            f"<link>https://news.example/</link><description>d</description>{entries}</channel></rss>").encode()


def test_a_feed_parsed_in_a_worker_is_stored_as_one_parsed_in_place(tmp_path: Path) -> None:
    data, url = big_feed(), "https://reader:secret@news.example/feed"
    pooled = parsing_pool.parse_feed_bytes(data, source="s", url=url, content_type=None, topics=(HARBOUR,))
    inline = parse_feed(data, source="s", url=url, content_type=None)
    assert pooled.enriched and not inline.enriched
    stored = []
    for name, result in (("pooled", pooled), ("inline", inline)):
        with Store(tmp_path / f"{name}.db") as store:
            report = pipeline.store_results(store, "s", [result], RULES)
            assert report.new == 200
            # `updated` is the store's own write time for entries that give none: the two stores
            # are written a moment apart, so it is the one field left out of the comparison.
            stored.append(sorted((dataclasses.replace(a, updated=None) for a in store.iter_articles()),
                                 key=lambda a: a.id))
    assert stored[0] == stored[1]
    assert all(a.topics == ("harbour",) and a.terms and "secret" not in a.origin for a in stored[0])


def test_an_unchanged_article_is_not_enriched_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store does not write an article whose content hash it holds, so the chain is not run on it."""
    articles = [story("a1"), story("a2", title="Ferry fares rise", text="Fares rise in the autumn.")]
    runs: list[str] = []
    original = chain.enrich
    monkeypatch.setattr(chain, "enrich", lambda article, steps: runs.append(article.id) or original(article, steps))
    with Store(tmp_path / "a.db") as store:
        pipeline.store_results(store, "s", [ParseResult(articles=articles)], RULES)
        assert sorted(runs) == ["a1", "a2"]
        edited = dataclasses.replace(articles[1], text="Fares rise in the spring.", content_hash="edited")
        report = pipeline.store_results(store, "s", [ParseResult(articles=[articles[0], edited])], RULES)
        assert (report.unchanged, report.updated) == (1, 1)
        assert sorted(runs) == ["a1", "a2", "a2"]
        assert store.get("a2").terms == encode(salient_words(edited.title, edited.text))
