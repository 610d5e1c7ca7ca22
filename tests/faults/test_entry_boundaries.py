"""One feed entry, one feed, one stored article: each fails alone, in one line, and the rest goes on.

The inputs are real where one exists: feeds that made our reading or
feedparser raise (found by mutating the conformance corpus), and database
rows written with sqlite3 the way an older version or a hand edit leaves
them. An entry that raises for a reason not yet known is injected into the
real `aggregator` process (its sanitizer raising for one marked entry),
since every such input found so far is fixed at its cause.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from email.utils import formatdate
from pathlib import Path

import pytest
from lxml import etree

from aggregator.ingest import feed_entries as feed
from aggregator.ingest.feed import parse_feed
from helpers.daemon import write_config
from helpers.feed_server import FeedServer, Reply

from helpers.command import PYTHON, _env, aggregator, desk_config, error_lines, rss_channel

ATOM = "{http://www.w3.org/2005/Atom}"
POISON = "POISONED"
# The real CLI with one fault injected: the HTML sanitizer raises for content holding POISON.
INJECTED = f"""
import sys
from aggregator.ingest import feed_entries as feed
real = feed.sanitize_html
def failing(fragment, base_url=None):
    if {POISON!r} in fragment:
        raise ValueError("injected fault")
    return real(fragment, base_url)
