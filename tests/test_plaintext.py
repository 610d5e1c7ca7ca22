"""The plain-text article format: fixtures next to their expected results."""

from __future__ import annotations

import json

import pytest

from aggregator.ingest.encoding import decode_text
from aggregator.ingest.plaintext import NotAnArticle, parse_plaintext, split_categories

from helpers.files import FIXTURES, SAMPLES

KNOWN = ("Middle East", "USA", "World", "Europe", "EU", "UK", "Economy", "Business",
         "Technology", "AI", "Climate", "Environment", "Science", "Sport", "Politics", "Health")
CASES = sorted(p.with_suffix("").name for p in (FIXTURES / "plaintext").glob("*.txt"))


@pytest.mark.parametrize("name", CASES)
def test_fixture_parses_to_expected_fields(name: str) -> None:
    folder = FIXTURES / "plaintext"
    text = decode_text((folder / f"{name}.txt").read_bytes())
    expected = json.loads((folder / f"{name}.expected.json").read_text(encoding="utf-8"))
    article = parse_plaintext(text, KNOWN)
    assert article.site == expected["site"]
    assert article.categories == expected["categories"]
    assert article.title == expected["title"]
    assert article.captions == expected["captions"]
    assert article.paragraphs == expected["paragraphs"]
    assert [{"title": r.title, "author": r.author} for r in article.site_related] == expected["site_related"]


def test_fixture_cases_exist() -> None:
    assert len(CASES) >= 3


@pytest.mark.parametrize("run, expected", [
    ("Middle EastUSAWorld", ["Middle East", "USA", "World"]),
    ("UKPoliticsEurope", ["UK", "Politics", "Europe"]),
    ("TechnologyAIBusiness", ["Technology", "AI", "Business"]),
    ("EUEconomy", ["EU", "Economy"]),
    ("ClimateScienceWorld", ["Climate", "Science", "World"]),
    ("WorldMiddle East", ["World", "Middle East"]),
    ("World", ["World"]),
    ("", []),
    ("Politics | Europe", ["Politics", "Europe"]),
])
def test_split_categories(run: str, expected: list[str]) -> None:
    assert split_categories(run, KNOWN) == expected


def test_known_categories_resolve_ambiguous_runs() -> None:
    assert split_categories("ScienceNewsAsia Pacific", ()) == ["Science", "News", "Asia Pacific"]
    # An unknown multi-word name is split on case changes only.
    assert split_categories("Arts And CultureBooks", ()) == ["Arts And Culture", "Books"]
    # A config-listed name beats the case heuristic.
    assert split_categories("GreenTechEnergy", ("GreenTech",)) == ["GreenTech", "Energy"]


def test_captions_boilerplate_and_related_posts_are_not_body() -> None:
    text = "\n".join([
        "Harbour Times", "Middle EastWorld", "",
        "Ceasefire talks resume in Cairo", "",
        "a man walks past a damaged building in gaza city",
        "FILE PHOTO: People gather in Gaza City, January 5, 2024", "",
        "Talks resumed on Sunday, officials said.", "",
        "Mediators hope for a six\u00a0week pause.", "",
        "Follow the Harbour Times on Google News", "",
        "Related Posts", "",
        "Some other story", "", "Reuters News Service", "",
        "A second story", "", "AP Staff",
    ])
    article = parse_plaintext(text)
    assert article.captions == ["a man walks past a damaged building in gaza city",
                                "FILE PHOTO: People gather in Gaza City, January 5, 2024"]
    assert article.paragraphs == ["Talks resumed on Sunday, officials said.",
                                  "Mediators hope for a six\u00a0week pause."]
    assert [(r.title, r.author) for r in article.site_related] == [
        ("Some other story", "Reuters News Service"), ("A second story", "AP Staff")]


def test_windows_line_endings_and_missing_final_newline() -> None:
    text = "Site\r\nWorld\r\n\r\nTitle here\r\n\r\nOne paragraph of body text.\r\n\r\nRelated Posts\r\n\r\nOther\r\n\r\nAuthor"
    article = parse_plaintext(text)
    assert article.title == "Title here"
    assert article.paragraphs == ["One paragraph of body text."]
    assert article.site_related[0].author == "Author"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   \n\n  ", "empty"),
    ("only one line", "no title"),
    ("Site\nWorld\n\nTitle only", "no body"),
])
def test_not_an_article(text: str, reason: str) -> None:
    with pytest.raises(NotAnArticle, match=reason):
        parse_plaintext(text)


def test_every_bundled_sample_parses_with_body_and_categories() -> None:
    files = sorted(SAMPLES.glob("*.txt"))
    assert len(files) >= 30
    for path in files:
        article = parse_plaintext(decode_text(path.read_bytes()), KNOWN)
        assert article.site and article.title and article.paragraphs, path.name
        assert article.categories, path.name
        assert not any(p.startswith(("Follow the", "Sign up")) for p in article.paragraphs), path.name
        assert not any(p == "Related Posts" for p in article.paragraphs), path.name


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16", "utf-8-sig"])
def test_non_utf8_encodings_decode(encoding: str) -> None:
    text = "Site\nEurope\n\nZ\u00fcrich caf\u00e9 reopens\n\nJos\u00e9 said the caf\u00e9 in Z\u00fcrich would reopen.\n"
    assert decode_text(text.encode(encoding)) .replace("\ufeff", "") == text
