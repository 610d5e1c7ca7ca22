"""Feeds from other projects' test suites, through our real pipeline, against feedparser.

The corpus (tests/conformance/<project>/) is files copied verbatim from the
published test suites of gofeed, ROME, the W3C Feed Validator, SimplePie and
feedparser; each project's SOURCE.md gives the repository, commit, licence
and paths. They test what nobody here thought of.

How it is read: every file is its own configured local source (a `path`
naming that one file), and pipeline.ingest_source stores each into one real
SQLite database in tmp_path, as `aggregator run` would. One source per file
keeps the counts fair: article ids are keyed by source and guid, and test
suites reuse guids such as http://example.com/1 across files, which within
one source would make one file's entry an update of another's. Duplicate
detection across sources only clusters copies; it keeps every one.

What is checked, per file:

- well-formed (XML that parses strictly and declares no entities; JSON that
  loads): the articles we store match the reference entries that have a
  title or content, in number and in titles, after the normalization we
  apply (normalize.html_to_text for titles; sanitize_html and
  clean_html_to_text for bodies). The reference is feedparser 6, given the
  file's bytes as they are; it does not read JSON Feed, so for JSON the
  reference is the `items` as the json module reads them.
- ill-formed: one clear line for the source (an error or a skipped file,
  never an exception), or a lenient parse, which is then compared with
  feedparser too: reading a feed the way feedparser recovers it is the
  promise. A file declaring XML entities counts as ill-formed with a clear
  error: we refuse those on purpose (XXE and entity expansion).

Differences we mean are in EXPECTED_DIFFERENCES, each with its reason and
the reading ours must then match (so the reason is checked); any other
difference fails. The fast path (feedparser-rs) must publish exactly what
feedparser does on every file it takes. The table of all files and the
totals are printed at the end of the run (conftest.py).
"""

from __future__ import annotations

import json
import re
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pytest
from lxml import etree

from aggregator import pipeline
from aggregator.config import parse_config
from aggregator.enrich.html_text import clean_html_to_text, html_to_text
from aggregator.enrich.sanitize import sanitize_html
from aggregator.ingest import feed, feed_fast
from aggregator.storage.store import Store
from .report import ROWS, Row

CORPUS = Path(__file__).parent
PROJECTS = sorted(p for p in CORPUS.iterdir() if p.is_dir() and (p / "SOURCE.md").exists())
FEED_SUFFIXES = {".xml", ".rss", ".rdf", ".atom", ".json"}
FILES = sorted(p for project in PROJECTS for p in project.rglob("*") if p.suffix in FEED_SUFFIXES)
NAMES = [p.relative_to(CORPUS).as_posix() for p in FILES]


# --- the reference readings ---


def well_formed(data: bytes, is_json: bool) -> bool:
    """Strict XML (no entity declarations, nothing fetched) or JSON that loads."""
    if is_json:
        try:
            json.loads(data)
        except ValueError:
            return False
        return True
    if re.search(rb"<!ENTITY", data.replace(b"\x00", b""), re.I):
        return False
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return False
    return True


def body_text(html: str) -> str:
    return clean_html_to_text(sanitize_html(html))


def feedparser_entries(data: bytes) -> list:
    import feedparser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # feedparser's own, about updated_parsed
        return feedparser.parse(data, sanitize_html=False).entries


def entry_title(entry) -> str | None | bool:
    """The entry's title, None when it has none but has content, False when it has neither."""
    title = html_to_text(entry.get("title", ""))
    bodies = [c.get("value", "") for c in entry.get("content", [])] + [entry.get("summary", "")]
    if title or any(body_text(b) for b in bodies):
        return title or None
    return False


def feedparser_titles(data: bytes) -> list[str | None]:
    """feedparser's entries with a title or content: each one's title, or None for an untitled one."""
    return [t for t in map(entry_title, feedparser_entries(data)) if t is not False]


