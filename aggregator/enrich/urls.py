"""Links from untrusted sources: safe to publish, and one key per page.

`safe_url` admits only absolute http(s) URLs, so no `javascript:` link
reaches a page or feed. `canonical_url` gives every page one spelling, so
the same story linked two ways is one dedup key. The URL syntax standards
(w3lib's canonicalization, IDNA host names) are url_syntax.py's, loaded on
the first key computed: an unchanged refresh never computes one.
"""

from __future__ import annotations

import html
import re
from urllib.parse import SplitResult, unquote_plus, urljoin, urlsplit

from aggregator import enrich

SAFE_SCHEMES = {"http", "https"}


def safe_url(url: str | None, base: str | None = None) -> str | None:
    """The URL if it is absolute http(s) after resolving against `base`, else None.

    Control characters and whitespace are removed first: browsers ignore them
    inside a scheme, which is how `java\\tscript:` tricks get through naive checks.
    Anything but a string (a JSON object where a feed should have a URL) is no
    URL: input decides these types, so they are answered, never raised on.
    """
    checked = _checked_url(url, base)
    return checked[0] if checked else None


def _checked_url(url: str | None, base: str | None = None) -> tuple[str, SplitResult] | None:
    """safe_url's answer and its parts (canonical_url needs both; one split, not two)."""
    if not url or not isinstance(url, str):
        return None
    if not isinstance(base, str):
        base = None
    if "&" in url:
        url = html.unescape(url)
    url = _URL_JUNK_RE.sub("", url)
    try:
        if base:
            url = _URL_JUNK_RE.sub("", urljoin(base, url))  # bad IPv6 bases raise ValueError
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname or "\\" in url:
        return None
    return url, parts


_URL_JUNK_RE = re.compile(r"[\x00-\x20\x7f]+")


# --- canonical URLs ---
#
# Our own rules, as data, around the URL syntax of url_syntax.py: which query parameters
# only track the reader, which URLs are AMP copies of a page, and the host (ports, trailing
# dot, IDNA) before w3lib sees it.

# Query parameters that only say where a click came from; never part of what page it is.
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|igshid|"
    r"_hsenc|_hsmi|mkt_tok|oly_enc_id|oly_anon_id|vero_id|ref_src|cmpid|ncid|ocid|"
    r"sr_share|spm|__twitter_impression)$",
    re.I,
)
# AMP copies of a page: a query parameter (name -> values, both lower-case) that asks for
# the AMP rendering, a host prefix, Google's AMP cache hosts, and path spellings.
AMP_QUERY_PARAMS = {"amp": frozenset({"", "1", "amp"}), "outputtype": frozenset({"", "1", "amp"})}
AMP_HOST_PREFIXES = ("amp.",)
AMP_CACHE_HOST_SUFFIX = ".cdn.ampproject.org"
AMP_PATH_RULES = (
    (re.compile(r"\.amp(?=\.html?$)"), ""),              # /story.amp.html -> /story.html
    (re.compile(r"(?:/amp|\.amp|/amp\.html?)$"), ""),    # /story/amp, /story.amp, /story/amp.html
    (re.compile(r"^/amp(?=/)"), ""),                     # /amp/story -> /story
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Kept as they are (and so different keys): `www.` and the bare host, and http and https:
# either pair may serve different pages, and copies among them are caught by text anyway.
_SLASH_RUN_RE = re.compile(r"//+")


def canonical_url(url: str | None) -> str | None:
    """One spelling per page, so the same story linked two ways is one key (a dedup key:
    stored in articles.canonical_url and looked up by dedup/detect.py).

    w3lib.url.canonicalize_url does the URL syntax (percent-encoding, Unicode, dot
    segments, query order, fragment, case); around it: no userinfo, the host
    lower-case and without its trailing dot, IDNA-encoded (`café.example` is
    `xn--caf-dma.example`), default ports dropped, doubled and trailing slashes
    gone, tracking parameters and the usual AMP variants removed (amp. hosts,
    /amp/ prefixes, /amp and .amp suffixes, ?amp=1, ?outputType=amp, Google AMP
    cache URLs). A URL it cannot parse (a bad port, no host) has no canonical form: None.
    The answer is its own canonical form.
    """
    checked = _checked_url(url)
    if checked is None:
        return None
    parts = checked[1]
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""  # urlsplit has lower-cased it
    if not host.isascii():
        host = enrich.url_syntax.idna_host(host)
        if host is None:
            return None  # a name no browser would look up (a space, a stray joiner mark)
    host = host.rstrip(".")
    if host.endswith(AMP_CACHE_HOST_SUFFIX) and (cached := _amp_cache_target(parts.path, parts.query)):
        return canonical_url(cached)
    while host.startswith(AMP_HOST_PREFIXES):
        host = host.split(".", 1)[1]
    if not host:
        return None  # "http://." names no host once its root dot is gone
    # an IPv6 literal keeps its brackets (w3lib writes it in RFC 5952 form)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    whole = enrich.url_syntax.canonicalize_url(f"{scheme}://{netloc}{parts.path}?{parts.query}" if parts.query
                                               else f"{scheme}://{netloc}{parts.path}")
    start = whole.find("/", len(scheme) + 3)  # w3lib's netloc may differ (IPv6); it holds no "/"
    path, _, query = whole[start:].partition("?")
    ours = _canonical_path(path)
    if query:
        query = _meaningful_query(query)
    result = f"{whole[:start]}{ours}?{query}" if query else f"{whole[:start]}{ours}"
    if ours != path and ours.endswith((";", ".")):
        # A cut left what w3lib reads anew: an empty ";" parameter, a "." or ".." segment.
        return canonical_url(result)
    return result


def _canonical_path(path: str) -> str:
    """Without doubled or trailing slashes and AMP spellings, until none is left
    (`/story/amp/` is `/story`, so is `/amp/story.amp`)."""
    if "//" in path:
        path = _SLASH_RUN_RE.sub("/", path)
    while True:
        before = path
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        if "amp" in path:
            for pattern, replacement in AMP_PATH_RULES:
                path = pattern.sub(replacement, path)
            path = path or "/"
        if path == before:
            return path


def _meaningful_query(query: str) -> str:
    """w3lib's sorted, encoded query less tracking and AMP parameters, still sorted."""
    kept = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if TRACKING_PARAMS.match(name) or value.lower() in AMP_QUERY_PARAMS.get(name.lower(), ()):
            continue
        kept.append(pair)
    return "&".join(kept)


def _amp_cache_target(path: str, query: str) -> str | None:
    """https://example-com.cdn.ampproject.org/c/s/example.com/a -> https://example.com/a."""
    match = re.match(r"^/[a-z]/(s/)?([^/]+)(/.*)?$", path)
    if not match:
        return None
    scheme = "https" if match.group(1) else "http"
    return f"{scheme}://{match.group(2)}{match.group(3) or '/'}" + (f"?{query}" if query else "")

