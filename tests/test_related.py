"""Related posts: a search for candidates, then each judged on the whole story (words and names,
generic news vocabulary left out, topics and categories); fewer links rather than filler; the site's
picks first; never the article itself or a copy from its duplicate cluster; one per cluster."""

from __future__ import annotations

from dataclasses import replace

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.models import Article, SiteRelated
from aggregator.enrich.text import content_hash
from aggregator.publish.related import MAX_TERMS, SEARCH_WINDOW, TermWindow, compute_related, related_posts
from aggregator.storage.store import Store
from aggregator.enrich.terms import decode, salient_words

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def art(article_id: str, title: str, text: str, *, topics: tuple[str, ...] = (), days_ago: float = 0,
        cluster: str = "", related: tuple[str, ...] = ()) -> Article:
    return Article(id=article_id, source="test", site=f"Site {article_id}", title=title, text=text,
                   published=NOW - timedelta(days=days_ago), topics=list(topics),
                   cluster_id=cluster or article_id, site_related=[SiteRelated(t) for t in related],
                   content_hash=content_hash(title, text))


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
                          "Tigris river hits record low in Iraq drought", "A title nobody stored"),
                 cluster="base")  # a copy of `base`: the site's pick of base is its own story
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


def test_salient_words_prefer_title_words_and_drop_stopwords() -> None:
    words = [w for w, _ in salient_words(CORPUS[0].title, CORPUS[0].text)]
    assert {"tigris", "river", "drought", "iraq"} <= set(words[:6])
    assert "the" not in words and "and" not in words and len(words) <= 14


def test_the_query_weighs_words_by_how_rare_they_are_in_the_window(tmp_path: Path) -> None:
    """A word every stored article uses ranks below a rarer one the article uses as often,
    and a word no other article uses is left out: it can find nothing."""
    common = " ".join(f"Officials discussed matter {n} at the summit." for n in range(3))
    others = [art(f"o{n}", f"Summit officials meet on topic {n} near the Tigris" if n == 0
                  else f"Summit officials meet on topic {n}", common) for n in range(6)]
    subject = art("s", "Officials at the summit discuss the Tigris and zanzibar",
                  "Officials at the summit discussed the Tigris. The Tigris officials met at the summit.")
    with stored(tmp_path, [*others, subject]) as store:
        window = TermWindow(store.recent_terms(SEARCH_WINDOW))
        by_frequency = [w for w, _ in salient_words(subject.title, subject.text)]
        query = [next(w for w, i in window.vocabulary.items() if i == word_id) for word_id in window.query(subject)]
    assert by_frequency.index("tigris") > by_frequency.index("officials")
    assert query[0] == "tigris" and "zanzibar" in by_frequency and "zanzibar" not in query
    assert len(query) <= MAX_TERMS


def test_the_window_search_equals_bm25_computed_by_hand(tmp_path: Path) -> None:
    """Scores are bm25 over the stored words (k1 1.2, b 0.75), checked against a plain loop;
    each duplicate cluster is represented by its best-scoring copy."""
    import math

    from aggregator.publish.related import B, K1

    with stored(tmp_path, CORPUS) as store:
        rows = list(store.recent_terms(SEARCH_WINDOW))
        window = TermWindow(rows)
        query = store.get("sport")
        hits = dict(window.search(query, 10))
    words = [next(w for w, i in window.vocabulary.items() if i == word_id) for word_id in window.query(query)]
    rows = [(i, c, decode(stored)) for i, c, stored in rows]
    lengths = {i: sum(n for _, n in terms) for i, _, terms in rows}
    average = sum(lengths.values()) / len(rows)
    expected = {}
    for article_id, _, terms in rows:
        counts = dict(terms)
        score = 0.0
        for word in words:
            df = sum(1 for _, _, t in rows if word in dict(t))
            if word in counts:
                n = counts[word]
                idf = math.log((len(rows) - df + 0.5) / (df + 0.5) + 1)
                score += idf * n * (K1 + 1) / (n + K1 * (1 - B + B * lengths[article_id] / average))
        if score > 0 and article_id != "sport":
            expected[article_id] = score
    cluster = {i: c for i, c, _ in rows}
    best = {}
    for article_id, score in sorted(expected.items(), key=lambda item: (-item[1], item[0])):
        best.setdefault(cluster[article_id], article_id)
    assert sorted(hits) == sorted(best.values()) and len(hits) == 2  # near/near-dup and base/copy
    assert all(math.isclose(hits[i], expected[i], rel_tol=1e-9) for i in hits)