def json_feed_titles(data: bytes) -> list[str | None] | None:
    """The items of a JSON Feed with a title or content, as the json module reads them."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    items = document.get("items") if isinstance(document, dict) else None
    titles = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        title = html_to_text(item["title"]) if isinstance(item.get("title"), str) else ""
        bodies = [item.get(k) for k in ("content_html", "content_text") if isinstance(item.get(k), str)]
        if title or any(body_text(b) for b in bodies):
            titles.append(title or None)
    return titles


# --- differences we mean: each names the reading that ours must match instead ---


@dataclass(frozen=True)
class Expected:
    """A file where we store something else than feedparser, on purpose.

    `reading` reads the file the way the reason says we do, with feedparser;
    our articles must match that, so a reason is checked, not only stated.
    """

    reason: str
    reading: Callable[[bytes], list[str | None]]


def one_per_id(data: bytes) -> list[str | None]:
    """feedparser's entries, only the first of each id (guid or Atom id, else link)."""
    kept, seen = [], set()
    for entry in feedparser_entries(data):
        title, key = entry_title(entry), entry.get("id") or entry.get("link")
        if title is not False and not (key and key in seen):
            kept.append(title)
            seen.add(key)
    return kept


def decoded_as(encoding: str) -> Callable[[bytes], list[str | None]]:
    """feedparser's reading of the file once decoded from `encoding` (re-encoded as UTF-8)."""
    return lambda data: feedparser_titles(data.decode(encoding).encode("utf-8"))


SAME_ID = ("entries share an id (guid or Atom id): one article, the first, as readers that key items "
           "by id show one (feedparser lists each)", one_per_id)
UNDECLARED = ("legacy encoding with no declaration: encoding.py recognises it; feedparser without chardet "
              "reads windows-1252 and stores mojibake")
NO_BOM_UTF16 = ("UTF-16 with neither byte-order mark nor declaration (not well-formed): encoding.py "
                "recognises it; feedparser reads it as UTF-8 and finds nothing")
EXPECTED_DIFFERENCES: dict[str, Expected] = {
    "feedvalidator/testcases/atom/4.1.1/duplicate-entries.xml": Expected(*SAME_ID),
    "feedvalidator/testcases/atom/4.1.1/duplicate-entries-all.xml": Expected(*SAME_ID),
    "feedvalidator/testcases/rss20/element-channel-item-guid/guid_duplicate_value.xml": Expected(*SAME_ID),
    "feedvalidator/testcases/rss20/element-channel-item-guid/guid_duplicate_value_cdata.xml": Expected(*SAME_ID),
    "rome/rome/src/test/resources/CDATATestFeed.xml": Expected(*SAME_ID),
    # A real FeedBurner feed: four stories, one guid and one link between them.
    "rome/rome/src/test/resources/issue137-rss.xml": Expected(*SAME_ID),
    "feedparser/tests/illformed/chardet/eucjp.xml": Expected(UNDECLARED, decoded_as("euc-jp")),
    "feedparser/tests/illformed/chardet/euckr.xml": Expected(UNDECLARED, decoded_as("euc-kr")),
    "feedparser/tests/illformed/chardet/koi8r.xml": Expected(UNDECLARED, decoded_as("koi8-r")),
    "feedparser/tests/illformed/chardet/shiftjis.xml": Expected(UNDECLARED, decoded_as("shift_jis")),
    "simplepie/tests/data/feed-utf16be.xml": Expected(NO_BOM_UTF16, decoded_as("utf-16-be")),
    "simplepie/tests/data/feed-utf16le.xml": Expected(NO_BOM_UTF16, decoded_as("utf-16-le")),
}


# --- our reading: the real pipeline, one source per file ---


@dataclass
class Outcome:
    titles: list[str]
    message: str  # the source's error or skipped reasons, "" when it stored articles cleanly
    crash: str | None = None  # a traceback: what must never happen


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    folder = tmp_path_factory.mktemp("conformance")
    sources = [{"name": name, "path": str(path)} for name, path in zip(NAMES, FILES)]
    config = parse_config({"storage": {"database": "corpus.db"}, "sources": sources}, folder / "config.toml")
    rules = pipeline.topic_rules(config)
    outcomes = {}
    with Store(config.storage.database) as store:
        for source in config.sources:
            try:
                report = pipeline.ingest_source(config, store, source, rules)
            except Exception:  # noqa: BLE001 - recorded, and fails that file's test
                outcomes[source.name] = Outcome([], "", crash=traceback.format_exc())
                continue
            message = "; ".join([report.error or ""] + [s.reason for s in report.skipped]).strip("; ")
            outcomes[source.name] = Outcome([a.title for a in store.articles(source=source.name)], message)
    return outcomes