feed.sanitize_html = failing
from aggregator.app.cli import main
sys.argv[0] = "aggregator"
main()
"""


def rss(site: str, count: int, poisoned: int | None = None, extra: str = "") -> bytes:
    slug = site.lower().replace(" ", "-")
    items = "".join(
        f"<item><title>{site} story {n}{' ' + POISON if n == poisoned else ''}</title>"
        f"<link>https://{slug}.example/{n}</link><guid>https://{slug}.example/{n}</guid>"
        f"<pubDate>{formatdate(1_760_000_000 + 60 * n, usegmt=True)}</pubDate>"
        f"<description>&lt;p&gt;{site} reports story number {n} about the harbour{' ' + POISON if n == poisoned else ''}."
        f"&lt;/p&gt;</description>{extra if n == 2 else ''}</item>"
        for n in range(1, count + 1))
    return rss_channel(site, items)


def json_feed(items: list[dict]) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "Json Wire", "items": items}).encode()


def injected(project: Path, *args: str) -> subprocess.CompletedProcess:
    """`aggregator -c project/config.toml ARGS...` with the sanitizer fault injected."""
    return subprocess.run([PYTHON, "-c", INJECTED, "-c", str(project / "config.toml"), *args], cwd=project,
                          env=_env(), capture_output=True, text=True, timeout=120)


def stored(project: Path) -> dict[str, list[str]]:
    with sqlite3.connect(project / "data" / "test.db") as db:
        rows = db.execute("SELECT source, title FROM articles ORDER BY title").fetchall()
    found: dict[str, list[str]] = {}
    for source, title in rows:
        found.setdefault(source, []).append(title)
    return found


def feed_titles(project: Path, name: str = "all.atom") -> list[str]:
    tree = etree.parse(str(project / "feeds" / name), etree.XMLParser(resolve_entities=False))
    return [e.findtext(f"{ATOM}title") for e in tree.iter(f"{ATOM}entry")]


def sources_config(server: FeedServer, *sites: str) -> str:
    return "".join(f'[[sources]]\nname = "{site}"\nurl = "{server.url("/" + site.split()[0].lower())}"\n\n'
                   for site in sites)


# --- one entry ---


def test_an_entry_that_raises_is_one_line_and_the_rest_of_the_feed_is_stored(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/harbour"] = Reply(200, rss("Harbour Wire", 5, poisoned=3))
        server.routes["/steady"] = Reply(200, rss("Steady Wire", 3))
        write_config(tmp_path, 8080, sources_config(server, "Harbour Wire", "Steady Wire"))
        run = injected(tmp_path, "run", "--once")
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        [line] = [line for line in run.stderr.splitlines() if "skipped" in line and "entry" in line]
        assert line == ('WARNING Harbour Wire: skipped entry 3 (id "https://harbour-wire.example/3", '
                        f'"Harbour Wire story 3 {POISON}"): could not be read (ValueError: injected fault); '
                        "the other entries are stored")
        assert "Harbour Wire: 4 new, 0 updated, 0 unchanged, 1 skipped" in run.stdout.splitlines()
        assert len(stored(tmp_path)["Harbour Wire"]) == 4 and len(stored(tmp_path)["Steady Wire"]) == 3
        assert "Harbour Wire story 5" in feed_titles(tmp_path) and "Steady Wire story 1" in feed_titles(tmp_path)

        debug = injected(tmp_path, "--log-level", "debug", "run", "--once")  # the traceback, for a bug report
        assert re.search(r"Harbour Wire: caught while parsing:\nTraceback.*ValueError: injected fault", debug.stderr,
                         re.S)

        fixed = aggregator(tmp_path, "run", "--once")  # the fault gone, the next run stores the entry
        assert fixed.returncode == 0, fixed.stderr
        assert f"Harbour Wire story 3 {POISON}" in stored(tmp_path)["Harbour Wire"]


def test_a_json_feed_item_that_raises_is_skipped_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    real = feed.sanitize_html
    monkeypatch.setattr(feed, "sanitize_html",
                        lambda html, base=None: (_ for _ in ()).throw(RuntimeError("boom")) if POISON in html
                        else real(html, base))
    items = [{"id": "a", "title": "First", "content_text": "One."},
             {"id": 2, "title": "Second \x1b[31m", "content_html": f"<p>{POISON}</p>"},
             {"id": "c", "title": "Third", "content_text": "Three."}]
    result = parse_feed(json_feed(items), source="Json Wire")
    assert [a.title for a in result.articles] == ["First", "Third"]
    [skipped] = result.skipped
    assert skipped.origin == 'entry 2 (id "2", "Second \\x1b[31m")'  # printable: no escape reaches a terminal
    assert skipped.reason == "could not be read (RuntimeError: boom); the other entries are stored"
    assert "RuntimeError: boom" in result.tracebacks[0]


def test_a_saved_feed_file_names_the_file_and_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aggregator.ingest.local import ParseOptions, parse_file, read_file

    real = feed.sanitize_html
    monkeypatch.setattr(feed, "sanitize_html",
                        lambda html, base=None: (_ for _ in ()).throw(ValueError("boom")) if POISON in html
                        else real(html, base))
    path = tmp_path / "saved.rss"
    path.write_bytes(rss("Saved Wire", 3, poisoned=2))
    result = parse_file(read_file(path, tmp_path, 10**6), "Desk", ParseOptions())
    assert len(result.articles) == 2
    assert [s.origin for s in result.skipped] == [
        f'{path}: entry 2 (id "https://saved-wire.example/2", "Saved Wire story 2 {POISON}")']


# Entries that made the whole feed fail before (found by mutating the conformance corpus): each is
# read now, whole, and so is every other entry of its feed.
REAL_ENTRIES = {
    # a link urljoin cannot parse ("Invalid IPv6 URL" took the feed down): the link is dropped
    "bad IPv6 link": "<description>&lt;p&gt;Read &lt;a href=\"//[\"&gt;this&lt;/a&gt; now.&lt;/p&gt;</description>",
    # ill-formed markup after which feedparser keeps a bare string among an entry's links
    "string among links": "<links/2.0/?item</link>",
}


@pytest.mark.parametrize("case", REAL_ENTRIES)
def test_inputs_that_once_failed_a_whole_feed_are_read_whole(case: str) -> None:
    data = rss("Odd Wire", 3, extra=REAL_ENTRIES[case])
    result = parse_feed(data, source="Odd Wire", url="https://odd-wire.example/feed")
    assert result.error is None and not result.skipped
    assert sorted(a.title for a in result.articles) == [f"Odd Wire story {n}" for n in (1, 2, 3)]


def test_emoji_written_as_surrogate_references_are_read_as_emoji() -> None:
    """&#55357;&#56832; (UTF-16 halves, as some CMSs write an emoji) made feedparser raise for the feed."""
    data = rss("Emoji Wire", 2).replace(b"Emoji Wire story 1<", b"Emoji Wire story 1 &#55357;&#56832; &#xD800;<")
    result = parse_feed(data, source="Emoji Wire")
    assert result.error is None
    assert "Emoji Wire story 1 \U0001F600 \ufffd" in [a.title for a in result.articles]


# --- one feed ---

# feedparser itself raises on an end tag it has no start for in the Creative Commons namespace.
STRAY_END_TAG = (b'<?xml version="1.0"?><rss version="2.0" xmlns:creativeCommons='
                 b'"http://backend.userland.com/creativeCommonsRssModule"><channel><title>Broken Wire</title>'
                 b"<item><title>Broken story</title><link>https://broken.example/1</link>"
                 b"</creativeCommons:license></item></channel></rss>")


