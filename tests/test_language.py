"""Article language: declared codes normalised, undeclared text detected by CLD2, unsure means unknown."""

from __future__ import annotations

import pytest

from aggregator.enrich.language import article_language, declared_language, detected_language


@pytest.mark.parametrize("value, code", [("en-GB", "en"), ("EN", "en"), ("de_DE", "de"), (" fr ", "fr"),
                                         ("", ""), (None, ""), ("english", ""), ("x-klingon", ""), ("123", "")])
def test_declared_codes_are_reduced_to_iso_639_1(value, code):
    assert declared_language(value) == code


@pytest.mark.parametrize("title, text, code", [
    ("Central bank raises rates", "The central bank raised interest rates again on Tuesday as inflation "
                                  "stayed higher than expected across the euro area.", "en"),
    ("Zentralbank erhöht die Zinsen", "Die Zentralbank hat die Zinsen am Dienstag erneut angehoben, weil die "
                                      "Inflation höher blieb als erwartet.", "de"),
    ("La banque centrale relève ses taux", "La banque centrale a relevé ses taux mardi, l'inflation restant plus "
                                           "élevée que prévu dans la zone euro.", "fr"),
    ("Центральный банк повысил ставку", "Центральный банк во вторник снова повысил процентную ставку, так как "
                                        "инфляция оставалась выше ожиданий.", "ru"),
])
def test_undeclared_text_is_detected(title, text, code):
    assert detected_language(title, text) == code
    assert article_language(None, title, text) == code


def test_a_declaration_wins_and_too_little_text_is_unknown():
    assert article_language("de-AT", "Central bank raises rates", "In English, actually.") == "de"
    assert detected_language("ok", "") == "" and detected_language("", "") == ""
    assert detected_language("\ud800 broken", "surrogates \udfff") in ("", "en")  # never raises


def test_language_flows_from_source_to_json_feeds_and_topic_rules(tmp_path):
    """Declared (RSS <language>), detected (Markdown), stored, in --json, xml:lang, JSON Feed, topic rule."""
    import json

    import feedparser
    from click.testing import CliRunner
    from lxml import etree

    from aggregator.app.cli import cli

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "zinsen.md").write_text("---\ntitle: Zentralbank erhöht die Zinsen erneut\n---\n\nDie Zentralbank "
                                        "hat die Zinsen am Dienstag erneut angehoben, weil die Inflation höher "
                                        "blieb als erwartet. Die Wirtschaft reagierte gelassen.\n", encoding="utf-8")
    (articles / "rates.md").write_text("---\ntitle: Central bank raises interest rates again\n---\n\nThe central bank "
                                       "raised interest rates again on Tuesday as inflation stayed higher than "
                                       "expected. Markets took the news calmly.\n", encoding="utf-8")
    (articles / "wire.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link>'
        "<description>d</description><language>de-DE</language><item><title>Bank lifts rates</title>"
        "<link>https://wire.example/1</link><description>Declared German, written in English: the declaration "
        "wins over detection.</description></item></channel></rss>", encoding="utf-8")
    (tmp_path / "config.toml").write_text(
        '[storage]\ndatabase = "data.db"\n\n[[sources]]\nname = "Desk"\npath = "articles"\n\n'
        '[topics.rates]\ntitle = "Rates"\nkeywords = ["zinsen", "interest rates", "rates"]\n\n'
        '[topics.zinsen]\ntitle = "Zinsen"\nkeywords = ["zinsen", "interest rates", "rates"]\nlanguages = ["de"]\n',
        encoding="utf-8")
    run = CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "run", "--once"])
    assert run.exit_code == 0, run.output
    listed = CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "articles", "--json"]).output
    languages = {json.loads(line)["title"]: json.loads(line)["language"] for line in listed.splitlines()}
    assert languages == {"Zentralbank erhöht die Zinsen erneut": "de", "Central bank raises interest rates again": "en",
                         "Bank lifts rates": "de"}
    feeds = tmp_path / "feeds"
    german = {e.title for e in feedparser.parse(str(feeds / "zinsen.atom")).entries}
    assert german == {"Zentralbank erhöht die Zinsen erneut", "Bank lifts rates"}
    assert len(feedparser.parse(str(feeds / "rates.atom")).entries) == 3
    atom = etree.parse(str(feeds / "rates.atom")).getroot()
    lang = {e.findtext("{http://www.w3.org/2005/Atom}title"): e.get("{http://www.w3.org/XML/1998/namespace}lang")
            for e in atom.iter("{http://www.w3.org/2005/Atom}entry")}
    assert lang == languages
    items = json.loads((feeds / "rates.json").read_text())["items"]
    assert {i["title"]: i["language"] for i in items} == languages


def test_topic_languages_must_be_iso_codes(tmp_path):
    from click.testing import CliRunner

    from aggregator.app.cli import cli

    (tmp_path / "a").mkdir()
    (tmp_path / "config.toml").write_text('[[sources]]\nname = "A"\npath = "a"\n\n[topics.x]\ntitle = "X"\n'
                                          'languages = ["english"]\n', encoding="utf-8")
    checked = CliRunner().invoke(cli, ["-c", str(tmp_path / "config.toml"), "check"])
    assert checked.exit_code == 78 and "topics.x.languages" in checked.output and "ISO 639-1" in checked.output
