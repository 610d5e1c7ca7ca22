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
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

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
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|igshid|"
    r"_hsenc|_hsmi|mkt_tok|oly_enc_id|oly_anon_id|vero_id|ref_src|cmpid|ncid|ocid|"
    r"sr_share|spm|__twitter_impression)$",
    re.I,
)
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


def _absolutize(fragment: str, base_url: str) -> str:
    """Resolve relative href/src against the article URL, then re-check them."""

    def fix(match: re.Match) -> str:
        attr, quote, value = match.group(1), match.group(2), html.unescape(match.group(3))
        absolute = safe_url(urljoin(base_url, value))
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
    if not url or not isinstance(url, str):
        return None
    if not isinstance(base, str):
        base = None
    url = re.sub(r"[\x00-\x20\x7f]+", "", html.unescape(url))
    try:
        if base:
            url = re.sub(r"[\x00-\x20\x7f]+", "", urljoin(base, url))  # bad IPv6 bases raise ValueError
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname or "\\" in url:
        return None
    return url


def canonical_url(url: str | None) -> str | None:
    """One spelling per page, so the same story linked two ways is one key.

    Lowercases scheme and host, drops default ports, fragments, tracking
    parameters, trailing slashes and the usual AMP variants (amp. hosts,
    /amp/ prefixes, /amp and .amp suffixes, ?amp=1, ?outputType=amp, Google
    AMP cache URLs), and sorts the query so parameter order does not matter.
    A URL it cannot parse (a bad port, no host) has no canonical form: None.
    """
    url = safe_url(url)
    if url is None:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if host.endswith(".cdn.ampproject.org") and (cached := _amp_cache_target(parts.path, parts.query)):
        return canonical_url(cached)
    if host.startswith("amp."):
        host = host[4:]
    if not host:
        return None  # "http://." names no host once its root dot is gone
    port = port if port not in (None, 80 if scheme == "http" else 443) else None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets, or the URL is no URL
    netloc = f"{host}:{port}" if port else host
    path = re.sub(r"/+", "/", parts.path or "/")
    if len(path) > 1:
        path = path.rstrip("/")
    path = re.sub(r"\.amp(?=\.html?$)", "", path)
    path = re.sub(r"(/amp|\.amp|/amp\.html?)$", "", path) or "/"
    path = re.sub(r"^/amp(?=/)", "", path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not TRACKING_PARAMS.match(k) and not (k.lower() in ("amp", "outputtype") and v.lower() in ("", "1", "amp"))]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


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
        text = "".join(c for c in text if not unicodedata.combining(c))
    return _fold_spaces(text.lower()).strip()


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
    """A hash of the folded text, so whitespace and quote styles do not matter."""
    folded = "\x1f".join(fold_for_matching(p) for p in parts)
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


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
    """Extracted text with blank-line paragraph breaks, each paragraph cleaned, empty ones gone."""
    paragraphs = [clean_text(p) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


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
    return _paragraphs("".join(parts))


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
