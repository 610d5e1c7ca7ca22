"""The URL standards, as maintained libraries implement them: w3lib and idna.

urls.py keeps our own rules (tracking parameters, AMP copies, ports,
slashes) and leaves the syntax to these: w3lib.url.canonicalize_url
(Scrapy's request fingerprint, maintained with it) gives a URL one spelling
(percent-escapes decoded where that changes nothing and re-encoded in upper
case, so `caf%c3%a9`, `caf%C3%A9` and `café` meet and `%7Euser` is `~user`;
raw Unicode in path and query encoded as UTF-8; `.` and `..` segments
resolved; the query sorted by name then value; the fragment dropped; the
host lower-cased), and `idna_host` spells a Unicode host name as browsers do.

Loaded on first use (enrich's PEP 562 `__getattr__`): w3lib imports
urllib.request (http.client, email, ssl), which only storing and
fingerprinting new articles need.
"""

from __future__ import annotations

import functools
import re

import idna
from w3lib.url import canonicalize_url

__all__ = ["canonicalize_url", "idna_host"]


@functools.lru_cache(maxsize=4096)
def idna_host(host: str) -> str | None:
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
