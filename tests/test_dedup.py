"""Duplicate clusters: exact keys, near-duplicates, representatives, persistence, rendering."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import json
from pathlib import Path

import numpy as np
import pytest
from lxml import html as lxml_html

from aggregator.dedup import minhash
from aggregator.dedup.clusters import also_reported_html
from aggregator.dedup.detect import Deduplicator
from aggregator.dedup.minhash import body_hash
from aggregator.dedup.stored import DedupRows
from aggregator.models import Article, ParseResult
from aggregator.enrich.text import content_hash
from aggregator.pipeline import store_results
from aggregator.enrich.urls import canonical_url
from aggregator.storage.migrations import MIGRATIONS
from aggregator.storage.store import Store
from aggregator.enrich.topics import TopicRules

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
PARAS = [
    "The harbour authority in Valletta said on Tuesday that the new ferry terminal would open in June, "
    "two years later than first planned and at almost twice the original cost.",
    "Officials blamed the delay on a shortage of steel and on a dispute with the main contractor, "
    "which was settled in court last winter after months of hearings.",
    "The terminal will handle up to four thousand passengers a day and is meant to ease congestion "
    "in the old port, where residents have long complained about traffic and fumes.",
    "Transport minister Clara Vella told reporters the project showed the island could deliver large "
    "infrastructure, even if the timetable had slipped more than anyone wanted.",
    "Opposition members said the cost overrun should be investigated by the auditor general and asked "
    "for the contracts to be published in full before the opening ceremony.",
    "Ferry operators welcomed the news but warned that fares might rise to cover the higher port fees "
    "that the authority plans to introduce from the autumn season onwards.",
]
OTHER = [
    "A new cycling lane along the seafront in Sliema was opened on Sunday by the local council, which "
    "hopes to cut car journeys in the busy town centre during the summer months.",
    "The council said the lane cost a fraction of what had been budgeted thanks to recycled materials and "
    "volunteer labour, and that more lanes would follow next year if residents approve.",
    "Shop owners were divided, with some fearing the loss of parking spaces and others expecting more "
    "customers on foot and on bicycles during the evening promenade.",
]


def art(id: str, title: str, paras: list[str], source: str = "s1", minutes: int = 0,
        url: str | None = None, site: str | None = None) -> Article:
    text = "\n\n".join(paras)
    return Article(id=id, source=source, site=site or source.title(), title=title, text=text, url=url,
                   published=T0 + timedelta(minutes=minutes), content_hash=content_hash(title, text, url or ""))


def ingest(store: Store, source: str, *articles: Article, threshold: float = 0.75) -> None:
    store_results(store, source, [ParseResult(articles=list(articles))], TopicRules(()), dedup_threshold=threshold)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "db.sqlite") as s:
        yield s


def clusters(store: Store) -> dict[str, str]:
    return {a.id: a.cluster_id for a in store.iter_articles()}


def test_body_hash_ignores_case_spacing_quotes_and_accents() -> None:
    assert body_hash("Caf\u00e9 \u201cnews\u201d\u00a0 here") == body_hash('cafe "NEWS" here')
    assert body_hash("one two") != body_hash("two one")


def test_signature_estimates_jaccard() -> None:
    a = minhash.shingle_hashes("t", " ".join(PARAS))
    b = minhash.shingle_hashes("t", " ".join(PARAS[:4]))
    true = len(set(a.tolist()) & set(b.tolist())) / len(set(a.tolist()) | set(b.tolist()))
    assert abs(minhash.jaccard(minhash.signature(a), minhash.signature(b)) - true) < 0.15
    assert (minhash.signature(a) == minhash.signature(a.copy())).all()  # deterministic


def test_syndicated_copies_form_one_cluster_with_earliest_as_representative(store: Store) -> None:
    original = art("a", "Valletta ferry terminal to open in June", PARAS, "wire", minutes=0)
    rewritten = art("b", "Two years late, new ferry hub finally gets a date", PARAS[:-1] + [
        "Follow the Island Post on Google News"], "post", minutes=30)
    reordered = art("c", "Ferry terminal opening set for June after delays",
                    [PARAS[0], PARAS[2], PARAS[1], *PARAS[3:5]], "times", minutes=45)
    unrelated = art("d", "Sliema opens seafront cycling lane", OTHER, "post", minutes=50)
    ingest(store, "post", rewritten, unrelated)
    ingest(store, "times", reordered)
    ingest(store, "wire", original)  # arrives last but was published first
    found = clusters(store)
    assert found["a"] == found["b"] == found["c"] == "a"
    assert found["d"] == "d"
    assert {a.id for a in store.cluster_members("a")} == {"a", "b", "c"}
    assert store.duplicate_ids(["b", "d"]) == {"b": ["a", "c"], "d": []}


def test_follow_up_sharing_background_is_not_a_copy(store: Store) -> None:
    ingest(store, "wire", art("a", "Valletta ferry terminal to open in June", PARAS))
    follow = art("f", "Ferry terminal opens to first passengers", OTHER + PARAS[-2:], "wire", minutes=600)
    ingest(store, "wire", follow)
    assert clusters(store)["f"] == "f"


def test_same_canonical_url_across_sources_is_one_cluster(store: Store) -> None:
    ingest(store, "s1", art("a", "Short item", ["Brief."], url="https://example.com/x?utm_source=a"))
    ingest(store, "s2", art("b", "Other title", ["Entirely different words here."], "s2", minutes=5,
                            url="HTTPS://EXAMPLE.com/x/#top"))
    assert clusters(store) == {"a": "a", "b": "a"}


def test_spellings_of_one_url_are_one_cluster(store: Store) -> None:
    """Percent-encoding, IDNA and `%7E` are spellings of one page (canonical_url on w3lib)."""
    ingest(store, "s1", art("a", "Short item", ["Brief."], url="https://café.example/~ed/caf%c3%a9"))
    ingest(store, "s2", art("b", "Other title", ["Entirely different words here."], "s2", minutes=5,
                            url="https://xn--caf-dma.example/%7Eed/café"))
    assert clusters(store) == {"a": "a", "b": "a"}


def test_migration_15_rekeys_urls_stored_under_the_older_spelling(tmp_path: Path) -> None:
    """Rows written before canonical_url used w3lib keep the key of then (here the raw Unicode
    spelling); migration 15 recomputes every key, so a copy whose feed percent-encodes the same
    URL is found by it."""
    path = tmp_path / "db.sqlite"
    raw, encoded = "https://café.example/été", "https://xn--caf-dma.example/%C3%A9t%C3%A9"
    with Store(path) as old:
        ingest(old, "s1", art("a", "Short item", ["Brief."], url=raw))
        old.conn.execute("UPDATE articles SET canonical_url = ?", [raw])  # the key the older code gave it
        old.conn.execute("DROP VIEW articles_view")  # and what migrations 16 to 18 added
        old.conn.execute("DROP VIEW source_status")
        old.conn.execute("ALTER TABLE articles DROP COLUMN language")
        old.conn.execute("ALTER TABLE articles DROP COLUMN profile")
        old.conn.execute("PRAGMA user_version = 14")
    with Store(path) as store:
        assert store.schema_version == max(MIGRATIONS)
        assert store.ids_by_canonical_urls([canonical_url(encoded)]) == {canonical_url(encoded): ["a"]}
        ingest(store, "s2", art("b", "Other title", ["Entirely different words here."], "s2", minutes=5,
                                url=encoded))
        assert clusters(store) == {"a": "a", "b": "a"}


def test_same_text_under_different_titles_is_one_cluster(store: Store) -> None:
    ingest(store, "s1", art("a", "One", ["Tiny text.", "Two lines."]))
    ingest(store, "s2", art("b", "Two", ["tiny  TEXT.", "two lines."], "s2", minutes=1))
    assert clusters(store)["b"] == "a"


def test_copies_within_one_batch_cluster(store: Store) -> None:
    ingest(store, "s1", art("a", "Valletta ferry terminal to open in June", PARAS),
           art("b", "Ferry hub finally gets a date", PARAS[1:], minutes=3))
    assert clusters(store) == {"a": "a", "b": "a"}


def test_index_survives_restart(tmp_path: Path) -> None:
    """Signatures are stored; the band buckets are rebuilt from them by the next process."""
    path = tmp_path / "db.sqlite"
    with Store(path) as first:
        ingest(first, "s1", art("a", "Valletta ferry terminal to open in June", PARAS))
    with Store(path) as second:
        ingest(second, "s2", art("b", "Ferry hub finally gets a date", PARAS[:5], "s2", minutes=9))
        assert clusters(second)["b"] == "a"
        assert second.db.execute("SELECT COUNT(*) FROM dedup_signatures").fetchone()[0] == 2


def test_a_store_with_the_old_bucket_table_loses_it_and_keeps_clustering(tmp_path: Path) -> None:
    """Migration 8 drops lsh_buckets (up to 30 rows per article) and its layout note."""
    path = tmp_path / "db.sqlite"
    with Store(path) as old:
        ingest(old, "s1", art("a", "Valletta ferry terminal to open in June", PARAS),
               art("c", "Sliema gets a seafront cycling lane", OTHER, minutes=1))
        old.conn.execute("CREATE TABLE lsh_buckets (band INTEGER, bucket INTEGER, doc INTEGER)")
        old.conn.execute("INSERT INTO lsh_buckets (band, bucket, doc) VALUES (0, 12345, 1)")
        old.set_meta("lsh_layout", "30x4")
        old.conn.execute("DROP VIEW articles_view")  # what migrations 16 to 18 added
        old.conn.execute("DROP VIEW source_status")
        old.conn.execute("ALTER TABLE articles DROP COLUMN language")
        old.conn.execute("ALTER TABLE articles DROP COLUMN profile")
        old.conn.execute("DROP INDEX idx_articles_newest")  # and what migration 10 added
        old.conn.execute("ALTER TABLE articles DROP COLUMN terms")
        old.conn.execute("DROP INDEX idx_article_topics_newest")  # and migration 11
        old.conn.execute("ALTER TABLE article_topics DROP COLUMN newest")
        old.conn.execute("CREATE INDEX idx_article_topics_topic ON article_topics (topic, article_id)")
        old.conn.execute("ALTER TABLE sources DROP COLUMN found_on")  # and migration 13
        old.conn.execute("ALTER TABLE sources DROP COLUMN warning")  # and migration 14
        old.conn.execute("PRAGMA user_version = 7")
    with Store(path) as store:
        assert store.schema_version == max(MIGRATIONS)
        assert "lsh_buckets" not in store.db.table_names()
        assert store.meta("lsh_layout") is None
        assert [i for i, _, words in store.recent_terms(10) if words] == ["a", "c"]  # from the text
        ingest(store, "s2", art("b", "Ferry hub finally gets a date", PARAS[:5], "s2", minutes=9))
        assert clusters(store) == {"a": "a", "b": "a", "c": "c"}


def test_reingest_unchanged_keeps_clusters_and_index(store: Store) -> None:
    a = art("a", "Valletta ferry terminal to open in June", PARAS)
    b = art("b", "Ferry hub finally gets a date", PARAS[:5], "s2", minutes=9)
    ingest(store, "s1", a)
    ingest(store, "s2", b)
    ingest(store, "s2", art("b", "Ferry hub finally gets a date", PARAS[:5], "s2", minutes=9))
    assert clusters(store) == {"a": "a", "b": "a"}
    assert store.db.execute("SELECT COUNT(*) FROM dedup_signatures").fetchone()[0] == 2
    assert len(store.duplicate_index.current(store)) == 2


def test_an_article_bridging_two_clusters_merges_them(store: Store) -> None:
    ingest(store, "s1", art("a", "x", ["Alpha."], url="https://example.com/a"))
    ingest(store, "s2", art("b", "y", ["Beta."], "s2", minutes=5, url="https://example.com/b"))
    bridge = art("c", "z", ["Alpha."], "s3", minutes=9, url="https://example.com/b")
    ingest(store, "s3", bridge)
    assert clusters(store) == {"a": "a", "b": "a", "c": "a"}


def test_threshold_is_respected(store: Store) -> None:
    a = art("a", "Valletta ferry terminal", PARAS)
    b = art("b", "Ferry terminal", PARAS[:3] + OTHER, "s2", minutes=1)
    ingest(store, "s1", a)
    assert Deduplicator(store, threshold=0.95).matches(b) == []
    assert [m.id for m in Deduplicator(store, threshold=0.3).matches(b)] == ["a"]


def test_also_reported_html_lists_site_and_link_escaped() -> None:
    copies = [art("b", "t", ["x"], url="https://post.example/b", site="Post & <Co>"),
              art("c", "t", ["x"], url="javascript:alert(1)", site="Times")]
    rendered = also_reported_html(copies)
    tree = lxml_html.fromstring(f"<div>{rendered}</div>")
    assert tree.findtext("h3") == "Also reported by"
    items = tree.findall(".//li")
    assert items[0].findtext("a") == "Post & <Co>" and items[0].find("a").get("href") == "https://post.example/b"
    assert items[1].text == "Times" and items[1].find("a") is None  # unsafe link dropped, name kept
    assert also_reported_html([]) == ""


def test_cli_articles_json_clusters_explain_and_retag(project: Path) -> None:
    """The bundled samples hold three syndicated stories, each on three sites."""
    import json

    from click.testing import CliRunner

    from aggregator.app.cli import cli

    config = str(project / "config.toml")
    runner = CliRunner()
    assert runner.invoke(cli, ["-c", config, "ingest", str(project / "articles")]).exit_code == 0
    listed = runner.invoke(cli, ["-c", config, "articles", "--json", "--limit", "100"])
    rows = [json.loads(line) for line in listed.output.splitlines()]
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row["cluster"], set()).add(row["id"])
    multi = sorted(len(ids) for ids in groups.values() if len(ids) > 1)
    assert multi == [3, 3, 3]
    for row in rows:
        assert sorted(row["duplicates"] + [row["id"]]) == sorted(groups[row["cluster"]])
    copy = next(r for r in rows if r["cluster"] != r["id"])
    explained = runner.invoke(cli, ["-c", config, "explain", copy["id"]])
    assert explained.exit_code == 0 and f"copy of {copy['cluster']}" in explained.output
    assert "middle-east" in explained.output
    text = (project / "config.toml").read_text().replace('exclude = ["football"]', 'exclude = ["gaza"]')
    (project / "config.toml").write_text(text)
    preview = runner.invoke(cli, ["-c", config, "retag", "--dry-run"])
    assert preview.exit_code == 0 and "middle-east" in preview.output and "would lose" in preview.output
    missing = runner.invoke(cli, ["-c", config, "explain", "nope"])
    assert missing.exit_code == 1 and "no article 'nope'" in missing.output


def test_published_feeds_show_each_cluster_once_with_also_reported_by(project: Path) -> None:
    import feedparser

    from aggregator.config import load_config
    from aggregator.pipeline import publish, topic_rules

    config = load_config(project / "config.toml")
    copies = [
        art("a", "Valletta ferry terminal to open in June", PARAS, "wire", 0, "https://wire.example/ferry", "Wire"),
        art("b", "Ferry hub finally gets a date", PARAS[:5], "post", 20, "https://post.example/ferry", "Post & Co"),
        art("c", "Ferry terminal opening set", PARAS[1:], "times", 40, "https://times.example/f", "Times"),
    ]
    with Store(config.storage.database) as store:
        for article in copies:
            store_results(store, article.source, [ParseResult(articles=[article])], topic_rules(config),
                          dedup_threshold=config.dedup.threshold)
        store_results(store, "wire", [ParseResult(articles=[art("d", "Sliema opens cycling lane", OTHER, "wire", 60,
                                                                "https://wire.example/lane", "Wire")])],
                      topic_rules(config), dedup_threshold=config.dedup.threshold)
        publish(config, store)
    for name in ("all.atom", "all.rss"):
        feed = feedparser.parse((config.storage.feeds_dir / name).read_bytes())
        assert sorted(e.title for e in feed.entries) == ["Sliema opens cycling lane",
                                                         "Valletta ferry terminal to open in June"]
        story = next(e for e in feed.entries if e.title.startswith("Valletta"))
        body = lxml_html.fromstring(f"<div>{story.content[0].value if 'content' in story else story.description}</div>")
        heading = [h for h in body.iter("h3") if h.text == "Also reported by"]
        assert heading, name
        links = {a.text: a.get("href") for a in heading[0].getnext().iter("a")}
        assert links == {"Post & Co": "https://post.example/ferry", "Times": "https://times.example/f"}


def test_candidate_signatures_are_read_again_once_someone_rewrote_them(tmp_path: Path) -> None:
    """The store keeps every signature in memory between lookups; a stale one would cluster wrongly."""
    path = tmp_path / "db.sqlite"

    def marked(fill: int) -> np.ndarray:
        """All zeros but the last `fill` values: band 0 is shared, and the Jaccard estimate
        against all zeros tells `fill` back."""
        sig = np.zeros(minhash.NUM_PERM, dtype=np.uint32)
        sig[minhash.NUM_PERM - fill:] = 1
        return sig

    def index(store: Store, article_id: str, fill: int, minutes: int = 0) -> None:
        article = art(article_id, "Title", ["Text."], minutes=minutes)
        rows = DedupRows(signatures=[(article_id, None, 10, minhash.sig_to_bytes(marked(fill)),
                                            article.content_hash)])
        store.write_articles([article], {}, rows)

    def signatures(store: Store) -> dict[str, int]:
        query = marked(0)
        found = store.duplicate_index.similar(store, {"new": (minhash.band_keys(query)[:1], query)}, 5)
        found = found.get("new", [])
        return {c[0]: round(minhash.NUM_PERM * (1 - c[2])) for c in found}

    with Store(path) as ours, Store(path) as theirs:
        index(theirs, "x", 1)
        assert signatures(ours) == {"x": 1}
        index(theirs, "x", 2)  # another connection re-indexes x
        assert signatures(ours) == {"x": 2}
        index(ours, "x", 3)  # and so do we
        assert signatures(ours) == {"x": 3}
        with pytest.raises(RuntimeError), ours.transaction():
            index(ours, "y", 4)
            assert signatures(ours) == {"x": 3, "y": 4}
            raise RuntimeError("rolled back: y is not stored")
        assert signatures(ours) == {"x": 3}
        index(ours, "z", 5)
        assert signatures(ours) == {"x": 3, "z": 5}
        index(ours, "w", 6, minutes=-60)
        assert signatures(ours) == {"x": 3, "z": 5, "w": 6}
        assert ours.prune(max_per_source=2) == ["w"]  # retention deletes it, signature and all
        assert signatures(ours) == {"x": 3, "z": 5}
        index(ours, "v", 7)
        assert signatures(ours) == {"x": 3, "z": 5, "v": 7}


def _index_in_another_process(path: str, article_id: str, fill: int) -> None:
    """What a CLI command run alongside the daemon does: its own process, its own Store."""
    article = art(article_id, "Title", ["Text."])
    signature = np.zeros(minhash.NUM_PERM, dtype=np.uint32)
    signature[minhash.NUM_PERM - fill:] = 1
    with Store(path) as store:
        store.write_articles([article], {}, DedupRows(
            signatures=[(article_id, None, 10, minhash.sig_to_bytes(signature), article.content_hash)]))


def test_connections_of_one_process_share_one_index_and_see_other_processes(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon has a connection per thread: one index for all of them, rebuilt only when
    another process has written signatures (or ours rolled back)."""
    import multiprocessing

    from aggregator.dedup import lsh_index

    builds = []
    build = lsh_index.LshIndex.build.__func__
    monkeypatch.setattr(lsh_index.LshIndex, "build",
                        classmethod(lambda cls, *args: builds.append(1) or build(cls, *args)))
    path = tmp_path / "db.sqlite"
    query = np.zeros(minhash.NUM_PERM, dtype=np.uint32)

    def found(store: Store) -> dict[str, float]:
        hits = store.duplicate_index.similar(store, {"q": (minhash.band_keys(query), query)}, 10).get("q", [])
        return {c[0]: round(minhash.NUM_PERM * (1 - c[2])) for c in hits}

    with Store(path) as one, Store(path) as two:
        _index_in_another_process(str(path), "a", 1)  # in this process, like a third thread
        assert found(one) == {"a": 1} and len(builds) == 1
        _index_in_another_process(str(path), "b", 2)
        assert found(two) == {"a": 1, "b": 2} and found(one) == {"a": 1, "b": 2}
        assert one.duplicate_index is two.duplicate_index  # one index per file in a process
        assert one.duplicate_index.current(one) is two.duplicate_index.current(two) and len(builds) == 1  # added
        spawn = multiprocessing.get_context("spawn")
        child = spawn.Process(target=_index_in_another_process, args=(str(path), "c", 3))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert found(two) == {"a": 1, "b": 2, "c": 3} and len(builds) == 2  # another process: rebuilt
        assert found(one) == {"a": 1, "b": 2, "c": 3} and len(builds) == 2


