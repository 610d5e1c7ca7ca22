"""Polite HTTP fetching of feeds: a URL, a network policy and stored validators in, a FetchResult out.

With transport.py (connections) and the http_* modules (the request, the
body, the headers, the errors), the only code that speaks HTTP. transport.py
gives urllib3 connections that only reach addresses netguard allows and
that live under a total deadline; this module decides what to send and what
a response means.

What "polite" and "robust" mean here:

- conditional GET with the stored ETag / Last-Modified, so an unchanged
  feed costs the publisher a 304 and us nothing;
- redirects followed by our code, so every hop is checked (scheme, and the
  address it resolves to, through netguard), and so we know whether the
  whole chain was permanent (301/308: the caller updates the stored URL);
- one total deadline over connect, TLS, headers and body, and a body limit
  enforced while the bytes stream in, counted *after* decompression
  (http_body.py);
- a User-Agent that names the project and its version, or the one the
  config sets (`[fetch] user_agent`).

Failures are values (FetchResult.error), never exceptions: a network
problem is the source's problem, not the run's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from urllib3 import BaseHTTPResponse, PoolManager, Retry, Timeout

from aggregator import ingest
from aggregator.ingest.http_body import drain, read_body
from aggregator.ingest.http_errors import FetchError, translate_errors
from aggregator.ingest.http_headers import freshness_seconds, retry_after_seconds
from aggregator.ingest.http_request import (
    USER_AGENT, Login, conditional_headers, redirect_target, wire_request, with_login,
)
from aggregator.ingest.netguard import NetPolicy
from aggregator.ingest.transport import WATCHDOG, Deadline, pool_manager

if TYPE_CHECKING:
    import ssl

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
PERMANENT_REDIRECTS = {301, 308}
# A request whose connection fails before the response starts is sent once more, on a new
# connection: usually a kept one the server closed just after we checked it. A GET is safe to
# repeat; connect failures, timeouts past the deadline and everything after the head are not retried.
RETRY_REUSED = Retry(total=1, connect=0, read=1, redirect=False, status=0, other=0, raise_on_status=False)


@dataclass(frozen=True)
class FetchLimits:
    """How long and how large one fetch may be, and how many redirects it follows."""

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

        Plain-http URLs get one with no TLS at all: loading the CA bundle is
        a cost a refresh of plain-http feeds does not need to pay.
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
        """One TLS context (tls.py) for every https manager of this Fetcher: the CA bundle is read once."""
        if self._tls is None:
            self._tls = ingest.tls.client_context(self.ca_file)
        return self._tls

    def fetch(self, url: str, policy: NetPolicy, etag: str | None = None,
              last_modified: str | None = None, login: Login | None = None) -> FetchResult:
        """GET url (conditionally), following redirects by hand. Never raises for network trouble."""
        started = time.monotonic()
        result = FetchResult(url=url, final_url=url)
        headers = {"User-Agent": self.user_agent, **conditional_headers(etag, last_modified)}
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
            with translate_errors(current, self.limits.timeout, deadline):
                response = self._send(current, policy, with_login(headers, login, current, result.url), deadline)
                try:
                    result.status, result.reason = response.status, response.reason or ""
                    if response.status in REDIRECT_STATUSES:
                        target = redirect_target(current, response)
                        result.redirects.append((response.status, target))
                        permanent = permanent and response.status in PERMANENT_REDIRECTS
                        current = target
                        drain(response, deadline)
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
        wire = wire_request(url, headers)
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
            drain(response, deadline)
