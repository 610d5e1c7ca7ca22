"""canonical_url: every normalization that makes two links to one page one key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from aggregator.enrich.urls import canonical_url

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


# --- one key per page, whatever the spelling (w3lib under our rules; issue 24) ---

EQUIVALENT = [
    # percent-encoding vs raw Unicode, in the path and in the query
    ("https://example.com/caf%C3%A9", "https://example.com/café"),
    ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),            # escape case
    ("https://example.com/%E6%96%B0%E9%97%BB/1", "https://example.com/新闻/1"),
    ("https://example.com/s?q=caf%C3%A9", "https://example.com/s?q=café"),
    ("https://example.com/s?q=cr%C3%A8me%20br%C3%BBl%C3%A9e", "https://example.com/s?q=crème+brûlée"),
    ("https://example.com/s?tag=%E2%82%AC", "https://example.com/s?tag=€"),
    # unreserved characters written as escapes
    ("https://example.com/%7Euser/story", "https://example.com/~user/story"),
    ("https://example.com/%7euser/story", "https://example.com/~user/story"),
    ("https://example.com/%41%42c-%31%32%33", "https://example.com/ABc-123"),
    ("https://example.com/s?who=%7Euser", "https://example.com/s?who=~user"),
    # IDNA vs Unicode host, and host case (ASCII and Unicode)
    ("https://xn--caf-dma.example/a", "https://café.example/a"),
    ("https://XN--CAF-DMA.EXAMPLE/a", "https://CAFÉ.example/a"),
    ("https://xn--strae-oqa.de/a", "https://straße.de/a"),                       # IDNA 2008, as browsers
    ("https://xn--fiqs8s.example/a", "https://中国.example/a"),
    ("https://News.Example.COM/a", "https://news.example.com/a"),
    ("https://ｅｘａｍｐｌｅ.com/a", "https://example.com/a"),                     # full-width letters
    ("https://example。com/a", "https://example.com/a"),                          # ideographic full stop
    # default ports, trailing dots
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com./a", "https://example.com/a"),
    ("https://café.example.:443/a", "https://xn--caf-dma.example/a"),
    # dot segments, query order, fragments, a login in the URL
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("https://example.com/a/%2E%2E/c", "https://example.com/c"),
    ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a?x=2&x=1", "https://example.com/a?x=1&x=2"),
    ("https://example.com/a#caf%C3%A9", "https://example.com/a"),
    ("https://user:secret@example.com/a", "https://example.com/a"),
    # our rules still apply to what w3lib gives: tracking, AMP, slashes
    ("https://example.com/caf%C3%A9/amp/?utm_source=x", "https://example.com/café"),
    ("https://amp.café.example/a", "https://xn--caf-dma.example/a"),
    ("https://example.com/s?utm%5Fsource=x&q=1", "https://example.com/s?q=1"),   # an escaped tracking name
    ("https://example.com//a//b/", "https://example.com/a/b"),
    ("https://example-com.cdn.ampproject.org/c/s/example.com/caf%C3%A9", "https://example.com/café"),
    ("https://[2001:db8:0:0::1]/a", "https://[2001:db8::1]/a"),
]


@pytest.mark.parametrize(("one", "other"), EQUIVALENT)
def test_spellings_of_one_page_share_one_key(one: str, other: str) -> None:
    key = canonical_url(one)
    assert key is not None and key == canonical_url(other)
    assert key.isascii() and canonical_url(key) == key  # one ASCII spelling, its own canonical form


DIFFERENT = [
    ("https://example.com/a", "https://example.com/b"),                           # different paths
    ("https://example.com/news/a", "https://example.com/a"),
    ("https://example.com/A", "https://example.com/a"),                           # path case matters
    ("https://example.com/a%2Fb", "https://example.com/a/b"),                     # an escaped "/" is no "/"
    ("https://example.com/a?b", "https://example.com/a%3Fb"),                     # nor an escaped "?"
    ("https://example.com/caf%E9", "https://example.com/caf%C3%A9"),              # Latin-1 bytes, not UTF-8
    ("https://example.com/a?id=1", "https://example.com/a?id=2"),                 # significant parameters
    ("https://example.com/a?id=1", "https://example.com/a"),
    ("https://example.com/a?page=2", "https://example.com/a?p=2"),
    ("https://example.com/a?q=a%26b", "https://example.com/a?q=a&b="),            # an escaped "&" is data
    ("https://example.com/a?q=a+b", "https://example.com/a?q=a%2Bb"),             # "+" is a space; "%2B" a plus
    ("https://example.com/a", "https://example.org/a"),                           # different hosts
    ("https://news.example.com/a", "https://example.com/a"),
    ("https://straße.de/a", "https://strasse.de/a"),                              # two domains (IDNA 2008)
    ("https://café.example/a", "https://cafe.example/a"),
    ("https://example.com:8443/a", "https://example.com/a"),                      # a port that is not the default
    ("http://example.com:443/a", "http://example.com/a"),
    ("https://www.example.com/a", "https://example.com/a"),                       # kept apart, as before
    ("http://example.com/a", "https://example.com/a"),                            # kept apart, as before
]


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_pages_keep_different_keys(one: str, other: str) -> None:
    assert canonical_url(one) is not None and canonical_url(other) is not None
    assert canonical_url(one) != canonical_url(other)


def test_a_host_no_browser_would_look_up_has_no_key() -> None:
    assert canonical_url("https://example.com\u00af/a") is None  # maps to a space under UTS 46
    assert canonical_url("https://my_h\u00f6st.example/a") == "https://xn--my_hst-zxa.example/a"  # browsers take it