@pytest.mark.parametrize("memo_limit", [200_000, 2])
def test_token_ids_are_each_words_crc32_whether_or_not_the_memo_has_room(monkeypatch, memo_limit):
    """Shingle hashes are stored (signatures), so the word ids must never depend on the memo."""
    import zlib

    monkeypatch.setattr(minhash, "_TOKEN_IDS", {"known": 7})  # a wrong id planted for a word: it is used
    monkeypatch.setattr(minhash, "_TOKEN_CACHE_LIMIT", memo_limit)
    tokens = ("wire", "story", "known", "wire", "zürich", "story")
    ids = minhash._token_ids(tokens).tolist()
    assert ids == [7 if t == "known" else zlib.crc32(t.encode("utf-8")) for t in tokens]
    assert set(minhash._TOKEN_IDS) == ({"known"} if memo_limit == 2 else {"known", "wire", "story", "zürich"})
    assert minhash._token_ids(tokens).tolist() == ids


HARBOUR = ("The harbour authority approved the new container terminal on Monday after a two-year review. "
           "Officials said construction would begin in spring and create four hundred jobs. "
           "Environmental groups warned about dredging in the bay and promised to appeal the decision. "
           "The mayor welcomed the plan, calling it the largest investment in the port in decades. ") * 2
ORCHESTRA = ("The city orchestra opened its season with a Mahler symphony before a full hall. Critics praised "
             "the brass section and the new conductor's tempo choices. ") * 3
