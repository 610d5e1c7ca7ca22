"""Publishing: stable bytes and ids, format selection, stale files, index, OPML, local pages."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from aggregator import pipeline
from aggregator.config import Config
from aggregator.publish.files import write_if_changed
from aggregator.publish.names import page_name
from aggregator.publish.render import publish
from aggregator.storage.store import Store
from helpers.atom import atom_errors
from helpers.corpus import REMOTE_ID, build_store, make_config, published_corpus

A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """One read-only publish of the standard corpus, shared by the tests that only look."""
    return published_corpus(tmp_path_factory.mktemp("published"))


def snapshot(feeds: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(feeds)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(feeds.rglob("*")) if p.is_file()}


def entries_by_id(path: Path) -> dict[str, feedparser.FeedParserDict]:
    return {e.id: e for e in feedparser.parse(path.read_bytes()).entries}


def test_republishing_unchanged_input_leaves_every_file_byte_identical(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with build_store(config) as store:
        first = publish(config, store)
        before = snapshot(config.storage.feeds_dir)
        time.sleep(0.01)
        pipeline.ingest_all(config, store)
        second = publish(config, store)
    assert first.written and not first.unchanged
    assert second.written == [] and second.removed == [] and len(second.unchanged) == len(first.written)
    assert snapshot(config.storage.feeds_dir) == before
    assert not [p for p in config.storage.feeds_dir.rglob("*.tmp")]


def test_updated_moves_only_for_the_entry_whose_content_changed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    all_atom = config.storage.feeds_dir / "all.atom"
    with build_store(config) as store:
        publish(config, store)
        before = entries_by_id(all_atom)
        changed = store.articles(source="Local newsroom", limit=1)[0]
        path = Path(changed.origin)
        time.sleep(1.05)  # the store keeps seconds; a change must land on a later second
        opening = changed.summary[:40]
        text = path.read_text(encoding="utf-8")
        assert opening in text
        path.write_text(text.replace(opening, "A correction was added. " + opening, 1), encoding="utf-8")
        pipeline.ingest_all(config, store)
        publish(config, store)
        after = entries_by_id(all_atom)
    assert before.keys() == after.keys(), "ids never change"
    moved = {i for i in before if before[i].updated != after[i].updated}
    assert len(moved) == 1
    (moved_id,) = moved
    assert "correction was added" in after[moved_id].content[0].value
    assert after[moved_id].updated_parsed > before[moved_id].updated_parsed
    assert after[moved_id].published == before[moved_id].published
    assert feedparser.parse(all_atom.read_bytes()).feed.updated == after[moved_id].updated


def test_entry_ids_do_not_depend_on_the_base_url(tmp_path: Path) -> None:
    first = make_config(tmp_path / "a", base_url="http://127.0.0.1:8080/")
    second = dataclasses.replace(first, site=dataclasses.replace(first.site, base_url="https://news.example/feeds/"),
                                 storage=dataclasses.replace(first.storage, feeds_dir=tmp_path / "other"))
    with build_store(first) as store:
        publish(first, store)
        publish(second, store)
    ids = [list(entries_by_id(c.storage.feeds_dir / "all.atom")) for c in (first, second)]
    assert ids[0] == ids[1] and len(ids[0]) > 30


def test_formats_are_selectable_and_dropped_formats_and_topics_are_removed(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    feeds = config.storage.feeds_dir
    with build_store(config) as store:
        publish(config, store)
        (feeds / "notes.txt").write_text("mine", encoding="utf-8")
        (feeds / "custom.xml").write_text("<x/>", encoding="utf-8")
        only_atom = dataclasses.replace(config, publish=dataclasses.replace(config.publish, formats=("atom",)),
                                        topics=[t for t in config.topics if t.slug != "climate"])
        report = publish(only_atom, store)
    removed = sorted(p.name for p in report.removed)
    slugs = ["all", "economy", "europe", "middle-east", "technology"]
    assert removed == sorted([*(f"{s}.{f}" for s in slugs for f in ("json", "rss")),
                              "climate.atom", "climate.json", "climate.rss"])
    assert sorted(p.name for p in feeds.glob("*.*") if p.suffix in (".atom", ".rss", ".json")) == \
        sorted(f"{s}.atom" for s in slugs)
    assert (feeds / "notes.txt").exists() and (feeds / "custom.xml").exists()
    index = etree.HTML((feeds / "index.html").read_bytes())
    alternates = {l.get("href") for l in index.iter("link") if l.get("rel") == "alternate"
                  and l.get("type") != "text/x-opml"}
    assert alternates == {f"http://127.0.0.1:8080/{s}.atom" for s in slugs}


def test_summary_only_when_full_content_is_off(tmp_path: Path) -> None:
    config = make_config(tmp_path, full_content=False)
    with build_store(config) as store:
        publish(config, store)
        articles = {a.id: a for a in store.articles()}
    remote = articles[REMOTE_ID]
    entry = next(e for e in feedparser.parse((config.storage.feeds_dir / "europe.atom").read_bytes()).entries
                 if e.link == remote.url)
    content = entry.content[0].value
    assert content.startswith(f"<p>{remote.summary}</p>")
    assert "Styled text about Brussels" not in content and "fine link" not in content
    assert "Related posts" in content


def test_index_discovers_every_feed_and_opml_subscribes_to_every_topic(published: Config) -> None:
    config = published
    feeds = config.storage.feeds_dir
    slugs = [t.slug for t in config.topics] + ["all"]
    index = etree.HTML((feeds / "index.html").read_bytes())
    found = {(l.get("type"), l.get("href")) for l in index.iter("link") if l.get("rel") == "alternate"}
    types = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
    expected = {(types[f], f"http://127.0.0.1:8080/{s}.{f}") for s in slugs for f in types}
    assert expected <= found
    headings = [h.text for h in index.iter("h2")]
    assert headings == [t.title for t in config.topics] + ["All articles"]
    assert index.find(".//link[@rel='stylesheet']").get("href") == "style.css" and (feeds / "style.css").exists()
    opml = etree.fromstring((feeds / "topics.opml").read_bytes())
    outlines = opml.findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == [f"http://127.0.0.1:8080/{s}.atom" for s in slugs]
    assert all(o.get("type") == "rss" and o.get("text") for o in outlines)


def test_every_local_link_in_every_feed_leads_to_a_published_page(published: Config) -> None:
    config = published
    feeds = config.storage.feeds_dir
    local = set()
    for path in feeds.glob("*.atom"):
        root = etree.fromstring(path.read_bytes())
        for link in root.iter(A + "link"):
            if link.get("href", "").startswith("http://127.0.0.1:8080/articles/"):
                local.add(link.get("href").rsplit("/", 1)[1])
    assert len(local) > 30
    assert {p.name for p in (feeds / "articles").iterdir()} >= local


def test_related_links_keep_their_attributes_despite_feedgen_bug_135(published: Config) -> None:
    config = published
    root = etree.fromstring((config.storage.feeds_dir / "all.atom").read_bytes())
    entries = root.findall(A + "entry")
    for entry in entries:
        links = entry.findall(A + "link")
        assert [l.get("rel") for l in links].count("alternate") == 1
        related = [l for l in links if l.get("rel") == "related"]
        assert len(related) <= config.publish.related_posts
        assert all(l.get("title") and l.get("type") == "text/html" for l in related)
    assert sum(1 for e in entries for l in e.findall(A + "link") if l.get("rel") == "related") > len(entries)


def test_an_empty_store_publishes_valid_empty_feeds(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with Store(tmp_path / "empty.db") as store:
        publish(config, store)
    for path in config.storage.feeds_dir.glob("*.atom"):
        assert atom_errors(path.read_bytes()) == []
    assert "No articles yet." in (config.storage.feeds_dir / "index.html").read_text(encoding="utf-8")


def test_article_ids_never_become_paths() -> None:
    assert page_name("0123abcd") == "0123abcd.html"
    for hostile in ("../../etc/passwd", "a/b", ".hidden", "x" * 300, ""):
        name = page_name(hostile)
        assert "/" not in name and not name.startswith(".") and name.endswith(".html")


def test_write_if_changed_is_atomic_and_skips_identical_bytes(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "feed.atom"
    assert write_if_changed(target, b"one")
    mtime = target.stat().st_mtime_ns
    time.sleep(0.01)
    assert not write_if_changed(target, b"one")
    assert target.stat().st_mtime_ns == mtime
    assert write_if_changed(target, b"two!") and target.read_bytes() == b"two!"
    assert [p.name for p in target.parent.iterdir()] == ["feed.atom"]
