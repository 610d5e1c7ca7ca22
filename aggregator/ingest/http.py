"""Polite HTTP fetching of feeds: with transport.py, the only code that speaks HTTP.

transport.py gives urllib3 connections that only reach addresses netguard
allows and that live under a total deadline; this module decides what to
send and what a response means.

What "polite" and "robust" mean here:

- conditional GET with the stored ETag / Last-Modified, so an unchanged
  feed costs the publisher a 304 and us nothing;
- redirects followed by our code, so every hop is checked (scheme, and the
  address it resolves to, through netguard), and so we know whether the
  whole chain was permanent (301/308: the caller updates the stored URL);
- one total deadline over connect, TLS, headers and body, and a body limit
  enforced while the bytes stream in, counted *after* decompression with a
  bounded output per read, so a gzip bomb cannot balloon in memory;
- a body shorter than its Content-Length, or cut off inside a chunk, is an
  error: half a feed is never taken for the whole;
- a User-Agent that names the project and its version, or the one the
  config sets (`[fetch] user_agent`).

Failures are values (FetchResult.error), never exceptions: a network
problem is the source's problem, not the run's.
"""

from __future__ import annotations

import base64
import http.client
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urljoin, urlsplit

from urllib3 import BaseHTTPResponse, PoolManager, Retry, Timeout
from urllib3.exceptions import (
    HTTPError, MaxRetryError, NewConnectionError, ProtocolError, SSLError, TimeoutError as Urllib3Timeout,
)

from aggregator import __version__
from aggregator.ingest.netguard import BlockedAddress, NetPolicy
from aggregator.ingest.transport import WATCHDOG, Deadline, pool_manager

if TYPE_CHECKING:
    import ssl

PROJECT_URL = "https://github.com/aggregator-project/aggregator"
USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
ACCEPT = ("application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, "
          "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5")
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
PERMANENT_REDIRECTS = {301, 308}
MAX_RETRY_AFTER = 7 * 86400.0
DRAIN_LIMIT = 64 * 1024  # a 304, redirect or error body up to this is read so its connection is reused
URL_SAFE = "/%:@!$&'()*+,;=?~[]"  # left as they are in a path or query; anything else is percent-encoded
_HOST_RE = re.compile(r"[A-Za-z0-9._~-]+|[0-9A-Fa-f:.]+")  # a name (IDNA-encoded) or an IP literal
CHUNK = 64 * 1024  # bytes read from the socket per step
ALLOWED_ENCODINGS = {"", "identity", "gzip", "x-gzip", "deflate"}  # we send Accept-Encoding: gzip, deflate
# A request whose connection fails before the response starts is sent once more, on a new
# connection: usually a kept one the server closed just after we checked it. A GET is safe to
# repeat; connect failures, timeouts past the deadline and everything after the head are not retried.
RETRY_REUSED = Retry(total=1, connect=0, read=1, redirect=False, status=0, other=0, raise_on_status=False)


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 30.0  # total seconds for one fetch, redirects included; also the read timeout
    connect_timeout: float = 10.0
    max_body_size: int = 10 * 1024 * 1024  # bytes after decompression
    max_redirects: int = 5


@dataclass
class FetchResult:
    """What one fetch produced. `error` set means no usable body; `status` may still be set."""

    url: str
    final_url: str
    status: int | None = None
    reason: str = ""
    body: bytes | None = None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # set when every redirect hop was permanent (301/308)
    redirects: list[tuple[int, str]] = field(default_factory=list)
    retry_after: float | None = None  # seconds the server asked us to wait (429/503)
    max_age: float | None = None  # seconds the server says the response stays fresh
    error: str | None = None
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304 and self.error is None


@dataclass(frozen=True)
class Login:
    """A source's user name and password (config: username, password_file), sent as Basic authorization."""

    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


class FetchError(Exception):
    """A fetch failed in a way the source's owner can act on; str() says how."""


