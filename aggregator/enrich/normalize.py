"""Make untrusted article fields safe and comparable.

Everything a source sends is hostile until it passes through here: HTML
is cut down to an allowlist (nh3, a binding to the Ammonia sanitizer, which
is maintained and fast), links must be http(s), and dates are clamped so a
feed cannot pin itself to the top of every list by claiming the year 2099.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Iterator
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

import idna
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "li", "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"}, "q": {"cite"}, "blockquote": {"cite"}, "time": {"datetime"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"},
}
SAFE_SCHEMES = {"http", "https"}
NOT_THE_DOCUMENT = {  # a whole page's elements whose content is not its text (sanitize_whole_page)
    "script", "style", "title", "nav", "header", "footer", "aside", "form", "noscript", "template",
    "iframe", "object", "svg", "math", "select", "button",
}
MAX_FUTURE = timedelta(days=1)
EPOCH_FLOOR = datetime(1990, 1, 1, tzinfo=timezone.utc)
_SPACES = r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]"
# Runs of spaces, or one unusual space; a lone " " needs no change and is not matched (speed).
_SPACE_RE = re.compile(_SPACES + r"{2,}|[\t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C1 too: \x9b is a terminal CSI


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """An HTML fragment with only harmless tags, attributes and http(s) links."""
    if not fragment:
        return ""
    cleaned = _cleaner().clean(fragment)
    if base_url and ("href=" in cleaned or "src=" in cleaned):  # the regex alone costs ~50 us per article
        cleaned = _absolutize(cleaned, base_url)
    return cleaned


@functools.lru_cache(maxsize=1)
def _cleaner() -> "nh3.Cleaner":
    """Built once: nh3.clean() converts its allow-lists from Python on every call (2/3 of its time)."""
    return nh3.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=SAFE_SCHEMES,
                       strip_comments=True, link_rel="noopener noreferrer nofollow")


def sanitize_whole_page(page: str, base_url: str | None = None) -> str:
    """A whole page as a safe fragment: sanitize_html's allowlist, and what is not the
    document's own text (scripts, styles, navigation, headers, footers, asides, forms)
    dropped with everything inside it."""
    if not page:
        return ""
    cleaned = _page_cleaner().clean(page)
    if base_url and ("href=" in cleaned or "src=" in cleaned):
        cleaned = _absolutize(cleaned, base_url)
    return cleaned


@functools.lru_cache(maxsize=1)
def _page_cleaner() -> "nh3.Cleaner":
    return nh3.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=SAFE_SCHEMES,
                       strip_comments=True, link_rel="noopener noreferrer nofollow",
                       clean_content_tags=NOT_THE_DOCUMENT)


def _absolutize(fragment: str, base_url: str) -> str:
    """Resolve relative href/src against the article URL, then re-check them."""

    def fix(match: re.Match) -> str:
        attr, quote, value = match.group(1), match.group(2), html.unescape(match.group(3))
        absolute = safe_url(value, base_url)  # joined inside safe_url: a link like "//[" is no URL, not an error
        if absolute is None:
            return ""
        return f"{attr}={quote}{html.escape(absolute, quote=True)}{quote}"

    return re.sub(r'\b(href|src)=(["\'])(.*?)\2', fix, fragment)


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
# w3lib.url.canonicalize_url (Scrapy's request fingerprint, maintained with it) gives the
# URL one spelling: percent-escapes decoded where that changes nothing and re-encoded in
# upper case (so `caf%c3%a9`, `caf%C3%A9` and `café` meet, and `%7Euser` is `~user`), raw
# Unicode in path and query encoded as UTF-8, `.` and `..` segments resolved, the query
# sorted by name then value, the fragment dropped, the host lower-cased. Our own rules sit
# on top of it as data: which query parameters only track the reader, which URLs are AMP
# copies of a page, and the host (ports, trailing dot, IDNA) before w3lib sees it.

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


@functools.cache
def _w3lib_canonicalize():
    """w3lib.url.canonicalize_url, imported on first use: w3lib imports urllib.request (http.client,
    email, ssl), 20-30 ms that every command would pay at start-up, though only storing and
    fingerprinting new articles compute URL keys (an unchanged refresh, `articles`, `publish` never do)."""
    from w3lib.url import canonicalize_url

    return canonicalize_url


def canonical_url(url: str | None) -> str | None:
    """One spelling per page, so the same story linked two ways is one key (a dedup key:
    stored in articles.canonical_url and looked up by dedup.py).

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
        host = _idna_host(host)
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
    whole = _w3lib_canonicalize()(f"{scheme}://{netloc}{parts.path}?{parts.query}" if parts.query
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


@functools.lru_cache(maxsize=4096)
def _idna_host(host: str) -> str | None:
    """A Unicode host name as browsers send it: UTS #46 mapping, then IDNA 2008 (`idna`).

    Not w3lib's own IDNA step: Python's `idna` codec is IDNA 2003, which maps `ß` to
    `ss` and so gives straße.de (xn--strae-oqa.de) and strasse.de, two domains, one key.
    A label IDNA 2008 refuses but browsers take (an underscore, a leading hyphen) is
    mapped and Punycode-encoded all the same; a name that maps to what no host can hold
    (a space) is None.
    """
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        labels = [label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
                  for label in mapped.split(".")]
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    ascii_host = ".".join(labels).lower()
    return None if _FORBIDDEN_HOST_RE.search(ascii_host) else ascii_host


# What a host name cannot hold (the URL Standard's forbidden domain code points).
_FORBIDDEN_HOST_RE = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")


def _amp_cache_target(path: str, query: str) -> str | None:
    """https://example-com.cdn.ampproject.org/c/s/example.com/a -> https://example.com/a."""
    match = re.match(r"^/[a-z]/(s/)?([^/]+)(/.*)?$", path)
    if not match:
        return None
    scheme = "https" if match.group(1) else "http"
    return f"{scheme}://{match.group(2)}{match.group(3) or '/'}" + (f"?{query}" if query else "")


_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (C0 controls, lone surrogates, U+FFFE/FFFF).

    One stored title with a BEL in it would make every later publish fail in
    feedgen, for every topic; this is the last gate before the store.
    """
    return text if is_xml_safe(text) else _XML_INVALID_RE.sub("", text)


def is_xml_safe(text: str) -> bool:
    return _XML_INVALID_RE.search(text) is None


def clean_text(text: str) -> str:
    """Published text: control characters out, whitespace runs folded.

    Non-breaking spaces and typographic quotes are kept; they are part of the
    text the site published. Matching uses fold_for_matching instead.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)  # ASCII is NFC already
    text = _CONTROL_RE.sub("", text)
    if "  " in text or "\t" in text:  # a search for space runs costs more than these two scans
        text = _BLANK_RUN_RE.sub(" ", text)
    return text.strip()