def test_articles_stored_before_the_terms_column_get_theirs_from_the_text(tmp_path: Path) -> None:
    with stored(tmp_path, CORPUS) as store:
        written = list(store.recent_terms(SEARCH_WINDOW))
        with store.transaction():
            store.db.execute("UPDATE articles SET terms = NULL")
        assert list(store.recent_terms(SEARCH_WINDOW)) == written
        assert store.db.execute("SELECT count(*) FROM articles WHERE terms IS NULL").fetchone()[0] == 0  # kept
        assert [p.id for p in compute_related(store, [store.get("base")], 3)["base"]]


def test_an_article_without_useful_words_gets_only_site_picks_and_is_never_picked(tmp_path: Path) -> None:
    empty = art("empty", "", "the of and 2024 42")
    with stored(tmp_path, [*CORPUS, empty]) as store:
        assert related_posts(store, store.get("empty"), 5) == []
        assert all("empty" not in [r.id for r in related_posts(store, store.get(a.id), 5)] for a in CORPUS)


def test_articles_in_other_scripts_relate_by_their_own_words(tmp_path: Path) -> None:
    greek = [art("g1", "Πυρκαγιά στην Αττική", "Η πυρκαγιά στην Αττική καίει δάση και σπίτια.", days_ago=1),
             art("g2", "Νέα πυρκαγιά στην Αττική", "Οι πυροσβέστες παλεύουν με την πυρκαγιά στην Αττική."),
             art("r1", "Пожар в Москве", "Пожар в центре Москвы потушили к утру.")]
    with stored(tmp_path, [*CORPUS, *greek]) as store:
        ids = [r.id for r in related_posts(store, store.get("g2"), 3)]
    assert ids[0] == "g1" and "r1" not in ids


def sentences(*parts: str) -> str:
    return " ".join(parts)


RAIL = [
    art("rail1", "Rail strike halts trains across the north",
        sentences("Train drivers walked out on Monday in a dispute over pay, and only one train in five ran.",
                  "The train drivers' union said the pay offer fell short of inflation.",
                  "Commuters faced crowded platforms as the strike shut rail lines and signal boxes.")),
    art("rail2", "Train drivers announce fresh rail strike dates",
        sentences("The train drivers' union announced two more days of strike action over pay.",
                  "Rail operators said the walkout would close most lines and leave platforms empty.",
                  "Signal workers may join the dispute, the union said, as commuters braced for disruption.")),
    art("football", "Late strike keeps Lyon Athletic top of the league",
        sentences("A curling strike in stoppage time gave Lyon Athletic a win in the derby on Saturday.",
                  "The striker's goal was the strike of the season, said the manager, and the league leaders",
                  "stay two points clear. Fans sang as the goalkeeper was beaten from twenty yards.")),
    art("rates", "Central bank holds interest rates as inflation eases",
        sentences("The central bank left interest rates unchanged as inflation eased to three percent.",
                  "Bond yields fell and markets now expect a rate cut before the summer.")),
    art("vaccines", "Measles vaccination rates fall to a record low",
        sentences("Measles vaccination rates among children fell again, health officials said, and clinics",
                  "will offer catch-up vaccines. Doctors said rates had to rise to stop the outbreak.")),
]


def test_a_shared_word_in_another_sense_is_not_a_subject(tmp_path: Path) -> None:
    """"strike" in a rail dispute and in a football report, "rates" of interest and of vaccination."""
    with stored(tmp_path, RAIL) as store:
        lists = {a.id: [r.id for r in related_posts(store, store.get(a.id), 5)] for a in RAIL}
    assert lists["rail1"] == ["rail2"] and lists["rail2"] == ["rail1"]
    assert lists["football"] == [] and lists["rates"] == [] and lists["vaccines"] == []


def test_fewer_links_rather_than_filler(tmp_path: Path) -> None:
    """Every stored article shares some words with the Tigris story, none its subject."""
    with stored(tmp_path, [CORPUS[0], *RAIL]) as store:
        assert related_posts(store, store.get("base"), 5) == []