class Fetcher:
    """One urllib3 pool manager per network policy and scheme, shared by all threads for a run's life.

    A connection opened under a permissive policy must never be reused by a
    source with a strict one, hence a manager per policy. The daemon keeps
    one Fetcher for as long as it runs, so connections and the loaded CA
    bundle are reused from one cycle to the next.
    """

    def __init__(self, limits: FetchLimits | None = None, max_connections: int = 16, ca_file: str | None = None,
                 user_agent: str = "", per_host: int = 4):
        self.limits = limits or FetchLimits()
        self.user_agent = user_agent or USER_AGENT  # [fetch] user_agent (publishers may want a contact), else ours
        self.max_connections = max_connections  # run_bounded caps the fetches in flight to this
        self.per_host = per_host  # connections kept per host: as many as may be open toward it at once
        self.ca_file = ca_file  # certificates to trust instead of certifi's bundle (tests use their own CA)
        self._managers: dict[tuple[NetPolicy, bool], PoolManager] = {}
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def manager(self, policy: NetPolicy, scheme: str = "https") -> PoolManager:
        """The pool manager for this policy and scheme.

        Plain-http URLs get one with no TLS at all: loading the CA bundle
        takes 40 ms, a tenth of an unchanged refresh of plain-http feeds.
        """
        tls = scheme != "http"
        manager = self._managers.get((policy, tls))  # found without the lock: every fetch asks
        if manager is not None:
            return manager
        with self._lock:
            if (policy, tls) not in self._managers:
                self._managers[policy, tls] = pool_manager(policy, self._tls_context() if tls else None,
                                                           self.per_host)
            return self._managers[policy, tls]

    def _tls_context(self) -> ssl.SSLContext:
        """Certificates verified against the host name, as browsers do, with Mozilla's CA bundle (certifi)."""
        if self._tls is None:
            import ssl

            import certifi

            self._tls = ssl.create_default_context(cafile=self.ca_file or certifi.where())
        return self._tls

    def fetch(self, url: str, policy: NetPolicy, etag: str | None = None,
              last_modified: str | None = None, login: Login | None = None) -> FetchResult:
        """GET url (conditionally), following redirects by hand. Never raises for network trouble."""
        started = time.monotonic()
        result = FetchResult(url=url, final_url=url)
        headers = {"User-Agent": self.user_agent, **_conditional_headers(etag, last_modified)}
        try:
            with WATCHDOG.deadline(started + self.limits.timeout) as deadline:
                self._follow(result, policy, headers, deadline, login)
        except FetchError as exc:
            result.error = str(exc)
            result.body = None
        result.elapsed = time.monotonic() - started
        return result

    def _follow(self, result: FetchResult, policy: NetPolicy, headers: dict[str, str], deadline: Deadline,
                login: Login | None = None) -> None:
        current, permanent = result.url, True
        for _hop in range(self.limits.max_redirects + 1):
            result.final_url = current
            with _translate_errors(current, self.limits.timeout, deadline):
                response = self._send(current, policy, _with_login(headers, login, current, result.url), deadline)
                try:
                    result.status, result.reason = response.status, response.reason or ""
                    if response.status in REDIRECT_STATUSES:
                        target = _redirect_target(current, response)
                        result.redirects.append((response.status, target))
                        permanent = permanent and response.status in PERMANENT_REDIRECTS
                        current = target
                        _drain(response, deadline)
                        continue
                    self._finish(result, response, deadline)
                finally:
                    response.release_conn()
            if result.redirects and permanent:
                result.moved_to = result.final_url
            return
        raise FetchError(f"more than {self.limits.max_redirects} redirects (last to {current}); "
                         "check the source's url")

    def _send(self, url: str, policy: NetPolicy, headers: dict[str, str], deadline: Deadline) -> BaseHTTPResponse:
        """One GET on a kept or new connection; returns once the head is read, the body still to come."""
        wire = _wire_request(url, headers)
        pool = self.manager(policy, wire.scheme).connection_from_host(wire.host, wire.port, wire.scheme)
        left = max(deadline.seconds_left(), 0.001)
        return pool.urlopen(
            "GET", wire.target, headers=dict(wire.headers), redirect=False, assert_same_host=False,
            preload_content=False, decode_content=False, release_conn=False, retries=RETRY_REUSED,
            timeout=Timeout(connect=min(self.limits.connect_timeout, left), read=left))

    def _finish(self, result: FetchResult, response: BaseHTTPResponse, deadline: Deadline) -> None:
        headers = response.headers
        result.etag = headers.get("etag")
        result.last_modified = headers.get("last-modified")
        result.content_type = headers.get("content-type", "")
        result.max_age = freshness_seconds(headers.get("cache-control"), headers.get("expires"),
                                           headers.get("date"))
        if response.status in (429, 503):
            result.retry_after = retry_after_seconds(headers.get("retry-after"))
        if 200 <= response.status < 300:
            result.body = read_body(response, self.limits.max_body_size, deadline)
        else:
            _drain(response, deadline)


