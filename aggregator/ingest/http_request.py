"""A URL as it goes on the wire, and the header rules a fetch follows from hop to hop.

The host is IDNA-encoded and the path percent-encoded by us, so what is
sent is what was checked; every header is ours to write, Host included.
Credentials in a URL become Basic authorization, as browsers and httpx do,
and a source's login goes only to the origin it was given for.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urljoin, urlsplit

from aggregator import __version__, ingest
from aggregator.ingest.http_errors import FetchError

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse

PROJECT_URL = "https://github.com/aggregator-project/aggregator"
USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
ACCEPT = ("application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, "
          "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5")
URL_SAFE = "/%:@!$&'()*+,;=?~[]"  # left as they are in a path or query; anything else is percent-encoded
_HOST_RE = re.compile(r"[A-Za-z0-9._~-]+|[0-9A-Fa-f:.]+")  # a name (IDNA-encoded) or an IP literal


@dataclass(frozen=True)
class Login:
    """A source's user name and password (config: username, password_file), sent as Basic authorization."""

    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


@dataclass(frozen=True)
class WireRequest:
    """A request as it goes on the wire: ASCII host, port, percent-encoded target, every header."""

    scheme: str
    host: str
    port: int
    target: str
    headers: list[tuple[str, str]]


def wire_request(url: str, headers: dict[str, str]) -> WireRequest:
    """The URL as it goes on the wire (IDNA host, percent-encoded path), and every header to send.

    Host is ours to write, brackets around an IPv6 literal included.
    Credentials in the URL become Basic authorization, as browsers and httpx do.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"refused to fetch {url!r}: only http and https URLs are fetched")
    try:
        port = parts.port
    except ValueError:
        raise FetchError(f"invalid URL {url!r}: bad port") from None
    host = parts.hostname or ""
    try:
        host = host if host.isascii() else ingest.wire_host.ascii_host(host)
    except (UnicodeError, ValueError):
        raise FetchError(f"invalid URL {url!r}: the host name is not a valid domain") from None
    if not host or not _HOST_RE.fullmatch(host):
        raise FetchError(f"invalid URL {url!r}: no usable host name")
    target = quote(parts.path or "/", safe=URL_SAFE) + (f"?{quote(parts.query, safe=URL_SAFE)}" if parts.query else "")
    default = 443 if scheme == "https" else 80
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        authority += f":{port}"
    sent = {"Host": authority, "User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate",
            **headers}
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        sent["Authorization"] = "Basic " + base64.b64encode(secret).decode("ascii")
    # Header values go out as Latin-1, as HTTP/1.1 defines them; anything else becomes "?".
    wire_headers = [(k, v if v.isascii() else v.encode("latin-1", "replace").decode("latin-1"))
                    for k, v in sent.items()]
    return WireRequest(scheme, host, port if port is not None else default, target, wire_headers)


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def with_login(headers: dict[str, str], login: Login | None, url: str, origin: str) -> dict[str, str]:
    """The login goes only to the origin it was given for: a redirect elsewhere drops it, as browsers do."""
    if login is None or not _same_origin(url, origin):
        return headers
    return {**headers, "Authorization": login.header()}


def _same_origin(a: str, b: str) -> bool:
    first, second = urlsplit(a), urlsplit(b)
    try:
        return (first.scheme.lower(), first.hostname, first.port) == (second.scheme.lower(), second.hostname,
                                                                     second.port)
    except ValueError:
        return False


def redirect_target(current: str, response: BaseHTTPResponse) -> str:
    location = (response.headers.get("location") or "").strip()
    if not location:
        raise FetchError(f"HTTP {response.status} redirect without a Location header from {current}")
    return urljoin(current, location)