def test_a_feed_the_parser_raises_on_fails_alone_in_one_line(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/broken"] = Reply(200, STRAY_END_TAG)
        server.routes["/steady"] = Reply(200, rss("Steady Wire", 3))
        write_config(tmp_path, 8080, sources_config(server, "Broken Wire", "Steady Wire"))
        run = aggregator(tmp_path, "run", "--once")
        assert run.returncode == 2, run.stderr  # some sources failed
        assert "Traceback" not in run.stderr
        assert error_lines(run.stderr) == [
            "error: Broken Wire: could not be read as a feed (KeyError: 'license'); nothing from it was stored, "
            "it is read again at the next fetch"]
        assert len(stored(tmp_path)["Steady Wire"]) == 3
        assert "Steady Wire story 3" in feed_titles(tmp_path)
        status = aggregator(tmp_path, "sources").stdout
        assert re.search(r"^Broken Wire +remote error ", status, re.M)

        server.routes["/broken"] = Reply(200, rss("Broken Wire", 2))  # the publisher fixes the feed
        again = aggregator(tmp_path, "run", "--once")
        assert again.returncode == 0, again.stderr
        assert len(stored(tmp_path)["Broken Wire"]) == 2


# --- one stored article, when publishing ---



@pytest.fixture
def published(tmp_path: Path) -> Path:
    """Three council stories ingested and published; each id is the file's stem's article id."""
    (tmp_path / "config.toml").write_text(desk_config("data/test.db"), "utf-8")
    (tmp_path / "articles").mkdir()
    for n in (1, 2, 3):
        (tmp_path / "articles" / f"story{n}.md").write_text(
            f"---\ntitle: Council story {n}\ndate: 2024-11-0{n}\n---\n\nThe council met on day {n}.\n", "utf-8")
    first = aggregator(tmp_path, "run", "--once")
    assert first.returncode == 0, first.stderr
    return tmp_path


def article_id(project: Path, title: str) -> str:
    with sqlite3.connect(project / "data" / "test.db") as db:
        return db.execute("SELECT id FROM articles WHERE title = ?", [title]).fetchone()[0]


def edit_row(project: Path, sql: str, *params: object) -> None:
    """What an older version or a hand edit leaves in the database, written with sqlite3 itself."""
    with sqlite3.connect(project / "data" / "test.db") as db:
        db.execute(sql, params)


FEED_FILES = [f"{slug}.{ext}" for slug in ("news", "all") for ext in ("atom", "rss", "json")]


def test_a_stored_article_no_feed_can_render_is_left_out_and_every_feed_is_written(published: Path) -> None:
    """A hand edit emptied a title: Atom requires one (feedgen refuses the entry), RSS and JSON Feed
    do not; the article is left out of the Atom feeds only, and every file is written."""
    bad = article_id(published, "Council story 2")
    edit_row(published, "UPDATE articles SET title = '' WHERE id = ?", bad)
    run = aggregator(published, "publish", "--force")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        f"WARNING publish: article {bad} left out of news.atom, all.atom (ValueError: Required fields not set); "
        "its stored row holds something no feed can carry (written by hand or by an older version)"]
    assert "1 article left out (see above)" in run.stdout
    for name in FEED_FILES:
        assert (published / "feeds" / name).stat().st_size > 0
    assert sorted(feed_titles(published)) == ["Council story 1", "Council story 3"]
    assert sorted(feed_titles(published, "news.atom")) == ["Council story 1", "Council story 3"]

    edit_row(published, "UPDATE articles SET title = 'Council story 2' WHERE id = ?", bad)
    fixed = aggregator(published, "publish")
    assert fixed.returncode == 0 and fixed.stderr == ""
    assert sorted(feed_titles(published)) == ["Council story 1", "Council story 2", "Council story 3"]


def test_a_stored_row_with_odd_json_and_dates_is_published_with_what_can_be_read(published: Path) -> None:
    """A category that is a number and a date without a zone (older versions wrote both): the
    store reads the strings it can and the date as UTC, so the article stays in every feed."""
    odd = article_id(published, "Council story 3")
    edit_row(published, "UPDATE articles SET categories = '[\"World\", 7]', published = '2024-11-02T00:00:00' "
                        "WHERE id = ?", odd)
    run = aggregator(published, "publish", "--force")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert sorted(feed_titles(published)) == ["Council story 1", "Council story 2", "Council story 3"]


def test_text_xml_cannot_carry_in_a_stored_row_is_dropped_when_publishing(published: Path) -> None:
    """Ingest scrubs it before storing; a row stored before that is published without it, not left out."""
    dirty = article_id(published, "Council story 1")
    edit_row(published, "UPDATE articles SET title = ?, summary = ?, content_html = ? WHERE id = ?",
             "Council \x1b[31mstory\x07 1", "The council\x0c met.", "<p>The council\x00 met.</p>", dirty)
    run = aggregator(published, "publish", "--force")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "Council [31mstory 1" in feed_titles(published)  # parsed by lxml: the files are XML
    assert "Council [31mstory 1" in feed_titles(published, "news.atom")


def test_an_entry_is_named_by_what_it_has() -> None:
    assert feed.entry_name(4, None, "https://x.example/4", "Title") == 'entry 4 (link "https://x.example/4", "Title")'
    assert feed.entry_name(5, "", "", "") == "entry 5"
    assert feed.entry_name(6, "id-" + "x" * 200, None, None).endswith('\u2026")')
