"""Complete but ill-formed feeds are read as feedparser recovers them; only a cut-off one is refused.

Real feeds carry bare `&`, HTML entities XML does not define, CDATA sections
left open, declared encodings that lie, and trailing comments; the readers
people like show them anyway. What a reader cannot know is the rest of a
document cut before its root element closes, so that alone is an error (and
the source is retried). Each case here is one such document, whole or cut.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aggregator.pipeline import store_results
from aggregator.ingest.feed import parse_feed
from aggregator.ingest.local import ParseOptions, read_local_source
from aggregator.storage.store import Store
from aggregator.enrich.topics import TopicRules

CUT_OFF = "the feed is cut off before its end (truncated download?); nothing from it was stored, it will be retried"
ITEM = b"<item><title>One</title><link>https://x.example/1</link><description>Body</description></item>"


def rss(items: bytes = ITEM, title: bytes = b"Site", tail: bytes = b"") -> bytes:
    return (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>' + title
            + b"</title><link>https://x.example/</link>" + items + b"</channel></rss>" + tail)


WHOLE = {
    "bare ampersand": rss(title=b"Tom & Jerry"),
    "undefined entity": rss(title=b"Caf&eacute;&nbsp;Society"),
    "CDATA left open": rss(ITEM.replace(b"Body", b"<![CDATA[Body <b>bold</b>")),
    "lying encoding": rss(title="Café".encode("latin-1")),
    "comment after the root": rss(title=b"A & B", tail=b"\n<!-- generated in 0.02s -->\n"),
    "processing instruction after the root": rss(title=b"A & B", tail=b"<?cache hit?>\n\n"),
    "stray text after the root": rss(title=b"A & B", tail=b"\n0\n"),
    "upper-case end tag": rss(title=b"A & B").replace(b"</rss>", b"</RSS>"),
    "namespaced RDF root": (b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
                            b' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://x.example/"><title>A & B'
                            b'</title><link>https://x.example/</link></channel><item rdf:about="https://x.example/1">'
                            b"<title>One</title><link>https://x.example/1</link></item></rdf:RDF>"),
    "prefixed Atom root": (b'<?xml version="1.0"?>\n<!-- a comment before the root -->\n'
                           b'<a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>A & B</a:title>'
                           b"<a:entry><a:title>One</a:title><a:id>urn:x:1</a:id>"
                           b'<a:link href="https://x.example/1"/></a:entry></a:feed>'),
    "junk before the root": b"<b>Warning</b>: Undefined variable $x on line 3<br />\n" + rss(title=b"A & B"),
    "UTF-16 with a bare ampersand": rss(title=b"A & B").replace(b'encoding="utf-8"', b'encoding="utf-16"')
                                                       .decode("ascii").encode("utf-16"),
}

CUT = {
    "inside an element's text": rss()[:rss().index(b"Body") + 2],
    "inside a tag": rss()[:rss().index(b"</description>") + 5],
    "after the channel closes": rss()[:rss().index(b"</rss>")],
    "inside an open CDATA section": rss(ITEM.replace(b"Body", b"<![CDATA[Body <b>bold</b>"))[:-30],
    "an end tag of the root inside CDATA, then cut": rss(ITEM.replace(b"Body", b"<![CDATA[ends with </rss>]]>"))[
        :rss(ITEM.replace(b"Body", b"<![CDATA[ends with </rss>]]>")).index(b"]]>") + 3],
    "inside a trailing comment's absence": rss().replace(b"</channel></rss>", b"</channel><!-- cut"),
    "prefixed Atom root": WHOLE["prefixed Atom root"][:-len(b"</a:feed>")],
}


@pytest.mark.parametrize("name", WHOLE)
def test_complete_ill_formed_feed_is_read_with_one_warning(name: str) -> None:
    result = parse_feed(WHOLE[name], source="s")
    assert result.error is None, name
    assert [a.title for a in result.articles] == ["One"]
    assert len(result.warnings) == 1 and result.warnings[0].startswith("read leniently: ")


def test_the_lenient_read_keeps_what_feedparser_recovers() -> None:
    result = parse_feed(WHOLE["undefined entity"], source="s")
    assert result.articles[0].site == "Caf\u00e9\u00a0Society"
    assert parse_feed(WHOLE["lying encoding"], source="s").articles[0].site == "Caf\u00e9"
    assert "declared as utf-8, but parsed as windows-1252" in parse_feed(WHOLE["lying encoding"],
                                                                         source="s").warnings[0]


@pytest.mark.parametrize("name", CUT)
def test_document_cut_before_its_root_closes_is_refused(name: str) -> None:
    result = parse_feed(CUT[name], source="s")
    assert (result.error, result.articles) == (CUT_OFF, []), name


def test_a_well_formed_feed_gives_no_warning_whichever_parser_reads_it() -> None:
    for data in (rss(), rss(tail=b"\n<!-- done -->\n")):
        result = parse_feed(data, source="s", content_type="application/rss+xml")
        assert result.error is None and result.warnings == [] and len(result.articles) == 1


def test_a_self_closing_root_is_whole() -> None:
    assert parse_feed(b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>', source="s").error is None


def test_served_as_html_is_read_and_said_once() -> None:
    result = parse_feed(rss(), source="s", content_type="text/html; charset=utf-8")
    assert [a.title for a in result.articles] == ["One"]
    assert result.warnings == ["read leniently: served as text/html, which is not an XML type; "
                               "the feed's publisher can fix this"]


def test_a_local_ill_formed_feed_file_is_stored_and_logged_naming_source_and_file(tmp_path: Path, caplog) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(WHOLE["undefined entity"])
    [result] = read_local_source(path, "Saved feeds", ParseOptions(), 1 << 20)
    assert [a.title for a in result.articles] == ["One"] and result.skipped == []
    with caplog.at_level(logging.WARNING, logger="aggregator"), Store(tmp_path / "news.db") as store:
        report = store_results(store, "Saved feeds", [result], TopicRules(()))  # where every warning is logged
    assert report.new == 1
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"Saved feeds: {path}: read leniently: not well-formed XML at line 2 (undefined entity)")
