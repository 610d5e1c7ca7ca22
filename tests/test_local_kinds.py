"""Every kind of local file, in every common encoding, parsed to exact fields.

Inputs are tests/fixtures/local/good/<name>; what each must produce is
tests/fixtures/local/expected/<name>.json. Adding a case is adding two files.
Bad files in tests/fixtures/local/bad/ must each become one Skipped line.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aggregator.models import Article
from aggregator.enrich.text import fold_for_matching
from aggregator.ingest.feed_entries import feed_article_id
from aggregator.ingest.html import extract_article_html
from aggregator.ingest.local import ParseOptions, detect_kind, local_article_id, read_local_source
from helpers.files import FIXTURES

LOCAL = FIXTURES / "local"
GOOD = sorted(p.name for p in (LOCAL / "good").iterdir())
FILE_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)  # the date of a file that gives none
FIELDS = ("title", "site", "url", "guid", "authors", "categories", "summary", "text", "content_html", "image")
MAX_SIZE = 64 * 1024


def copy_fixture(folder: Path, kind: str, name: str) -> Path:
    target = folder / name
    shutil.copyfile(LOCAL / kind / name, target)
    stamp = int(FILE_TIME.timestamp() * 1e9)
    os.utime(target, ns=(stamp, stamp))
    return target


def as_record(article: Article) -> dict:
    record = {name: getattr(article, name) for name in FIELDS}
    record["authors"], record["categories"] = list(article.authors), list(article.categories)  # as JSON has them
    record["published"] = article.published.isoformat() if article.published else None
    record["updated"] = article.updated.isoformat() if article.updated else None
    return record


def parse_one(folder: Path, name: str, kind: str = "good"):
    path = copy_fixture(folder, kind, name)
    results = list(read_local_source(path, "fixtures", ParseOptions(), MAX_SIZE))
    assert len(results) == 1
    return path, results[0]


def test_there_are_fixtures_of_every_kind_and_encoding() -> None:
    kinds = {detect_kind((LOCAL / "good" / n).read_bytes().decode("latin-1"), Path(n)) for n in GOOD}
    assert kinds == {"html", "markdown", "json", "feed", "plaintext"}
    assert sum(n.endswith(".html") for n in GOOD) >= 5
    assert {p.name for p in (LOCAL / "expected").iterdir()} == {f"{n}.json" for n in GOOD}


@pytest.mark.parametrize("name", GOOD)
def test_fixture_produces_exactly_the_expected_articles(tmp_path: Path, name: str) -> None:
    path, result = parse_one(tmp_path, name)
    expected = json.loads((LOCAL / "expected" / f"{name}.json").read_text(encoding="utf-8"))
    assert result.skipped == [] and result.error is None
    assert [as_record(a) for a in result.articles] == expected
    assert all(a.source == "fixtures" and a.origin == str(path) for a in result.articles)
    assert len({a.id for a in result.articles}) == len(result.articles)
    assert all(a.content_hash for a in result.articles)
    assert result.file is not None and result.file.article_ids == [a.id for a in result.articles]


@pytest.mark.parametrize("name", [n for n in GOOD if n.endswith((".html", ".md", ".txt"))]
                         + ["08_single.json"])
def test_single_article_files_are_keyed_by_source_and_path(tmp_path: Path, name: str) -> None:
    _, result = parse_one(tmp_path, name)
    assert [a.id for a in result.articles] == [local_article_id("fixtures", name)]


def test_feed_entries_are_keyed_by_guid_and_list_items_by_their_id(tmp_path: Path) -> None:
    _, rss = parse_one(tmp_path, "11_rss_cp1252.xml")
    assert [a.id for a in rss.articles] == [feed_article_id("fixtures", "mw-coffee-2024"),
                                            feed_article_id("fixtures", "mw-port-2024")]
    _, listed = parse_one(tmp_path, "09_list_utf16.json")
    assert [a.id for a in listed.articles] == [local_article_id("fixtures", "09_list_utf16.json#a-1"),
                                               local_article_id("fixtures", "09_list_utf16.json#a-2")]


def test_html_boilerplate_is_left_out(tmp_path: Path) -> None:
    for name in [n for n in GOOD if n.endswith(".html")]:
        _, result = parse_one(tmp_path, name)
        text = result.articles[0].text
        for noise in ("Home", "Advertisement", "Follow us", "Folgen Sie", "cookies", "Most read",
                      "newsletter", "Share this", "All rights reserved", "Archive"):
            assert noise not in text, (name, noise)
        assert "<script" not in result.articles[0].content_html


def test_published_text_keeps_nbsp_and_curly_quotes_while_matching_folds_them(tmp_path: Path) -> None:
    _, result = parse_one(tmp_path, "02_jsonld_bom.html")
    text = result.articles[0].text
    assert "voted 9\u00a0to\u00a02" in text and "\u201ca turning point for local energy\u201d" in text
    folded = fold_for_matching(text)
    assert "voted 9 to 2" in folded and '"a turning point for local energy"' in folded
    _, plain = parse_one(tmp_path, "14_plaintext_bom.txt")
    assert "40\u00a0tonnes" in plain.articles[0].text
    assert "the \u201cdirtiest\u201d jobs" in plain.articles[0].content_html


def test_json_list_html_is_sanitized(tmp_path: Path) -> None:
    raw = (LOCAL / "good" / "09_list_utf16.json").read_bytes().decode("utf-16")
    assert "<script>" in raw
    _, result = parse_one(tmp_path, "09_list_utf16.json")
    assert all("script" not in a.content_html and "alert" not in a.text for a in result.articles)


BAD = {
    "empty.html": "empty file",
    "binary.md": "binary data, not text; not an article file",
    "undecodable.txt": "starts with a utf-8-sig byte-order mark but is not valid utf-8-sig; not an article file",
    "not_article.txt": "not an article: no title line after the site and categories lines",
    "not_article.json": "not an article: a JSON object without a title and text (expected an article, "
                        "a list of articles or a JSON Feed)",
    "not_article.html": "not an article: an HTML page without article text",
    "no_title.md": "not an article: Markdown without a title (add `title:` to the front matter or a `# heading`)",
    "truncated_feed.xml": "the feed is cut off before its end (truncated download?); nothing from it was stored, "
                          "it will be retried",
}


def test_every_bad_fixture_has_a_case() -> None:
    assert set(BAD) == {p.name for p in (LOCAL / "bad").iterdir()}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_becomes_one_skipped_line_naming_it(tmp_path: Path, name: str) -> None:
    path, result = parse_one(tmp_path, name, kind="bad")
    assert result.articles == [] and result.file is None
    assert [(s.origin, s.reason) for s in result.skipped] == [(str(path), BAD[name])]


def test_oversized_file_is_skipped_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_bytes(b"Site\nWorld\n\nTitle\n\n" + b"word " * 20_000)
    [result] = read_local_source(path, "fixtures", ParseOptions(), MAX_SIZE)
    size = path.stat().st_size
    assert [s.reason for s in result.skipped] == [
        f"larger than the {MAX_SIZE:,}-byte limit ({size:,} bytes); raise [ingest] max_file_size to read it"]


@pytest.mark.parametrize("text, name, kind", [
    ('{"title": "x"}', "notes.txt", "plaintext"),   # a .txt is never JSON, whatever it starts with
    ('  [{"title": "x"}]', "export", "json"),
    ("<?xml version='1.0'?>\n<!-- saved -->\n<rss version='2.0'>", "feed.txt", "feed"),
    ("<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>", "a.html", "feed"),
    ("<!-- saved from url -->\n<!DOCTYPE html><html>", "page.txt", "html"),
    ("---\ntitle: x\n---\nbody", "post.txt", "markdown"),
    ("+++\ntitle = 'x'\n+++\nbody", "post", "markdown"),
    ("# Heading\n\nbody", "post.md", "markdown"),
    ("Plain words", "page.html", "html"),
    ("Site\nWorld\n\nTitle\n\nBody.", "article", "plaintext"),
])
def test_kind_is_recognised_by_content_then_extension(text: str, name: str, kind: str) -> None:
    assert detect_kind(text, Path(name)) == kind


def test_extract_article_html_for_full_text_fetching() -> None:
    page = (LOCAL / "good" / "01_opengraph.html").read_text(encoding="utf-8")
    text, content_html = extract_article_html(page, "https://coastal.example/news/harbour-reopens")
    assert text.startswith("Harbour reopens after storm\n\nThe harbour reopened on Monday")
    assert text.endswith("officials told reporters at the quay.")
    assert "Follow us" not in text and "Advertisement" not in text
    assert content_html.startswith("<h1>Harbour reopens after storm</h1><p>The harbour reopened")
    assert extract_article_html("<html><body><nav><a href='/'>Home</a></nav></body></html>", None) is None
    assert extract_article_html("", None) is None
