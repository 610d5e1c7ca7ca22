"""clean_html_to_text (a regex over nh3's output) reads exactly what html_to_text (html.parser) reads."""

from __future__ import annotations

import random
from pathlib import Path

import feedparser
import pytest

from aggregator.enrich.html_text import clean_html_to_text, html_to_text
from aggregator.enrich.sanitize import sanitize_html

FEEDS = Path(__file__).parent / "feeds"

PIECES = [
    "<p>", "</p>", "<br>", "<br/>", "<P CLASS='x'>", "<div>", "</div>", "<b>", "</b>", "<i>", "<li>", "<ul>",
    "</ul>", '<a href="https://example.com/a?b=1&amp;c=2" title="x > y">', "</a>", "<h2>", "</h2>",
    "<blockquote>", "<img src='https://example.com/i.png' alt=\"a 'quoted' > alt\">", "<script>alert(1)</script>",
    "<style>p{}</style>", "<!-- a comment -->", "<![CDATA[ raw ]]>", "<?php echo 1 ?>", "<svg><text>t</text></svg>",
    "<iframe src='https://x'></iframe>", "<noscript>ns</noscript>", "<template>tp</template>", "<table><tr><td>",
    "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&am", "p;", "&#x2019;", "&bogus;",
    "a < b", "x>y", "<", ">", "<3", "< p>", "</ p>", "<p", "text", "Zürich", " ", "\n", "\n\n", "\t", "\x0b",
    "\u00a0", "\u2003", "Iraq\u2019s", "e\u0301", "\x9b", "\x00",
]


def fragments() -> list[str]:
    rng = random.Random(20261125)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 25))) for _ in range(3000)]


@pytest.mark.parametrize("sanitized", [False, True])
def test_random_fragments_read_the_same(sanitized: bool) -> None:
    for fragment in fragments():
        html = sanitize_html(fragment, "https://example.com/") if sanitized else fragment
        assert clean_html_to_text(html) == html_to_text(html), repr(html)


def test_every_fixture_feed_entry_reads_the_same() -> None:
    checked = 0
    for path in sorted(FEEDS.rglob("*.xml")) + sorted(FEEDS.rglob("*.rdf")):
        for entry in feedparser.parse(path.read_bytes()).entries:
            for value in [c.get("value", "") for c in entry.get("content", [])] + [entry.get("summary", "")]:
                html = sanitize_html(value, "https://example.com/")
                assert clean_html_to_text(html) == html_to_text(html), (path.name, html)
                checked += 1
    assert checked > 25


def _clean_text_reference(text: str) -> str:
    """clean_text as first written: NFC always, control characters out, every blank run one space."""
    import re
    import unicodedata

    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", "", unicodedata.normalize("NFC", text))
    return re.sub(r"[ \t]+", " ", text).strip()


def test_clean_text_shortcuts_give_the_reference_text() -> None:
    """ASCII skips NFC, and text without double spaces or tabs skips the blank-run search."""
    from aggregator.enrich.text import clean_text

    rng = random.Random(11)
    pieces = ["a", "B", " ", "  ", "\t", " \t ", "\n", "\x0b", "\x00", "\x9b", "e\u0301", "\u00e9", "\u00a0", "x"]
    for _ in range(3000):
        sample = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert clean_text(sample) == _clean_text_reference(sample), repr(sample)