RAIL = ("Rail fares rise by eight percent from January, with commuter groups planning protests at the central "
        "station and the transport minister defending the increase as necessary for maintenance. ") * 2
MUSEUM = ("The city museum reopened its east wing after a renovation that restored the painted ceiling and "
          "added a gallery for textiles donated by local families over the past century. ") * 2


def test_clusters_follow_edits(tmp_path: Path) -> None:
    """A copy edited into another story leaves its cluster; a story edited into a copy joins one; a
    representative edited away leaves its copies a cluster of their own."""
    from click.testing import CliRunner

    from aggregator.app.cli import cli

    folder = tmp_path / "articles"
    folder.mkdir()

    def write(name: str, title: str, body: str) -> None:
        (folder / name).write_text(f"---\ntitle: {title}\n---\n\n{body}\n", encoding="utf-8")

    def clusters() -> dict[str, str]:
        listed = CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "articles", "--json"]).output
        rows = [json.loads(line) for line in listed.splitlines()]
        ids = {r["id"]: r["title"] for r in rows}
        return {r["title"]: ids[r["cluster"]] for r in rows}

    (tmp_path / "config.toml").write_text('[storage]\ndatabase = "d.db"\n\n[[sources]]\nname = "S"\npath = "articles"\n')
    write("a.md", "Harbour terminal approved", HARBOUR)
    write("b.md", "Port terminal gets green light", HARBOUR)
    write("c.md", "Orchestra opens season", ORCHESTRA)
    assert CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "run", "--once"]).exit_code == 0
    assert clusters() == {"Harbour terminal approved": "Harbour terminal approved",
                          "Port terminal gets green light": "Harbour terminal approved",
                          "Orchestra opens season": "Orchestra opens season"}
    write("b.md", "Port terminal gets green light", RAIL)  # edited into another story
    write("c.md", "Orchestra opens season", HARBOUR)  # edited into a copy
    assert CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "run", "--once"]).exit_code == 0
    assert clusters() == {"Harbour terminal approved": "Harbour terminal approved",
                          "Port terminal gets green light": "Port terminal gets green light",
                          "Orchestra opens season": "Harbour terminal approved"}
    # The representative itself edited into a copy of another story: it joins that one, and the copy
    # it leaves behind becomes its own cluster rather than following it.
    write("a.md", "Harbour terminal approved", RAIL)
    assert CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "run", "--once"]).exit_code == 0
    assert clusters() == {"Harbour terminal approved": "Harbour terminal approved",
                          "Port terminal gets green light": "Harbour terminal approved",
                          "Orchestra opens season": "Orchestra opens season"}
    # ...and edited into a story of its own: the copy it represented keeps a cluster, under its own name.
    write("a.md", "Harbour terminal approved", MUSEUM)
    assert CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "run", "--once"]).exit_code == 0
    assert clusters() == {"Harbour terminal approved": "Harbour terminal approved",
                          "Port terminal gets green light": "Port terminal gets green light",
                          "Orchestra opens season": "Orchestra opens season"}
