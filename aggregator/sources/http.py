"""Polite HTTP fetching of feeds: with connections.py, the only code that speaks HTTP.

connections.py keeps the keep-alive connections (on the standard library's
http.client); this module decides what to send and what a response means.

What "polite" and "robust" mean here:

- conditional GET with the stored ETag / Last-Modified, so an unchanged
  feed costs the publisher a 304 and us nothing;
- redirects followed by hand, so every hop is checked (scheme, and the
  address it resolves to, through netguard), and so we know whether the
  whole chain was permanent (301/308: the caller updates the stored URL);
- connect, read and total timeouts, and a body limit enforced while the
  bytes stream in, counted *after* decompression (we decompress ourselves,
  with a bounded output, so a gzip bomb cannot balloon in memory);
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
from typing import Iterator
from urllib.parse import quote, unquote, urljoin, urlsplit

from .. import __version__
from ..netguard import BlockedAddress, NetPolicy
from .connections import ConnectionPool, DeadlineExceeded, Response, set_deadline

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
NETWORK_ERRORS = (OSError, http.client.HTTPException)  # timeouts (TimeoutError) are OSErrors too


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


class FetchError(Exception):
    """A fetch failed in a way the source's owner can act on; str() says how."""


class Fetcher:
    """One connection pool per network policy and scheme, shared by all threads of a run.

    A connection opened under a permissive policy must never be reused by a
    source with a strict one, hence a pool per policy.
    """

    def __init__(self, limits: FetchLimits | None = None, max_connections: int = 16, ca_file: str | None = None,
                 user_agent: str = ""):
        self.limits = limits or FetchLimits()
        self.user_agent = user_agent or USER_AGENT  # [fetch] user_agent (publishers may want a contact), else ours
        self.max_connections = max_connections  # idle connections kept; run_bounded caps the open ones
        self.ca_file = ca_file  # certificates to trust instead of certifi's bundle (tests use their own CA)
        self._clients: dict[tuple[NetPolicy, bool], ConnectionPool] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def client(self, policy: NetPolicy, scheme: str = "https") -> ConnectionPool:
        """The connection pool for this policy and scheme.

        Plain-http URLs get a pool with no TLS at all: loading the CA bundle
        takes 40 ms, a tenth of an unchanged refresh of plain-http feeds.
        """
        tls = scheme != "http"
        with self._lock:
            if (policy, tls) not in self._clients:
                self._clients[policy, tls] = self._new_client(policy, tls)
            return self._clients[policy, tls]

    def _new_client(self, policy: NetPolicy, tls: bool) -> ConnectionPool:
        """Every connection is opened through the address guard (netguard), and verified as browsers do."""
        context = None
        if tls:
            import ssl

            import certifi  # Mozilla's CA bundle, as httpx and requests use

            context = ssl.create_default_context(cafile=self.ca_file or certifi.where())
        return ConnectionPool(policy, context, max_idle=self.max_connections)

    def fetch(self, url: str, policy: NetPolicy, etag: str | None = None,
              last_modified: str | None = None) -> FetchResult:
        """GET url (conditionally), following redirects by hand. Never raises for network trouble."""
        started = time.monotonic()
        result = FetchResult(url=url, final_url=url)
        try:
            headers = {"User-Agent": self.user_agent, **_conditional_headers(etag, last_modified)}
            self._fetch(result, policy, headers, started)
        except FetchError as exc:
            result.error = str(exc)
            result.body = None
        result.elapsed = time.monotonic() - started
        return result

    def _fetch(self, result: FetchResult, policy: NetPolicy, headers: dict[str, str], started: float) -> None:
        deadline = started + self.limits.timeout
        set_deadline(deadline)
        try:
            self._follow(result, policy, headers, deadline)
        finally:
            set_deadline(None)

    def _follow(self, result: FetchResult, policy: NetPolicy, headers: dict[str, str], deadline: float) -> None:
        current, permanent = result.url, True
        for _hop in range(self.limits.max_redirects + 1):
            client = self.client(policy, _checked_scheme(current))
            result.final_url = current
            with _translate_errors(current, self.limits.timeout):
                wire = _wire_request(current, headers)
                conn, response = client.request(wire.scheme, wire.host, wire.port, wire.target, wire.headers,
                                                min(self.limits.connect_timeout, self.limits.timeout),
                                                self.limits.timeout)
                try:
                    result.status, result.reason = response.status, response.reason
                    if response.status in REDIRECT_STATUSES:
                        target = _redirect_target(current, response)
                        result.redirects.append((response.status, target))
                        permanent = permanent and response.status in PERMANENT_REDIRECTS
                        current = target
                        _drain(response, deadline)
                        continue
                    self._finish(result, response, deadline)
                finally:
                    client.release(conn, response)
            if result.redirects and permanent:
                result.moved_to = result.final_url
            return
        raise FetchError(f"more than {self.limits.max_redirects} redirects (last to {current}); "
                         "check the source's url")

    def _finish(self, result: FetchResult, response: Response, deadline: float) -> None:
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
    scheme = parts.scheme.lower()
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


