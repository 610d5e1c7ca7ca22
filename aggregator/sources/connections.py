"""Keep-alive HTTP/1.1 connections for http.py, on the standard library's http.client.

http.client parses status lines, headers, chunked bodies and Content-Length
in C-backed buffered reads. What it lacks, and this module adds:

- every TCP connection goes through netguard, so the address that was
  checked is the address connected to;
- no read outlasts the fetch's total deadline: a server dripping one byte
  a second trips it in the headers as in the body, over TLS too;
- idle connections are kept per (scheme, host, port) and reused; one the
  server closed while it sat idle is noticed before it is used.

Why not httpcore (used before): an unchanged refresh of 200 feeds spent
0.23 s in it, where http.client made the same 200 conditional requests in
0.08 s, and importing it (h11, its TLS module, certifi) took about 60 ms of
a 0.45 s command. Redirects, decoding and size limits were ours already.
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Iterator

from ..netguard import NetPolicy, open_connection

if TYPE_CHECKING:
    import ssl

CHUNK = 64 * 1024
_deadline = threading.local()  # this thread's fetch must be done by _deadline.at (monotonic seconds)


class DeadlineExceeded(TimeoutError):
    """The whole fetch's time (fetch.timeout) ran out during a read or write."""


def set_deadline(at: float | None) -> None:
    """Bound every read and write of this thread's connections by `at` (None: per-operation timeouts only)."""
    _deadline.at = at


def _seconds_left(timeout: float | None) -> float | None:
    """The timeout for the next socket operation: its own, cut to what is left of the deadline."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the total timeout (fetch.timeout) ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes for http.client's buffered reader, each recv bounded by the deadline."""

    def __init__(self, sock: socket.socket, timeout: float | None):
        super().__init__()
        self._sock, self._timeout = sock, timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(_seconds_left(self._timeout))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client calls on its `sock`, with reads and writes bounded by the deadline."""

    def __init__(self, sock: socket.socket, timeout: float | None):
        self.raw, self._timeout = sock, timeout

    def makefile(self, mode: str = "rb", *_args, **_kwargs) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self.raw, self._timeout), CHUNK)

    def sendall(self, data: bytes) -> None:
        self.raw.settimeout(_seconds_left(self._timeout))
        self.raw.sendall(data)

    def close(self) -> None:
        self.raw.close()


class Connection(http.client.HTTPConnection):
    """One keep-alive connection to one (scheme, host, port), opened through netguard."""

    def __init__(self, host: str, port: int, policy: NetPolicy, tls: ssl.SSLContext | None,
                 connect_timeout: float | None, read_timeout: float | None):
        super().__init__(host, port, timeout=read_timeout)
        self.policy, self.tls = policy, tls
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout

    def connect(self) -> None:
        sock = open_connection(self.host, self.port, self.policy, _seconds_left(self.connect_timeout))
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self.read_timeout)

    def stale(self) -> bool:
        """An idle connection with something to read was closed (or garbled) by the server."""
        if self.sock is None:
            return True
        try:
            readable, _, _ = select.select([self.sock.raw], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class Response:
    """A response being read: status, reason, headers by lower-case name, body chunks."""

    def __init__(self, raw: http.client.HTTPResponse):
        self.status: int = raw.status
        self.reason: str = raw.reason or ""
        self.headers: dict[str, str] = {}
        for name, value in raw.getheaders():
            key = name.lower()
            self.headers[key] = f"{self.headers[key]}, {value}" if key in self.headers else value
        self._raw = raw

    def chunks(self) -> Iterator[bytes]:
        while chunk := self._raw.read1(CHUNK):
            yield chunk

    def close(self) -> bool:
        """Stop reading; whether the connection can carry another request.

        It can when the body was read to its end (http.client only notices
        that by itself on a read past it) and the server keeps it open.
        """
        raw = self._raw
        done = raw.isclosed() or (raw.length == 0 and not raw.chunked)
        raw.close()
        return done and not raw.will_close


class ConnectionPool:
    """Idle connections per (host, port) for one network policy and one scheme.

    A pool for plain http has no TLS context at all, so it can never open an
    https connection: it fails closed rather than skip verification.
    """

    def __init__(self, policy: NetPolicy, tls: ssl.SSLContext | None, max_idle: int = 16):
        self.policy, self.tls, self.max_idle = policy, tls, max_idle
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._lock = threading.Lock()

    def request(self, scheme: str, host: str, port: int, target: str, headers: list[tuple[str, str]],
                connect_timeout: float | None, read_timeout: float | None) -> tuple[Connection, Response]:
        """Send a GET and read the response's head; the caller reads the body, then calls release().

        A reused connection that fails before the response starts is replaced
        by a new one once: the server may have closed it after we checked.
        """
        if (scheme == "https") != (self.tls is not None):
            raise ConnectionError(f"an {scheme} request was handed to the pool for the other scheme")
        conn = self._take(host, port)
        if conn is not None:
            try:
                return conn, _exchange(conn, target, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass  # closed by the server since we checked it: once more, on a new connection
        conn = Connection(host, port, self.policy, self.tls, connect_timeout, read_timeout)
        return conn, _exchange(conn, target, headers)

    def release(self, conn: Connection, response: Response) -> None:
        """Keep the connection for the next request if its response was read to the end, else close it."""
        if not response.close() or conn.sock is None:
            conn.close()
            return
        with self._lock:
            idle = self._idle.setdefault((conn.host, conn.port), [])
            if sum(map(len, self._idle.values())) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def _take(self, host: str, port: int) -> Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get((host, port))
                conn = idle.pop() if idle else None
            if conn is None or not conn.stale():
                return conn
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def _exchange(conn: Connection, target: str, headers: list[tuple[str, str]]) -> Response:
    """Send a GET on the connection and read the response's head; a failure closes the connection."""
    try:
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        return Response(conn.getresponse())
    except BaseException:
        conn.close()
        raise
