"""Every generated feed is valid by its specification and means the same in every format.

The feeds are published once per module over the samples plus hostile and
tricky hand-made articles (tests/helpers/corpus.py), then checked with our
own RFC 4287 / RSS 2.0 / JSON Feed 1.1 checkers, jing, feedparser and the
real newsboat reader.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import feedparser
import lxml.html
import pytest

from aggregator.publish.render import publish
from helpers.atom import atom_errors, parse_xml
from helpers.corpus import build_store, make_config, published_corpus
from helpers.jsonfeed import json_feed_errors
from helpers.newsboat import newsboat_read
from helpers.rss import rss_errors
from helpers.safety import unsafe_html, unsafe_xml
from helpers.serve import serve_folder

SCHEMA_RNC = Path(__file__).resolve().parent / "schemas" / "atom.rnc"
A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published_corpus(tmp_path_factory.mktemp("validity")).storage.feeds_dir


def files(feeds: Path, suffix: str) -> list[Path]:
    found = sorted(feeds.glob(f"*.{suffix}"))
    assert len(found) == 6, f"expected 5 topics + all, got {[p.name for p in found]}"
    return found


def test_every_atom_feed_is_valid_rfc4287(feeds: Path) -> None:
    for path in files(feeds, "atom"):
        assert atom_errors(path.read_bytes()) == [], path.name


def test_jing_agrees_with_the_rfc_schema(feeds: Path) -> None:
    done = subprocess.run(["jing", "-c", str(SCHEMA_RNC), *map(str, files(feeds, "atom"))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rss_feed_follows_the_rss_board_rules(feeds: Path) -> None:
    for path in files(feeds, "rss"):
        assert rss_errors(path.read_bytes()) == [], path.name


def test_every_json_feed_is_json_feed_1_1(feeds: Path) -> None:
    for path in files(feeds, "json"):
        assert json_feed_errors(path.read_bytes()) == [], path.name


def test_checkers_reject_broken_documents() -> None:
    """Our checkers have teeth: each known-bad document yields the error it should."""
    no_author = (b'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>t</title>'
                 b"<updated>2024-01-01T00:00:00</updated><entry><id>urn:e</id><title>e</title>"
                 b"<updated>2024-01-01T00:00:00Z</updated></entry></feed>")
    errors = " ".join(atom_errors(no_author))
    assert "no author" in errors and "timezone" in errors and "alternate link" in errors
    assert "RELAX NG" in " ".join(atom_errors(b'<feed xmlns="http://www.w3.org/2005/Atom"><title/></feed>'))
    bad_rss = (b'<rss version="2.0"><channel><title>t</title><link>http://x.example/</link><description>d'
               b"</description><item><title>i</title><guid>urn:not-a-url</guid><pubDate>2024-01-01</pubDate>"
               b"</item></channel></rss>")
    errors = " ".join(rss_errors(bad_rss))
    assert "permalink" in errors and "RFC 822" in errors and "rel=\"self\"" in errors
    bad_json = json.dumps({"version": "https://jsonfeed.org/version/1", "title": "t",
                           "items": [{"title": "x", "date_published": "2024-01-01"}]}).encode()
    errors = " ".join(json_feed_errors(bad_json))
    assert "version" in errors and "id must be" in errors and "content_html" in errors and "RFC 3339" in errors


def _unescaped_contents(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.suffix == ".json":
        return [item["content_html"] for item in json.loads(data)["items"]]
    root = parse_xml(data)
    tags = (A + "content", A + "summary", "description", "{http://purl.org/rss/1.0/modules/content/}encoded")
    return [element.text or "" for element in root.iter(*tags)]


def test_no_script_handler_style_frame_or_bad_url_survives_anywhere(feeds: Path) -> None:
    outputs = sorted(p for p in feeds.rglob("*") if p.is_file())
    assert any(p.suffix == ".html" for p in (feeds / "articles").iterdir())
    for path in outputs:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".atom", ".rss", ".opml"):
            assert unsafe_xml(path.read_bytes()) == [], path.name
        if path.suffix == ".html":
            assert unsafe_html(text, page=True) == [], path.name
        if path.suffix in (".atom", ".rss", ".json"):
            for fragment in _unescaped_contents(path):
                assert unsafe_html(fragment) == [], (path.name, fragment[:200])
        for needle in ("<script", "javascript:", "vbscript:", "data:image", "onclick", "onerror", "<iframe"):
            assert needle not in text.lower(), (path.name, needle)
    # The hostile article's harmless parts are still there.
    europe = (feeds / "europe.atom").read_text(encoding="utf-8")
    assert "fine link" in europe and "Styled text about Brussels." in europe


def html_shape(fragment: str) -> tuple[str, list[tuple[str, str | None]]]:
    """Text and (tag, href) sequence: what a reader shows, whatever the serializer's `<img />` style."""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return root.text_content(), [(e.tag, e.get("href")) for e in root.iter() if isinstance(e.tag, str)]


def _by_id(entries: list) -> dict[str, object]:
    return {e.id: e for e in entries}


