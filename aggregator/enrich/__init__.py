"""enrich stage: untrusted article fields in, safe and comparable values out.

    text.py        published text (controls out, blanks folded), matching text
                   (folded), word tokens, content hashes, ids, XML-safe text
    html_text.py   HTML -> readable plain text
    sanitize.py    untrusted HTML -> an allowlisted fragment with http(s) links (nh3)
    urls.py        safe_url (http(s) only) and canonical_url (one dedup key per page)
    url_syntax.py  w3lib's URL canonicalization and IDNA host names (loaded on first use)
    dates.py       dates as stored: UTC, to the second, never absurd
    topics.py      topic rules from the config -> the topics an article belongs to
    terms.py       an article's salient words, what related posts match on
    profile.py     an article's words, names and categories, as related posts judge them
    language.py    an article's language when its source does not say (CLD2)
    scrub.py       an Article -> the same without XML-unsafe characters or a URL's login
    chain.py       the enrich chain: a parsed Article -> scrubbed -> with its language -> tagged
                   -> with its terms and profile

The chain runs unchanged in a parse worker and in the main process; each
step returns a new Article and never changes the one it got.
"""

import importlib

_SUBMODULES = {"chain", "dates", "html_text", "language", "profile", "sanitize", "scrub", "terms", "text", "topics", "url_syntax", "urls"}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