@dataclass(frozen=True)
class WireRequest:
    """A request as it goes on the wire: ASCII host, port, percent-encoded target, every header."""

    scheme: str
    host: str
    port: int
    target: str
    headers: list[tuple[str, str]]


def _wire_request(url: str, headers: dict[str, str]) -> WireRequest:
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
        host = host if host.isascii() else _idna(host)
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
    wire_headers = [(k, v.encode("latin-1", "replace").decode("latin-1")) for k, v in sent.items()]
    return WireRequest(scheme, host, port if port is not None else default, target, wire_headers)


def _idna(host: str) -> str:
    import idna  # only for non-ASCII host names

    return idna.encode(host, uts46=True).decode("ascii")


def _drain(response: BaseHTTPResponse, deadline: Deadline) -> None:
    """Read a body we do not use (a 304's is empty) so the connection goes back to the pool.

    A connection whose response was not read to the end cannot carry the
    next request: an unchanged refresh would pay a new TCP connection for
    every feed. A large or broken body is given up on; its connection closes.
    """
    try:
        read_body(response, DRAIN_LIMIT, deadline)
    except (FetchError, HTTPError, OSError, http.client.HTTPException):
        response.close()


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _with_login(headers: dict[str, str], login: Login | None, url: str, origin: str) -> dict[str, str]:
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


def _redirect_target(current: str, response: BaseHTTPResponse) -> str:
    location = (response.headers.get("location") or "").strip()
    if not location:
        raise FetchError(f"HTTP {response.status} redirect without a Location header from {current}")
    return urljoin(current, location)


class _translate_errors:
    """Turn urllib3, socket and netguard exceptions into one-line FetchErrors naming the URL."""

    def __init__(self, url: str, timeout: float, deadline: Deadline):
        self.url, self.timeout, self.deadline = url, timeout, deadline

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, FetchError):
            return False
        cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
        if isinstance(cause, BlockedAddress):
            raise FetchError(str(cause)) from None
        if self.deadline.expired or self.deadline.seconds_left() <= 0:
            raise FetchError(self._timed_out("the total timeout ran out")) from None
        if isinstance(cause, NewConnectionError):  # urllib3 files it under timeouts, refused or not
            raise FetchError(f"network error fetching {self.url}: {_root(cause)}") from None
        if isinstance(cause, (Urllib3Timeout, TimeoutError)):
            raise FetchError(self._timed_out("no answer in time")) from None
        if isinstance(cause, ValueError):  # http.client refuses a header value with a line break in it
            raise FetchError(f"could not send the request for {self.url}: {cause}") from None
        if isinstance(cause, ProtocolError) and _incomplete(cause):
            raise FetchError(f"the connection to {self.url} closed before the end of the body ({_incomplete(cause)}); "
                             "nothing from it was stored, it will be retried") from None
        if isinstance(cause, SSLError):
            raise FetchError(f"TLS error fetching {self.url}: {_root(cause)}") from None
        if isinstance(cause, (HTTPError, OSError, http.client.HTTPException)):
            raise FetchError(f"network error fetching {self.url}: {_root(cause)}") from None
        return False

    def _timed_out(self, what: str) -> str:
        return f"timed out after {self.timeout:g}s fetching {self.url} ({what}); the server is slow or down"


def _incomplete(error: ProtocolError) -> str:
    """How much of the body came, when the error is a body cut short; else empty."""
    for part in (error, *error.args):
        if isinstance(part, http.client.IncompleteRead):
            got = len(part.partial) if isinstance(part.partial, bytes) else part.partial
            return f"{got} bytes read, {part.expected} more expected" if part.expected else "cut off inside a chunk"
    return ""


def _root(error: BaseException) -> str:
    """The innermost cause's words: "[Errno 111] Connection refused", not urllib3's wrapping of it."""
    while True:
        if isinstance(error, MaxRetryError) and error.reason is not None:
            error = error.reason
        elif isinstance(error, ProtocolError) and len(error.args) > 1 and isinstance(error.args[1], BaseException):
            error = error.args[1]  # ("Connection aborted.", RemoteDisconnected(...))
        elif isinstance(error, NewConnectionError) and error.__cause__ is not None:
            error = error.__cause__
        else:
            return str(error) or type(error).__name__


