"""Related posts: text similarity blended with topics and recency; the site's picks first;
never the article itself or a copy from its duplicate cluster; one per cluster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.models import Article, SiteRelated
from aggregator.normalize import content_hash
from aggregator.related import MAX_TERMS, WordRarity, related_posts, salient_terms
from aggregator.store import Store

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def art(article_id: str, title: str, text: str, *, topics: tuple[str, ...] = (), days_ago: float = 0,
        cluster: str = "", related: tuple[str, ...] = ()) -> Article:
    article = Article(id=article_id, source="test", site=f"Site {article_id}", title=title, text=text,
                      published=NOW - timedelta(days=days_ago), topics=list(topics),
                      cluster_id=cluster or article_id, site_related=[SiteRelated(t) for t in related])
    article.content_hash = content_hash(title, text)
    return article


def stored(tmp_path: Path, articles: list[Article]) -> Store:
    store = Store(tmp_path / "related.db")
    store.write_articles(articles, {a.id: a.topics for a in articles})
    return store


DROUGHT = "The Tigris river fell to a record low as drought and heat dried farms across Iraq."
CORPUS = [
    art("base", "Tigris river hits record low in Iraq drought", DROUGHT, topics=("climate", "middle-east")),
    art("copy", "Tigris river hits record low amid Iraq drought", DROUGHT, cluster="base",
        topics=("climate",)),
    art("near", "Euphrates and Tigris drought worsens for Iraq farms",
        "Farmers along the Tigris and Euphrates say drought and record heat are ruining farms in Iraq.",
        topics=("climate", "middle-east"), days_ago=1),
    art("near-dup", "Euphrates and Tigris drought worsens for Iraq farmers",
        "Farmers along the Tigris and Euphrates say drought and record heat are ruining farms in Iraq.",
        topics=("climate",), cluster="near", days_ago=1),
    art("sport", "Iraq reach Asian Cup quarter-finals", "Iraq won a football match in the Asian Cup.",
        topics=("sport",), days_ago=2),
    art("chips", "Chipmaker opens new semiconductor plant", "A chipmaker will build a semiconductor plant.",
        topics=("technology",)),
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with stored(tmp_path, CORPUS) as opened:
        yield opened


def test_never_itself_nor_its_cluster_and_one_per_cluster(store: Store) -> None:
    base = store.get("base")
    ids = [r.id for r in related_posts(store, base, 5)]
    assert "base" not in ids and "copy" not in ids
    assert ids[0] in ("near", "near-dup") and not {"near", "near-dup"} <= set(ids)
    assert "chips" not in ids, "no shared salient term, so not related"
    copy_ids = [r.id for r in related_posts(store, store.get("copy"), 5)]
    assert "base" not in copy_ids and "copy" not in copy_ids


def test_limit_is_respected_and_zero_means_none(store: Store) -> None:
    base = store.get("base")
    assert len(related_posts(store, base, 1)) == 1
    assert related_posts(store, base, 0) == []


def test_site_picks_come_first_in_the_sites_order_but_never_its_own_cluster(tmp_path: Path) -> None:
    picker = art("picker", "Tigris river record low as drought bites", DROUGHT, topics=("climate",),
                 related=("Chipmaker opens new semiconductor plant", "Iraq reach Asian Cup quarter-finals",
                          "Tigris river hits record low in Iraq drought", "A title nobody stored"))
    picker.cluster_id = "base"  # a copy of `base`: the site's pick of base is its own story
    with stored(tmp_path, [*CORPUS, picker]) as store:
        ids = [r.id for r in related_posts(store, store.get("picker"), 4)]
    assert ids[:2] == ["chips", "sport"]
    assert "base" not in ids and "copy" not in ids and "picker" not in ids
    assert ids[2] in ("near", "near-dup")


def test_shared_topics_and_recency_break_text_ties(tmp_path: Path) -> None:
    text = "Wildfire smoke covered the valley towns overnight."
    articles = [
        art("query", "Wildfire smoke covers valley", text, topics=("climate",)),
        art("same-topic-recent", "Wildfire smoke covers valley towns", text, topics=("climate",), days_ago=1),
        art("other-topic-recent", "Wildfire smoke covers valley towns!", text, topics=("sport",), days_ago=1),
        art("same-topic-old", "Wildfire smoke covers valley towns.", text, topics=("climate",), days_ago=200),
    ]
    with stored(tmp_path, articles) as store:
        ids = [r.id for r in related_posts(store, store.get("query"), 3)]
    assert ids[0] == "same-topic-recent"
    assert ids.index("same-topic-recent") < ids.index("other-topic-recent")
    assert ids.index("same-topic-recent") < ids.index("same-topic-old")


def test_related_links_carry_title_site_and_date(store: Store) -> None:
    link = related_posts(store, store.get("base"), 1)[0]
    target = store.get(link.id)
    assert (link.title, link.site, link.published) == (target.title, target.site, target.published)


def test_salient_terms_prefer_title_words_and_drop_stopwords() -> None:
    terms = salient_terms(CORPUS[0])
    assert {"tigris", "river", "drought", "iraq"} <= set(terms[:6])
    assert "the" not in terms and "and" not in terms and len(terms) <= 14


def test_salient_terms_weigh_words_by_how_rare_they_are_in_the_store(tmp_path: Path) -> None:
    """A word every stored article uses ranks below a rarer one the article uses as often."""
    common = " ".join(f"Officials discussed matter {n} at the summit." for n in range(3))
    others = [art(f"o{n}", f"Summit officials meet on topic {n}", common) for n in range(6)]
    subject = art("s", "Officials at the summit discuss the Tigris",
                  "Officials at the summit discussed the Tigris. The Tigris officials met at the summit.")
    with stored(tmp_path, [*others, subject]) as store:
        by_frequency = salient_terms(subject)
        rarity = WordRarity(store, 0)
        by_rarity = salient_terms(subject, rarity)
        assert rarity("tigris") > rarity("summit") == rarity("officials") == 0.0  # in every article
        assert by_frequency.index("tigris") > by_frequency.index("officials")
        assert by_rarity[0] == "tigris" and len(by_rarity) <= MAX_TERMS
