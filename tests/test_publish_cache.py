"""What makes publishing cheap at scale: kept related lists and the unchanged-republish stamp.

A related list is computed once and reused until the article's own text
changes or an article on it disappears; a publish whose inputs (stored
content, config, version) are unchanged renders nothing at all.
"""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner

from aggregator.publish import related
from aggregator.app.cli import cli
from aggregator.config import load_config
from aggregator.publish.render import publish
from aggregator.storage.store import Store
from helpers.files import write_article


def run_once(project) -> None:
    result = CliRunner().invoke(cli, ["-c", str(project / "config.toml"), "run", "--once"])
    assert result.exit_code == 0, result.output


def no_search(*args, **kwargs):
    raise AssertionError("a kept related list should have been reused")


def test_related_lists_are_kept_and_reused_until_the_text_changes(project, monkeypatch) -> None:
    run_once(project)
    config = load_config(project / "config.toml")
    with Store(config.storage.database) as store:
        article = store.articles(search="Tigris")[0]
        first = related.related_posts(store, article, 3)
        assert first
        monkeypatch.setattr(related, "TermWindow", no_search)
        assert related.related_posts(store, article, 3) == first  # reused: no search ran
        assert related.related_posts(store, article, 2) == first[:2]  # a shorter list is a prefix
        monkeypatch.undo()
        article = dataclasses.replace(article, content_hash="edited")
        calls = []
        original = related.TermWindow
        monkeypatch.setattr(related, "TermWindow", lambda *a, **k: calls.append(1) or original(*a, **k))
        related.related_posts(store, article, 3)
        assert calls, "an edited article must get a fresh list"


def test_a_kept_list_naming_a_deleted_article_is_recomputed(project) -> None:
    run_once(project)
    config = load_config(project / "config.toml")
    with Store(config.storage.database) as store:
        article = store.articles(search="Tigris")[0]
        first = related.related_posts(store, article, 3)
        gone = first[0].id
        with store.transaction():
            store.db.execute("DELETE FROM article_topics WHERE article_id = ?", [gone])
            store.db.execute("DELETE FROM dedup_signatures WHERE article_id = ?", [gone])
            store.db.execute("DELETE FROM related_cache WHERE article_id = ?", [gone])
            store.db.execute("DELETE FROM articles WHERE id = ?", [gone])
        again = related.related_posts(store, article, 3)
        assert gone not in [r.id for r in again] and again


def test_unchanged_republish_renders_nothing_and_any_change_renders_again(project, monkeypatch) -> None:
    run_once(project)
    config = load_config(project / "config.toml")
    import aggregator.publish.render as publisher

    with Store(config.storage.database) as store:
        # status.html is the pipeline's, written after this publish; the files compared are the publish's.
        before = {p: p.read_bytes() for p in config.storage.feeds_dir.rglob("*")
                  if p.is_file() and p.name != "status.html"}
        monkeypatch.setattr(publisher, "render_feeds", no_search)
        report = publish(config, store)
        assert report.written == [] and len(report.unchanged) == len(before)
        assert {p: p.read_bytes() for p in before} == before
        monkeypatch.undo()

        # A new article changes the stored content: the next publish renders and shows it.
        write_article(project / "articles", "zz_new.txt", title="Gaza aid convoy reaches Rafah",
                      categories="Middle East", paragraphs=("Aid trucks reached Gaza on Monday.",))
    run_once(project)
    assert "Gaza aid convoy reaches Rafah" in (config.storage.feeds_dir / "middle-east.atom").read_text()

    # A deleted output file is written again even though nothing else changed.
    (config.storage.feeds_dir / "europe.rss").unlink()
    with Store(config.storage.database) as store:
        report = publish(config, store)
    assert (config.storage.feeds_dir / "europe.rss").is_file() and report.written


def test_many_lists_computed_together_equal_one_by_one(tmp_path) -> None:
    from datetime import datetime, timedelta, timezone

    from aggregator.models import Article
    from aggregator.enrich.text import content_hash

    subjects = ["harbour strike", "grain exports", "chip plant", "heatwave warning", "rate decision"]
    articles = []
    for i in range(90):
        subject = subjects[i % len(subjects)]
        text = f"Officials discussed the {subject} on day {i}. The {subject} affects {i % 7} regions and ports."
        title = f"{subject.title()} update {i}"
        article = Article(id=f"a{i:03d}", source="s", title=title, text=text, content_hash=content_hash(title, text),
                          published=datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(hours=i))
        articles.append(article)
    with Store(tmp_path / "many.db") as store:
        store.write_articles(articles, {})
        stored = store.get_many([a.id for a in articles])
        batch = [stored[a.id] for a in articles]
        together = related.related_for_many(store, batch, 4)
        one_by_one = {a.id: [p.id for p in related.compute_related(store, [a], 4)[a.id]] for a in batch}
    assert {i: [r.id for r in links] for i, links in together.items()} == one_by_one
    assert all(one_by_one.values())
