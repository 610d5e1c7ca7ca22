"""canonical_url: every normalization that makes two links to one page one key."""

from __future__ import annotations

import pytest

from aggregator.normalize import canonical_url

BASE = "https://example.com/world/story-123"


@pytest.mark.parametrize("variant", [
    "HTTPS://EXAMPLE.COM/world/story-123",                       # scheme and host case
    "https://Example.Com./world/story-123",                      # trailing dot in host
    "https://example.com:443/world/story-123",                   # default https port
    "https://example.com/world/story-123/",                      # trailing slash
    "https://example.com//world//story-123",                     # doubled slashes
    "https://example.com/world/story-123#comments",              # fragment
    "https://example.com/world/story-123?utm_source=tw&utm_medium=social&utm_campaign=x",
    "https://example.com/world/story-123?fbclid=IwAR0abc",
    "https://example.com/world/story-123?gclid=Cj0KCQ",
    "https://example.com/world/story-123?msclkid=1&mc_cid=2&mc_eid=3&igshid=4",
    "https://example.com/world/story-123/amp",                   # AMP suffix
    "https://example.com/world/story-123/amp/",                  # AMP suffix with slash
    "https://example.com/world/story-123.amp",                   # .amp suffix
    "https://example.com/amp/world/story-123",                   # /amp/ prefix
    "https://amp.example.com/world/story-123",                   # amp. host
    "https://example.com/world/story-123?amp=1",                 # ?amp=1
    "https://example.com/world/story-123?outputType=amp",        # ?outputType=amp
    "https://example-com.cdn.ampproject.org/c/s/example.com/world/story-123",  # Google AMP cache
])
def test_variants_share_one_canonical_url(variant: str) -> None:
    assert canonical_url(variant) == BASE


def test_default_http_port_dropped_but_other_ports_kept() -> None:
    assert canonical_url("http://example.com:80/a") == "http://example.com/a"
    assert canonical_url("http://example.com:8080/a") == "http://example.com:8080/a"


def test_meaningful_query_kept_and_sorted() -> None:
    assert canonical_url("https://example.com/a?b=2&utm_source=x&a=1") == "https://example.com/a?a=1&b=2"
    assert canonical_url("https://example.com/a?id=7") != canonical_url("https://example.com/a?id=8")


def test_amp_html_variant() -> None:
    assert canonical_url("https://example.com/a/story.amp.html") == "https://example.com/a/story.html"


def test_path_case_and_different_pages_stay_distinct() -> None:
    assert canonical_url("https://example.com/A") != canonical_url("https://example.com/a")
    assert canonical_url("https://example.com/ample") == "https://example.com/ample"  # not an AMP suffix
    assert canonical_url("https://example.com/camp") == "https://example.com/camp"


@pytest.mark.parametrize("bad", [None, "", "javascript:alert(1)", "ftp://example.com/a", "/relative/path",
                                 "http://example.com:99999/a", "HTTP://.", "http://..."])
def test_unusable_urls_have_no_canonical_form(bad: str | None) -> None:
    assert canonical_url(bad) is None


def test_root_stays_a_slash() -> None:
    assert canonical_url("https://Example.com") == "https://example.com/"
    assert canonical_url("https://example.com/?utm_source=x") == "https://example.com/"