# --- the body: bounded while streaming, decompressed with bounded output ---


class _Decoder:
    """Content-Encoding -> bytes, never more than asked for per step, and sure the stream ended.

    urllib3 decodes with bounded output too, but takes a gzip stream that
    stops halfway (no trailer) for a whole one; a close-delimited body gives
    no other sign that it was cut.
    """

    def __init__(self, encoding: str):
        self.encoding = encoding
        self._inflater = self._new() if encoding not in ("", "identity") else None
        self._raw_deflate_tried = False

    def _new(self, raw: bool = False) -> "zlib._Decompress":
        if raw:
            return zlib.decompressobj(-zlib.MAX_WBITS)  # deflate without the zlib header, as some servers send
        return zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in self.encoding else zlib.MAX_WBITS)

    def feed(self, data: bytes, limit: int) -> bytes:
        if self._inflater is None:
            return data
        try:
            out = self._inflater.decompress(data, limit)
        except zlib.error:
            if self.encoding != "deflate" or self._raw_deflate_tried:
                raise FetchError(f"the {self.encoding}-compressed body is corrupt") from None
            self._raw_deflate_tried = True
            self._inflater = self._new(raw=True)
            return self.feed(data, limit)
        self._raw_deflate_tried = True  # the header was fine: no second guess later in the stream
        if self._inflater.eof and self._inflater.unused_data.strip(b"\0"):  # another gzip member follows
            rest, self._inflater = self._inflater.unused_data, self._new()
            out += self.feed(rest, max(limit - len(out), 1))
        return out

    def finish(self) -> None:
        if self._inflater is not None and not self._inflater.eof:
            raise FetchError(f"the {self.encoding}-compressed body ends before its compressed stream does "
                             "(cut off); nothing from it was stored, it will be retried")


def read_body(response: BaseHTTPResponse, max_size: int, deadline: Deadline) -> bytes:
    """The decoded body, or FetchError once it passes max_size bytes or the deadline, or if it was cut short."""
    encoding = (response.headers.get("content-encoding") or "").strip().lower()
    if encoding not in ALLOWED_ENCODINGS:
        raise FetchError(f"the server used Content-Encoding {encoding!r}, which we did not ask for")
    declared = response.headers.get("content-length") or ""
    too_large = (f"the feed is larger than the {_size(max_size)} limit (fetch.max_body_size); "
                 "nothing from it was stored")
    if encoding in ("", "identity") and declared.isdigit() and int(declared) > max_size:
        raise FetchError(too_large)
    decoder = _Decoder(encoding)
    parts: list[bytes] = []
    total = 0
    received = False
    while chunk := response.read1(CHUNK, decode_content=False):
        received = True
        piece = decoder.feed(chunk, max_size - total + 1)
        total += len(piece)
        if total > max_size:
            raise FetchError(too_large + (f" (after {encoding} decompression)" if encoding else ""))
        if deadline.expired or deadline.seconds_left() <= 0:
            raise FetchError("the download took longer than the total timeout (fetch.timeout); "
                             "the server is too slow")
        parts.append(piece)
    if deadline.expired:  # the watchdog ended a body that had no declared length: it is not whole
        raise FetchError("the download took longer than the total timeout (fetch.timeout); the server is too slow")
    if received:  # no bytes at all (a 304, a HEAD-like empty answer) is an empty body in any encoding
        decoder.finish()
    return b"".join(parts)


def _size(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n} bytes"


# --- header values that steer scheduling ---

MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.I)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; capped at a week."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    when = _http_date(value)
    if when is None:
        return None
    now = now or datetime.now(timezone.utc)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def freshness_seconds(cache_control: str | None, expires: str | None, date: str | None,
                      now: datetime | None = None) -> float | None:
    """How long the server says the feed stays fresh: max-age beats Expires (RFC 9111)."""
    if cache_control:
        if re.search(r"\b(no-cache|no-store)\b", cache_control, re.I):
            return 0.0
        if match := MAX_AGE_RE.search(cache_control):
            return float(match.group(1))
    if expires:
        when = _http_date(expires)
        if when is None:
            return 0.0  # an invalid Expires means "already expired"
        origin = _http_date(date) if date else None
        return max((when - (origin or now or datetime.now(timezone.utc))).total_seconds(), 0.0)
    return None


def _http_date(value: str) -> datetime | None:
    import email.utils  # here: most responses carry no date we need to read, and it imports the email package

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