# Runs of spaces and tabs, or a lone tab: a lone space needs no change and is not matched (speed).
_BLANK_RUN_RE = re.compile(r"[ \t]{2,}|\t")


def fold_for_matching(text: str) -> str:
    """Lowercase, accent-free, plain-quote, single-space text for rules and hashes.

    Runs on every article several times (tags, dedup, hashes), so ASCII text
    takes a fast path and accents are stripped by one regex, not a Python loop.
    Most English news is ASCII but for its curly quotes and dashes, so those
    are replaced first and such text takes the fast path too (none of them
    changes under NFKD, so the result is the same either way). The last few
    hundred article-sized texts are remembered: tagging and dedup fold the
    same title and body one after the other.
    """
    if len(text) > FOLD_CACHE_MAX_CHARS:
        return _fold(text)
    return _fold_remembered(text)


FOLD_CACHE_MAX_CHARS = 20_000  # at most 256 of these are kept: a few MB


def _fold(text: str) -> str:
    if not text.isascii():
        text = _plain_quotes(text)
    if text.isascii():
        return _fold_spaces(text.lower()).strip()
    text = _plain_quotes(_COMBINING_RE.sub("", unicodedata.normalize("NFKD", text)))
    if not text.isascii():  # rarer combining marks, outside the ranges above
        text = _NON_ASCII_RUN_RE.sub(_without_combining, text)
    return _fold_spaces(text.lower()).strip()


def _without_combining(run: re.Match) -> str:
    """A run of non-ASCII text without its combining marks. Runs are at most 4,096 characters:
    one character object each for the whole of a 10 MB text took 500 MB (CJK) or more."""
    return "".join(c for c in run.group() if not unicodedata.combining(c))


_NON_ASCII_RUN_RE = re.compile(r"[^\x00-\x7f]{1,4096}")


def _fold_spaces(text: str) -> str:
    """_SPACE_RE.sub(" ", text), skipped when ASCII text holds nothing it matches.

    The search costs about 70 us on an article's text, the scans here about 2.
    """
    if text.isascii() and "  " not in text and "\t" not in text and "\r" not in text \
            and "\f" not in text and "\v" not in text:
        return text
    return _SPACE_RE.sub(" ", text)


_fold_remembered = functools.lru_cache(maxsize=256)(_fold)
_COMBINING_RE = re.compile("[\u0300-\u034e\u0350-\u036f]+")  # accents of Latin, Greek, Cyrillic letters


# Only characters that NFKD leaves alone: U+2033 (double prime) is not here, NFKD makes it two primes.
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'",
           "\u201c": '"', "\u201d": '"', "\u201e": '"',
           "\u2013": "-", "\u2014": "-", "\u2212": "-"}
_QUOTE_RE = re.compile("[" + "".join(_QUOTES) + "]")


def _plain_quotes(text: str) -> str:
    """Typographic quotes and dashes -> ASCII (a regex: str.translate with a dict is slow)."""
    return _QUOTE_RE.sub(lambda m: _QUOTES[m.group()], text)


