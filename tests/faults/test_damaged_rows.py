"""Rows edited by hand (or by an older version) that no reader can parse: the publish still writes
every feed, and the damaged article is published with what can be read. Real files, real CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lxml import etree

from helpers.command import aggregator, desk_config
from .test_bad_local_files import good_markdown

ATOM = "{http://www.w3.org/2005/Atom}"


def test_unreadable_dates_and_json_in_a_row_do_not_stop_a_publish(tmp_path: Path):
    (tmp_path / "config.toml").write_text(desk_config(), "utf-8")
    (tmp_path / "articles").mkdir()
    for n in range(4):
        (tmp_path / "articles" / f"a{n}.md").write_text(good_markdown(n), "utf-8")
    assert aggregator(tmp_path, "run", "--once").returncode == 0
    with sqlite3.connect(tmp_path / "news.db") as db:
        [victim] = db.execute("SELECT id FROM articles WHERE title = 'Council story 1'").fetchone()
        db.execute("UPDATE articles SET published = 'yesterday', updated = '2024-01-01T10:00:00', "
                   "categories = 'not json', authors = '{\"a\": 1}', site_related = '[1, {\"x\": 2}]' "
                   "WHERE id = ?", [victim])
        db.execute("UPDATE articles SET published = '2024-11-03T10:00:00' WHERE title = 'Council story 2'")
    result = aggregator(tmp_path, "publish", "--force")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    tree = etree.parse(str(tmp_path / "feeds" / "all.atom"), etree.XMLParser(resolve_entities=False))
    titles = [e.findtext(f"{ATOM}title") for e in tree.iter(f"{ATOM}entry")]
    assert sorted(titles) == [f"Council story {n}" for n in range(4)]
    listed = aggregator(tmp_path, "articles", "--json")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 4