def matches(reference: list[str | None], ours: list[str]) -> bool:
    """Same number of articles, and every titled reference entry's title among ours (untitled
    entries get a title made from their text, which is ours to choose)."""
    remaining = list(ours)
    for title in (t for t in reference if t):
        if title not in remaining:
            return False
        remaining.remove(title)
    return len(reference) == len(ours)


def is_clear(message: str) -> bool:
    return bool(message) and "\n" not in message and "Traceback" not in message


ACCEPTED = {"match", "expected difference", "clear error", "lenient, match", "lenient, expected difference"}


@pytest.mark.parametrize("name", NAMES)
def test_file_reads_as_the_reference_does(name: str, ingested: dict[str, Outcome]) -> None:
    path = CORPUS / name
    data = path.read_bytes()
    outcome = ingested[name]
    assert outcome.crash is None, outcome.crash
    formed = well_formed(data, path.suffix == ".json")
    reference = json_feed_titles(data) if path.suffix == ".json" else feedparser_titles(data)
    result = judged(name, data, formed, reference, outcome)
    ROWS.append(Row(name, formed, None if reference is None else len(reference), len(outcome.titles), result))
    assert result in ACCEPTED, f"{result}; reference {reference}, ours {outcome.titles}, message {outcome.message!r}"


def judged(name: str, data: bytes, formed: bool, reference: list[str | None] | None, outcome: Outcome) -> str:
    """The file's outcome, in the table's words."""
    if not formed and not outcome.titles:
        return "clear error" if is_clear(outcome.message) else "unclear error"
    prefix = "" if formed else "lenient, "
    expected = EXPECTED_DIFFERENCES.get(name)
    if reference is not None and matches(reference, outcome.titles):
        return prefix + ("listed as a difference, but matches: drop it from the list" if expected else "match")
    if expected and matches(expected.reading(data), outcome.titles):
        return prefix + "expected difference"
    return prefix + "differs"


def test_every_expected_difference_names_a_corpus_file() -> None:
    assert set(EXPECTED_DIFFERENCES) <= set(NAMES)


def test_the_corpus_is_what_its_records_say() -> None:
    """At least 150 files from at least three projects, each listed in its project's SOURCE.md."""
    assert len(FILES) >= 150 and len({n.split("/", 1)[0] for n in NAMES}) >= 3
    for project in PROJECTS:
        record = (project / "SOURCE.md").read_text(encoding="utf-8")
        assert any((project / name).is_file() for name in ("LICENSE", "LICENSE.txt")), project.name
        for path in (p for p in FILES if project in p.parents):
            assert path.relative_to(project).as_posix() in record, path


def published(data: bytes) -> list[dict]:
    result = feed.parse_feed(data, source="s")
    return [asdict(a) for a in result.articles] + ([{"error": result.error}] if result.error else [])


XML_NAMES = [n for n in NAMES if not n.endswith(".json")]


def test_the_fast_path_is_taken_on_plain_feeds() -> None:
    """Its guard (ingest/feed_fast.py) must leave it the plain feeds, or the test below proves nothing."""
    taken = [n for n in XML_NAMES if feed_fast.parse_if_plain((CORPUS / n).read_bytes(), None) is not None]
    assert len(taken) >= 30, taken  # fewer means the guard shuts the fast path out of plain feeds


@pytest.mark.parametrize("name", XML_NAMES)
def test_the_fast_path_publishes_what_feedparser_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """feedparser-rs is only trusted where it agrees with feedparser; on this corpus it must, wherever it runs."""
    from test_feed_parsers import canonical_html

    data = (CORPUS / name).read_bytes()
    if feed_fast.parse_if_plain(data, None) is None:
        return
    fast = [{**a, "content_html": canonical_html(a.get("content_html", ""))} for a in published(data)]
    monkeypatch.setattr(feed_fast, "parse_if_plain", lambda data, content_type: None)
    reference = [{**a, "content_html": canonical_html(a.get("content_html", ""))} for a in published(data)]
    assert fast == reference
