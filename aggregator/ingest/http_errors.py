"""What went wrong with a fetch, in one line the source's owner can act on.

urllib3, http.client, the socket layer and netguard each raise their own
exceptions, several wrapped in others; `translate_errors` turns them into
one FetchError naming the URL and the innermost cause, and tells a total
timeout from a slow answer and a body cut short from a refused connection.
"""

from __future__ import annotations

import http.client

from urllib3.exceptions import (
    HTTPError, MaxRetryError, NewConnectionError, ProtocolError, SSLError, TimeoutError as Urllib3Timeout,
)

from aggregator.ingest.netguard import BlockedAddress
from aggregator.ingest.transport import Deadline


class FetchError(Exception):
    """A fetch failed in a way the source's owner can act on; str() says how."""


class translate_errors:
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