def test_feedparser_reads_the_same_entries_in_every_format(feeds: Path) -> None:
    for atom_path in files(feeds, "atom"):
        atom = feedparser.parse(atom_path.read_bytes())
        rss = feedparser.parse(atom_path.with_suffix(".rss").read_bytes())
        items = json.loads(atom_path.with_suffix(".json").read_bytes())["items"]
        assert not atom.bozo and not rss.bozo, (atom_path.name, atom.get("bozo_exception"), rss.get("bozo_exception"))
        assert atom.version == "atom10" and rss.version == "rss20"
        assert atom.feed.title == rss.feed.title == json.loads(atom_path.with_suffix(".json").read_bytes())["title"]
        assert [e.id for e in atom.entries] == [e.id for e in rss.entries] == [i["id"] for i in items]
        assert atom.entries, atom_path.name
        rss_entries = _by_id(rss.entries)
        for entry, item in zip(atom.entries, items):
            other = rss_entries[entry.id]
            assert entry.title == other.title == item["title"]
            assert entry.link == other.link == item["url"]
            assert entry.published_parsed == other.published_parsed
            assert entry.author == other.author == item["authors"][0]["name"]
            assert [t.term for t in entry.tags] == [t.term for t in other.tags] == item.get("tags", [])
            assert html_shape(entry.content[0].value) == html_shape(other.content[0].value) \
                == html_shape(item["content_html"])
            related = [l.href for l in entry.links if l.rel == "related"]
            assert related == [r["url"] for r in item["_aggregator"]["related"]]
            for url in related:
                assert url in item["content_html"]


def test_entries_carry_source_enclosure_and_related_links(feeds: Path) -> None:
    atom = feedparser.parse((feeds / "europe.atom").read_bytes())
    rss = parse_xml((feeds / "europe.rss").read_bytes())
    items = {i["url"]: i for i in json.loads((feeds / "europe.json").read_bytes())["items"]}
    remote = next(e for e in atom.entries if e.link == "https://example.org/news/eu-budget")
    assert remote.source.id == "https://example.org/feed.xml" and remote.source.title == "Example Wire"
    assert any(l.rel == "self" and l.href == "https://example.org/feed.xml" for l in remote.source.links)
    assert [l.href for l in remote.links if l.rel == "enclosure"] == ["https://example.org/img/budget.jpg"]
    assert next(l for l in remote.links if l.rel == "enclosure").type == "image/jpeg"
    # The site's own related title matches its cluster copy, which must not be offered.
    assert "https://copy.example/eu-budget" not in [l.href for l in remote.links]
    item = next(i for i in rss.iter("item") if i.findtext("link") == "https://example.org/news/eu-budget")
    assert item.find("source").get("url") == "https://example.org/feed.xml"
    assert item.find("source").text == "Example Wire"
    enclosure = item.find("enclosure")
    assert (enclosure.get("url"), enclosure.get("type"), enclosure.get("length")) == (
        "https://example.org/img/budget.jpg", "image/jpeg", "0")
    assert item.find("guid").get("isPermaLink") == "false"
    assert items["https://example.org/news/eu-budget"]["image"] == "https://example.org/img/budget.jpg"
    assert items["https://example.org/news/eu-budget"]["_aggregator"]["source"]["feed_url"] == \
        "https://example.org/feed.xml"


def test_markup_in_titles_is_text_not_markup(feeds: Path) -> None:
    title = '<script>alert("t")</script> Germany & France "agree" on Brussels rules'
    atom = feedparser.parse((feeds / "europe.atom").read_bytes())
    assert title in [e.title for e in atom.entries]
    page = (feeds / "articles" / "odd-title.html").read_text(encoding="utf-8")
    assert "<h1>&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt; Germany &amp; France" in page
    assert "<small>Odd &amp; Co &lt;Press&gt;" in page
    items = json.loads((feeds / "europe.json").read_bytes())["items"]
    assert title in [i["title"] for i in items]


def test_newsboat_subscribes_to_served_feeds(tmp_path: Path) -> None:
    """A real reader fetches every feed over HTTP and shows our titles and links."""
    served = tmp_path / "site"
    served.mkdir()
    with serve_folder(served) as base_url:
        config = make_config(tmp_path, base_url=base_url)
        config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, feeds_dir=served))
        with build_store(config) as store:
            publish(config, store)
        urls = [f"{base_url}{slug}.{fmt}" for slug in ("europe", "technology") for fmt in ("atom", "rss")]
        # newsboat keys items by guid across all its feeds, and one article is one entry in
        # every feed that shows it, so each feed gets a reader (a cache) of its own.
        shown = {}
        for number, url in enumerate(urls):
            shown.update(newsboat_read([url], tmp_path / f"newsboat{number}"))
    assert set(shown) == set(urls)
    for url, feed in shown.items():
        parsed = feedparser.parse((served / url.rsplit("/", 1)[1]).read_bytes())
        assert feed.title == parsed.feed.title
        assert feed.link == f"{base_url}index.html"
        expected = {(e.title, e.link, e.id) for e in parsed.entries}
        assert set(feed.items) == expected, url
        assert len(feed.items) == len(parsed.entries) > 0
    odd = [t for feed in shown.values() for t, _, _ in feed.items if "Germany & France" in t]
    assert odd and all('"agree"' in t for t in odd)