def test_generic_news_vocabulary_relates_nothing(tmp_path: Path) -> None:
    generic = "Officials said on Tuesday that the figures would be published next week, a spokesperson added."
    articles = [art("g1", "Officials expect figures next week", generic + " The harbour ferry timetable changes."),
                art("g2", "Figures due next week, officials say", generic + " A museum opens a sculpture garden.")]
    with stored(tmp_path, articles) as store:
        assert related_posts(store, store.get("g1"), 5) == []


def test_a_name_is_a_feature_of_its_own_and_its_words_count_less() -> None:
    from aggregator.enrich.profile import INSIDE_NAME_WEIGHT, NAME_PREFIX, profile

    red = profile(art("red", "Insurers raise premiums", "Ships avoid the Red Sea after attacks. The sea is calm."),
                  spellings=True)
    assert NAME_PREFIX + "red sea" in red.weights and red.spelled[NAME_PREFIX + "red sea"] == "Red Sea"
    assert red.weights["sea"] == pytest.approx(1 + math.log(1 + INSIDE_NAME_WEIGHT))  # once alone, once in the name
    assert "attacks" in red.weights and "after" not in red.weights


def test_the_store_keeps_each_profile_and_judging_reads_it_not_the_text(tmp_path: Path) -> None:
    from aggregator.enrich.profile import decode, profile

    with stored(tmp_path, [*CORPUS, *RAIL]) as store:
        kept = store.stored_profiles(["base", "near"])
        for article_id in ("base", "near"):
            article = store.get(article_id)
            computed = profile(replace(article, profile=""))  # worked out from the text now
            stored_features, categories, topics = kept[article_id]
            assert decode(stored_features) == pytest.approx(computed.weights, abs=5e-4)
            assert categories == list(article.categories) and sorted(topics) == sorted(article.topics)
        # An article from before the column existed: worked out from its text once, and written back.
        store.conn.execute("UPDATE articles SET profile = NULL WHERE id = 'near'")
        assert store.stored_profiles(["near"])["near"][0] == kept["near"][0]
        assert store.conn.execute("SELECT profile FROM articles WHERE id = 'near'").fetchone()[0] == kept["near"][0]
        # Judging goes by the stored features: changed in the row, the similarity follows them.
        before = related_posts(store, store.get("base"), 5)
        store.conn.execute("UPDATE articles SET profile = 'unrelated 1' WHERE id = 'near'")
        store.conn.execute("DELETE FROM related_cache")
        after = related_posts(store, store.get("base"), 5)
        assert "near" in [link.id for link in before] and "near" not in [link.id for link in after]


def test_similarity_is_symmetric_and_names_what_is_shared(tmp_path: Path) -> None:
    from aggregator.publish.related_explain import why

    with stored(tmp_path, [*CORPUS, *RAIL]) as store:
        base, near = store.get("base"), store.get("near")
        there, back = why(store, base, ["near"])["near"], why(store, near, ["base"])["base"]
    assert abs(there.similarity - back.similarity) < 1e-9 and there.similarity > 0.25
    assert {"drought", "farms"} <= set(there.terms) and {"Tigris", "Iraq"} <= set(there.names)
    assert there.topics == ("climate", "middle-east") and not there.site_pick
    assert there.summary().startswith(f"similarity {there.similarity:.2f}: terms ")


def test_a_read_only_store_computes_lists_and_keeps_none(tmp_path: Path) -> None:
    with stored(tmp_path, CORPUS):
        pass
    with Store(tmp_path / "related.db", read_only=True) as reader:
        assert [r.id for r in related_posts(reader, reader.get("base"), 3)]
        assert reader.db.execute("SELECT count(*) FROM related_cache").fetchone()[0] == 0


def test_explain_shows_why_each_related_post_is_related(project: Path) -> None:
    from click.testing import CliRunner

    from aggregator.app.cli import cli

    runner = CliRunner()
    config = str(project / "config.toml")
    assert runner.invoke(cli, ["-c", config, "run", "--once"]).exit_code == 0
    listed = runner.invoke(cli, ["-c", config, "articles", "--search", "Tigris", "--limit", "1"]).output
    explained = runner.invoke(cli, ["-c", config, "explain", listed.split()[0]])
    assert explained.exit_code == 0, explained.output
    lines = explained.output.splitlines()
    related = [i for i, line in enumerate(lines) if line.startswith("  related ")]
    assert related and all(lines[i + 1].startswith("    similarity ") for i in related)
    assert any("the site's own pick" in line for line in lines) and any("names " in line for line in lines)
