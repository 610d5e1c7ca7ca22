"""Untrusted HTML -> a fragment that is safe to publish.

Everything a source sends is hostile until it passes through here: HTML is
cut down to an allowlist (nh3, a binding to the Ammonia sanitizer, which
is maintained and fast) and every link and image must be http(s), resolved
against the article's URL.
"""

from __future__ import annotations

import functools
import html
import re

import nh3

from aggregator.enrich.urls import SAFE_SCHEMES, safe_url

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
NOT_THE_DOCUMENT = {  # a whole page's elements whose content is not its text (sanitize_whole_page)
    "script", "style", "title", "nav", "header", "footer", "aside", "form", "noscript", "template",
    "iframe", "object", "svg", "math", "select", "button",
}

def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """An HTML fragment with only harmless tags, attributes and http(s) links."""
    if not fragment:
        return ""
    cleaned = _cleaner().clean(fragment)
    if base_url and ("href=" in cleaned or "src=" in cleaned):  # most fragments hold no link: no regex pass
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