def word_tokens(text: str) -> tuple[str, ...]:
    """The text's \\w+ tokens, in order.

    Dedup, tags and salient words each split the same folded title and body,
    one after the other, so the last few hundred article-sized texts' tokens
    are remembered (a tuple, so that no caller can change what another gets).
    """
    if len(text) > FOLD_CACHE_MAX_CHARS:
        return _split_words(text)
    return _split_words_remembered(text)


def word_token_chunks(text: str) -> Iterator[tuple[str, ...]]:
    """word_tokens(text), a chunk of about TOKEN_CHUNK_CHARS characters at a time.

    A word is a small object of its own (about 56 bytes): all the words of a
    10 MB text at once took 100 MB. Chunks end at whitespace, which no word
    holds, so no word is cut in two; an article-sized text is one chunk.
    """
    if len(text) <= TOKEN_CHUNK_CHARS:
        yield word_tokens(text)
        return
    start = 0
    while start < len(text):
        cut = _WHITESPACE_RE.search(text, min(start + TOKEN_CHUNK_CHARS, len(text)))
        end = cut.start() if cut else len(text)
        yield _split_words(text[start:end])
        start = end + 1


TOKEN_CHUNK_CHARS = 256 * 1024  # the words of 256 KB of text are about 2.5 MB
_WHITESPACE_RE = re.compile(r"\s")


def _split_words(text: str) -> tuple[str, ...]:
    """Folded text is nearly always ASCII, where \\w is [A-Za-z0-9_] and
    translate + split gives the same tokens as findall in a sixth of the time."""
    if text.isascii():
        return tuple(text.translate(_ASCII_NON_WORD).split())
    return tuple(_WORD_RE.findall(text))


_split_words_remembered = functools.lru_cache(maxsize=256)(_split_words)


_WORD_RE = re.compile(r"\w+")
_ASCII_NON_WORD = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_")})


def content_hash(*parts: str) -> str:
    """A hash of the folded text, so whitespace and quote styles do not matter.

    The hash of the folded parts joined by \x1f, fed part by part (no joined copy of a long text).
    """
    digest = hashlib.sha256()
    for index, part in enumerate(parts):
        digest.update((("\x1f" if index else "") + fold_for_matching(part)).encode("utf-8"))
    return digest.hexdigest()


def stable_id(*parts: str) -> str:
    """A short, stable article id from the things that identify it."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


class _TextExtractor(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
             "tr", "section", "article", "pre", "figure", "figcaption", "hr"}
    SKIP = {"script", "style", "template", "noscript", "iframe", "object", "svg", "math"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Readable plain text from HTML: paragraphs kept, markup and scripts dropped."""
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return clean_text(fragment)
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return _paragraphs("".join(parser.parts))


def _paragraphs(text: str) -> str:
    """Extracted text with blank-line paragraph breaks, each paragraph cleaned, empty ones gone.

    One list of paragraphs at a time: a long text's paragraphs are as large as the text.
    """
    return "\n\n".join(filter(None, map(clean_text, _PARAGRAPH_BREAK.split(text))))


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


_CLEAN_TAG_RE = re.compile(r"""<(/?)([a-zA-Z][^\t\n\r\f />\x00]*)(?:[^>"']|"[^"]*"|'[^']*')*>""")


def clean_html_to_text(fragment: str) -> str:
    """html_to_text for sanitize_html's output, by regex instead of html.parser (several times faster).

    nh3 writes well-formed tags with quoted attributes, escapes every `<` in
    text and drops comments and scripts, so its tags can be found by a regex.
    Anything that does not look like that (a `<` that starts no tag, a
    comment, a script) goes to html_to_text, so the answer is always the same.
    Text between tags is unescaped piece by piece, as html.parser does.
    """
    if "<!" in fragment or "<?" in fragment or ("<" not in fragment and "&" not in fragment):
        return html_to_text(fragment)
    parts, position, tags = [], 0, 0
    for match in _CLEAN_TAG_RE.finditer(fragment):
        name = match.group(2).lower()
        if name in _TextExtractor.SKIP:
            return html_to_text(fragment)
        parts.append(html.unescape(fragment[position:match.start()]))
        if name in _TextExtractor.BLOCK:
            parts.append("\n\n")
        position, tags = match.end(), tags + 1
    if tags != fragment.count("<"):
        return html_to_text(fragment)
    parts.append(html.unescape(fragment[position:]))
    text = "".join(parts)
    parts.clear()  # the pieces go before the text is split into paragraphs: a long text's are as large
    return _paragraphs(text)


def paragraphs_to_html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


def summarize(text: str, limit: int = 400) -> str:
    """The first paragraph, cut at a word boundary: what a reader sees in a list."""
    first = text.strip().split("\n\n", 1)[0].strip()
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "\u2026"


def iso_utc(value: datetime | None) -> str | None:
    """The one text form of a moment we store: UTC, to the second (None stays None)."""
    return value.astimezone(timezone.utc).isoformat(timespec="seconds") if value else None


def clamp_date(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """UTC-aware date, or None when absent or absurd (before 1990, more than a day ahead)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    now = now or datetime.now(timezone.utc)
    if value > now + MAX_FUTURE or value < EPOCH_FLOOR:
        return None
    return value
