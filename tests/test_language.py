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