def _drain(response: Response, deadline: float) -> None:
    """Read a body we do not use (a 304's is empty) so the connection goes back to the pool.

    A connection whose response was not read to the end cannot carry the
    next request: an unchanged refresh would pay a new TCP connection for
    every feed. A large or broken body is given up on; its connection closes.
    """
    try:
        read_body(response, DRAIN_LIMIT, deadline)
    except (FetchError, *NETWORK_ERRORS):
        pass


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _checked_scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"refused to fetch {url!r}: only http and https URLs are fetched")
    return scheme


def _redirect_target(current: str, response: Response) -> str:
    location = response.headers.get("location", "").strip()
    if not location:
        raise FetchError(f"HTTP {response.status} redirect without a Location header from {current}")
    return urljoin(current, location)


class _translate_errors:
    """Turn socket, http.client and netguard exceptions into one-line FetchErrors naming the URL."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, FetchError):
            return False
        if isinstance(exc, BlockedAddress):
            raise FetchError(str(exc)) from None
        if isinstance(exc, TimeoutError):
            what = "the total timeout ran out" if isinstance(exc, DeadlineExceeded) else "no answer in time"
            raise FetchError(f"timed out after {self.timeout:g}s fetching {self.url} "
                             f"({what}); the server is slow or down") from None
        if isinstance(exc, ValueError):  # http.client refuses a header value with a line break in it
            raise FetchError(f"could not send the request for {self.url}: {exc}") from None
        if isinstance(exc, NETWORK_ERRORS):
            detail = str(exc) or type(exc).__name__
            raise FetchError(f"network error fetching {self.url}: {detail}") from None
        return False


# --- the body: bounded while streaming, decompressed by us ---


class _Decoder:
    """Content-Encoding -> bytes, never producing more than asked for per step."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
            self._first = True
        else:
            raise FetchError(f"the server used Content-Encoding {encoding!r}, which we did not ask for")

    def feed(self, data: bytes, limit: int) -> bytes:
        if self._inflater is None:
            return data
        try:
            return self._inflater.decompress(data, limit)
        except zlib.error:
            if self.encoding == "deflate" and getattr(self, "_first", False):
                self._first = False  # raw deflate without the zlib header, as some servers send
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, limit)
            raise FetchError(f"the {self.encoding}-compressed body is corrupt") from None
        finally:
            self._first = False

    def flush(self) -> bytes:
        return self._inflater.flush() if self._inflater is not None else b""


def read_body(response: Response, max_size: int, deadline: float) -> bytes:
    """The decoded body, or FetchError once it passes max_size bytes or the deadline."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    declared = response.headers.get("content-length", "")
    too_large = (f"the feed is larger than the {_size(max_size)} limit (fetch.max_body_size); "
                 "nothing from it was stored")
    if not encoding and declared.isdigit() and int(declared) > max_size:
        raise FetchError(too_large)
    decoder = _Decoder(encoding)
    parts: list[bytes] = []
    total = 0
    for chunk in _raw_chunks(response, deadline):
        piece = decoder.feed(chunk, max_size - total + 1)
        total += len(piece)
        if total > max_size:
            raise FetchError(too_large + (f" (after {encoding} decompression)" if encoding else ""))
        parts.append(piece)
    tail = decoder.flush()
    if total + len(tail) > max_size:
        raise FetchError(too_large)
    parts.append(tail)
    return b"".join(parts)


def _raw_chunks(response: Response, deadline: float) -> Iterator[bytes]:
    for chunk in response.chunks():
        if time.monotonic() > deadline:
            raise FetchError("the download took longer than the total timeout (fetch.timeout); "
                             "the server is too slow")
        yield chunk


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
