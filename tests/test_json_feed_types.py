"""JSON Feed fields of the wrong type: read as far as they make sense, never a reason to stop.

Publishers put objects where URLs belong, lists where strings belong,
numbers for ids and dates, a bare string for `tags` or `author`. Each such
field is read at the JSON Feed boundary (ingest/feed_json.py) or left out; the
feed's other fields and items still count, and the run goes on: the last
test runs a whole `run --once` over a file whose home_page_url is an object,
which must not raise in safe_url and stop the run.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aggregator.app.cli import cli
from aggregator.enrich.urls import safe_url
from aggregator.ingest.feed import parse_feed

VERSION = "https://jsonfeed.org/version/1.1"
GOOD_ITEM = {"id": "a-1", "url": "https://atlas.example/a-1", "title": "Harbour reopens",
             "content_html": "<p>The harbour reopened on Monday.</p>"}


def feed(items: list[Any] | None = None, **top: Any) -> bytes:
    return json.dumps({"version": VERSION, "title": "Atlas Wire", **top,
                       "items": [GOOD_ITEM] if items is None else items}).encode("utf-8")


def item(**fields: Any) -> bytes:
    return feed([{**GOOD_ITEM, **fields}])


def only_article(data: bytes):
    result = parse_feed(data, source="Atlas")
    assert result.error is None
    [article] = result.articles
    return article


@pytest.mark.parametrize("key", ["home_page_url", "feed_url"])
@pytest.mark.parametrize("value", [{"href": "https://atlas.example/"}, ["https://atlas.example/"], 7, True])
def test_feed_level_url_of_the_wrong_type_is_no_url(key: str, value: Any) -> None:
    article = only_article(feed(**{key: value}))
    assert article.title == "Harbour reopens" and article.url == "https://atlas.example/a-1"


@pytest.mark.parametrize("key", ["url", "external_url"])
def test_item_url_of_the_wrong_type_is_no_url(key: str) -> None:
    assert only_article(item(**{key: {"href": "https://atlas.example/x"}})).url == (
        None if key == "url" else "https://atlas.example/a-1")


def test_image_and_banner_image_as_objects_are_no_image() -> None:
    article = only_article(item(image={"url": "https://atlas.example/i.jpg"}, banner_image=["x"]))
    assert article.image is None
    assert only_article(item(image=[], banner_image="https://atlas.example/b.jpg")).image == (
        "https://atlas.example/b.jpg")


@pytest.mark.parametrize("key", ["title", "content_html", "content_text", "summary"])
def test_a_list_where_a_string_belongs_reads_its_strings(key: str) -> None:
    fields = {key: ["Part one", 2, {"x": 1}, "part two"]}
    if key == "content_text":
        fields["content_html"] = None
    article = only_article(item(**fields))
    shown = {"title": article.title, "content_html": article.text, "content_text": article.text,
             "summary": article.summary}[key]
    assert shown == "Part one part two"


@pytest.mark.parametrize("value", [{"text": "x"}, 42, None, True])
def test_a_title_of_another_type_is_left_out_and_the_text_stands_in(value: Any) -> None:
    article = only_article(item(title=value))
    assert article.title == "The harbour reopened on Monday."


@pytest.mark.parametrize("value, guid", [(12345, "12345"), (1.5, "1.5"), ("a-1", "a-1")])
def test_a_numeric_id_is_read_as_a_string_as_the_spec_says(value: Any, guid: str) -> None:
    assert only_article(item(id=value)).guid == guid


@pytest.mark.parametrize("value", [True, {"id": 1}, ["a"], None])
def test_an_id_of_another_type_falls_back_to_the_url(value: Any) -> None:
    assert only_article(item(id=value)).guid == "https://atlas.example/a-1"


@pytest.mark.parametrize("value, categories", [
    ("Shipping", ["Shipping"]), (["World", 2024, None, {"x": 1}, "world"], ["World", "2024"]),
    ({"name": "World"}, []), (7, ["7"]),
])
def test_tags_of_any_shape(value: Any, categories: list[str]) -> None:
    assert only_article(item(tags=value)).categories == tuple(categories)


@pytest.mark.parametrize("fields, authors", [
    ({"authors": {"name": "Ann Lee"}}, ["Ann Lee"]),
    ({"author": "Bob Stone"}, ["Bob Stone"]),
    ({"author": {"name": "Cy Park"}}, ["Cy Park"]),
    ({"authors": [{"name": ["Di", "Ng"]}, 3, "Ed Fox", {"url": "https://x.example/"}]}, ["Di Ng", "Ed Fox"]),
    ({"authors": "Fay Low"}, ["Fay Low"]),
    ({"authors": 12}, []),
])
def test_authors_of_any_shape(fields: dict, authors: list[str]) -> None:
    assert only_article(item(**fields)).authors == tuple(authors)


@pytest.mark.parametrize("value", [1700000000, 1.7e9, ["2024-01-02T03:04:05Z"], {"date": "x"}, "yesterday"])
def test_a_date_that_is_not_an_rfc3339_string_is_no_date(value: Any) -> None:
    article = only_article(item(date_published=value, date_modified=value))
    assert article.published is None and article.updated is None


def test_items_that_are_not_objects_are_passed_over() -> None:
    result = parse_feed(feed([1, "two", None, [GOOD_ITEM], True, GOOD_ITEM]), source="Atlas")
    assert result.error is None and [a.title for a in result.articles] == ["Harbour reopens"]


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    """json.loads lets "\\ud800" through; hashing and SQLite would raise on it."""
    data = feed([{"id": "s", "title": "Caf\\ud800 news", "content_text": "x\\udfff"}]).replace(b"\\\\u", b"\\u")
    article = only_article(data)
    assert article.title == "Caf\ufffd news" and article.text == "x\ufffd"


@pytest.mark.parametrize("value", [{"href": "https://x.example/"}, ["https://x.example/"], 7, b"https://x.example/",
                                   None, ""])
def test_safe_url_answers_none_for_anything_but_a_string(value: Any) -> None:
    assert safe_url(value) is None
    assert safe_url("/a", value) is None  # a base of the wrong type resolves nothing


def test_every_field_wrong_at_once_still_yields_the_item() -> None:
    data = feed([{"id": 99, "url": {"u": 1}, "external_url": ["x"], "title": ["A", "B"], "content_html": ["<p>x</p>"],
                  "summary": {"a": 1}, "tags": "news", "author": "Bob", "authors": {}, "date_published": 17e8,
                  "image": {"url": "https://i.example/x.png"}, "banner_image": []}],
                home_page_url={"href": "https://x.example/"}, feed_url=[], authors={"name": "Ann"}, title=["My", "Site"],
                icon=5)
    article = only_article(data)
    assert (article.title, article.guid, article.site, article.authors, article.categories) == (
        "A B", "99", "My Site", ("Bob",), ("news",))


CONFIG = """
[storage]
database = "data/test.db"
feeds_dir = "feeds"

