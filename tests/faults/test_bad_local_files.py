"""One bad local file stops only itself: `run --once` as a user runs it, on real files and a real database.

Each case puts one broken file among good ones and checks what the user
sees (one line naming the file), the exit status, that the good files are
stored and published, and that fixing the file is picked up by the next run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lxml import etree

from helpers.command import aggregator, desk_config

ATOM = "{http://www.w3.org/2005/Atom}"


def good_markdown(n: int) -> str:
    return (f"---\ntitle: Council story {n}\ndate: 2024-11-{n % 28 + 1:02d}\n---\n\n"
            f"The council met on day {n} to discuss the budget and the new library.\n")


def titles_in_feed(project: Path) -> list[str]:
    tree = etree.parse(str(project / "feeds" / "all.atom"), etree.XMLParser(resolve_entities=False))
    return [e.findtext(f"{ATOM}title") for e in tree.iter(f"{ATOM}entry")]


def stored(project: Path) -> dict[str, str]:
    with sqlite3.connect(project / "news.db") as db:
        return {origin.rsplit("/", 1)[-1]: title for origin, title in db.execute("SELECT origin, title FROM articles")}


def make_project(tmp_path: Path, good: int = 30) -> Path:
    (tmp_path / "config.toml").write_text(desk_config(), "utf-8")
    folder = tmp_path / "articles"
    folder.mkdir()
    for n in range(good):
        (folder / f"good{n:02d}.md").write_text(good_markdown(n), "utf-8")
    return tmp_path


def test_an_impossible_date_costs_the_date_not_the_file_nor_the_run(tmp_path: Path):
    project = make_project(tmp_path)
    (project / "articles" / "bad.md").write_text(
        "---\ntitle: Council story with a bad date\ndate: 2024-13-05\n---\n\nThe council met again.\n", "utf-8")
    result = aggregator(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "bad.md" in line]
    assert "Desk" in line and "front matter date: '2024-13-05' is not a date we can read" in line
    assert len(stored(project)) == 31 and stored(project)["bad.md"] == "Council story with a bad date"
    assert "Council story with a bad date" in titles_in_feed(project)


def test_a_file_a_parser_chokes_on_is_one_line_and_the_rest_is_stored(tmp_path: Path):
    """Front matter nested 5,000 deep makes PyYAML raise RecursionError, which is no YAMLError:
    one line names the file, the other 30 are stored and published, and the fixed file comes in next run."""
    project = make_project(tmp_path)
    nested = "[" * 5000 + "]" * 5000
    (project / "articles" / "deep.md").write_text(f"---\ntitle: Deep\nk: {nested}\n---\n\nText.\n", "utf-8")
    result = aggregator(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "deep.md" in line]
    assert len(lines) == 1 and "Desk" in lines[0] and "RecursionError" in lines[0], result.stderr
    assert "fix or remove the file" in lines[0]
    assert len(stored(project)) == 30 and len(titles_in_feed(project)) == 30

    (project / "articles" / "deep.md").write_text(good_markdown(99), "utf-8")
    assert aggregator(project, "run", "--once").returncode == 0
    assert len(stored(project)) == 31


def test_control_characters_never_reach_the_store_or_stop_a_publish(tmp_path: Path):
    """Terminal escapes, BEL, BS and FF in a title and in a JSON article's author: stored without them,
    and every feed is still written and parses as XML."""
    project = make_project(tmp_path, good=3)
    (project / "articles" / "escape.md").write_text(
        "# Council \x1b[31malert\x07 back\x08space\x0cfeed\n\nThe council met in the night.\n", "utf-8")
    (project / "articles" / "author.json").write_text(json.dumps({
        "title": "Council \u0007bell story", "text": "The council rang the bell.", "author": "Ed\u0001itor",
        "categories": ["Cou\u000bncil"]}), "utf-8")
    result = aggregator(project, "run", "--once")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(project / "news.db") as db:
        rows = db.execute("SELECT title, authors, categories, text FROM articles").fetchall()
    assert len(rows) == 5
    for row in rows:
        for value in row:
            assert not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value or ""), repr(value)
    feed_titles = titles_in_feed(project)
    assert "Council [31malert backspacefeed" in feed_titles and "Council bell story" in feed_titles