[[sources]]
name = "Saved feeds"
path = "saved"

[[sources]]
name = "Other saved feeds"
path = "other"
"""


def test_one_bad_json_feed_file_does_not_stop_the_run(tmp_path: Path) -> None:
    """`run --once` over a folder holding JSON feeds of every wrong shape next to good files."""
    saved, other = tmp_path / "saved", tmp_path / "other"
    saved.mkdir()
    other.mkdir()
    (saved / "a_object_urls.json").write_bytes(feed([{**GOOD_ITEM, "id": 7, "title": "Object URLs, kept"}],
                                                    home_page_url={"href": "https://x.example/"},
                                                    feed_url={"href": "https://x.example/f"}))
    (saved / "b_no_items.json").write_bytes(json.dumps({"version": VERSION, "items": {"a": 1}}).encode())
    (saved / "c_good.json").write_bytes(feed([{**GOOD_ITEM, "id": "c", "title": "Good JSON feed item"}]))
    (saved / "d_good.xml").write_text(textwrap.dedent("""\
        <?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://t.example/</link>
        <item><title>Good RSS item</title><link>https://t.example/1</link><description>d</description></item>
        </channel></rss>"""), encoding="utf-8")
    (other / "e_good.json").write_bytes(feed([{**GOOD_ITEM, "id": "e", "title": "Other source item"}]))
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(tmp_path / "config.toml"), "run", "--once"], catch_exceptions=False)
    assert result.exception is None, result.output
    listed = runner.invoke(cli, ["-c", str(tmp_path / "config.toml"), "articles", "--json"], catch_exceptions=False)
    titles = sorted(json.loads(line)["title"] for line in listed.output.splitlines())
    assert titles == ["Good JSON feed item", "Good RSS item", "Object URLs, kept", "Other source item"]
    assert "Saved feeds: 3 new, 0 updated, 0 unchanged, 1 skipped" in result.output  # b_no_items.json


@pytest.mark.parametrize("version", ["1", "1.0", "1.1", "https://jsonfeed.org/version/1"])
def test_a_bare_version_number_over_an_items_list_is_a_json_feed(version: str) -> None:
    """gofeed's own test feeds write "1.0"; with an items list beside it nothing else is meant."""
    data = json.dumps({"version": version, "items": [GOOD_ITEM]}).encode()
    assert [a.title for a in parse_feed(data, source="Atlas").articles] == ["Harbour reopens"]


def test_a_bare_version_number_without_items_is_not_a_feed() -> None:
    assert parse_feed(json.dumps({"version": "1.0", "title": "x"}).encode(), source="Atlas").error
