"""urllib3 under our network policy: the connections http.py sends its requests on.

urllib3 does the protocol (keep-alive, HTTP/1.0, `Connection: close`,
chunked bodies, idle connections the server dropped). This module adds the
two things it does not know about:

- every TCP connection goes through netguard, so the address that was
  checked is the address connected to (TLS still verifies the certificate
  against the host name);
- a fetch's total deadline: a watchdog thread shuts down the fetch's
  sockets when its time is up, which wakes a read blocked on a server that
  drips one byte a second (socket timeouts alone restart at every byte).

The pools never read proxy settings from the environment: urllib3's
PoolManager does not look at them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from aggregator.ingest.netguard import NetPolicy, open_connection

if TYPE_CHECKING:
    import ssl

MAX_HOSTS = 256  # hosts whose idle connections are kept; the least recently used beyond that are closed

# Our own line reports every failed fetch once; urllib3's retry warnings would repeat it.
logging.getLogger("urllib3").setLevel(logging.ERROR)


# --- the total deadline ---


@dataclass(eq=False)
class Deadline:
    """The sockets one fetch uses, shut down together once `at` (monotonic seconds) has passed."""

    at: float
    sockets: list[socket.socket] = field(default_factory=list)
    expired: bool = False
    finished: bool = False

    def seconds_left(self) -> float:
        return self.at - time.monotonic()


class Watchdog:
    """One thread for the whole process that enforces every fetch's deadline."""

    def __init__(self) -> None:
        self._wakeup = threading.Condition()
        self._queue: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._current = threading.local()

    def deadline(self, at: float) -> DeadlineScope:
        """Bound the sockets this thread opens or reuses until the `with` block ends, by `at`."""
        return DeadlineScope(self, Deadline(at))

    def _begin(self, deadline: Deadline) -> Deadline:
        with self._wakeup:
            heapq.heappush(self._queue, (deadline.at, next(self._order), deadline))
            self._start()
            if self._queue[0][2] is deadline:  # the new earliest: the watchdog's wait must be shortened
                self._wakeup.notify()
        self._current.deadline = deadline
        return deadline

    def _end(self, deadline: Deadline) -> None:
        self._current.deadline = None
        with self._wakeup:  # after this, the watchdog never touches these sockets again
            deadline.finished = True

    def current(self) -> Deadline | None:
        return getattr(self._current, "deadline", None)

    def watch(self, sock: socket.socket) -> None:
        """Put a socket under this thread's deadline; one whose time is already up is shut down now."""
        deadline = self.current()
        if deadline is None:
            return
        # No lock: the watchdog marks a deadline expired before it shuts its sockets, so a socket
        # added too late for that pass sees the mark here and is shut by this thread.
        deadline.sockets.append(sock)
        if deadline.expired:
            _shut(sock)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="fetch-deadlines", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._wakeup:
            while True:
                while self._queue and self._queue[0][2].finished:
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._wakeup.wait()
                    continue
                wait = self._queue[0][0] - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                _at, _n, deadline = heapq.heappop(self._queue)
                deadline.expired = True
                for sock in deadline.sockets:
                    _shut(sock)


class DeadlineScope:
    """`with WATCHDOG.deadline(at) as deadline:` a plain class, as every fetch enters one."""

    __slots__ = ("_watchdog", "_deadline")

    def __init__(self, watchdog: Watchdog, deadline: Deadline) -> None:
        self._watchdog, self._deadline = watchdog, deadline

    def __enter__(self) -> Deadline:
        return self._watchdog._begin(self._deadline)

    def __exit__(self, *exc: object) -> None:
        self._watchdog._end(self._deadline)


def _shut(sock: socket.socket) -> None:
    """Shut the connection down at the TCP level, which wakes a blocked read or write in another thread.

    socket.socket.shutdown, not the SSLSocket override: that one also drops
    the TLS object another thread may be reading with.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


WATCHDOG = Watchdog()


# --- connections that only reach what netguard allows ---


class _Guarded:
    """Mixed into urllib3's connection classes: open through netguard, live under the fetch's deadline."""

    policy: NetPolicy
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        deadline = WATCHDOG.current()
        timeout = self.timeout  # type: ignore[attr-defined]
        if deadline is not None:
            left = deadline.seconds_left()
            if left <= 0:
                raise ConnectTimeoutError(self, "the total timeout ran out before connecting")
            timeout = left if not isinstance(timeout, (int, float)) else min(timeout, left)
        try:
            sock = open_connection(self._dns_host, self.port, self.policy, timeout)  # type: ignore[attr-defined]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connecting to {self.host} timed out") from exc  # type: ignore
        except OSError as exc:  # refused, unreachable, cannot resolve: urllib3's connection errors
            raise NewConnectionError(self, str(exc)) from exc
        WATCHDOG.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept connection, now serving this fetch
            WATCHDOG.watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]
        _ack_at_once(self.sock)


def _ack_at_once(sock: socket.socket | None) -> None:
    """Acknowledge the response's first segment at once, not after the delayed-ACK timer (40 ms).

    A server that writes its headers and its body separately without
    TCP_NODELAY (Python's http.server does) holds the body back until the
    headers are acknowledged; on a kept connection Linux delays that ACK, so
    every reused connection would pay 40 ms per response. TCP_QUICKACK is
    Linux's and lasts until the kernel's next decision, so it is set again
    for every request.
    """
    if sock is not None and QUICKACK is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        except OSError:
            pass


QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    def __init__(self, *args: Any, policy: NetPolicy, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.policy = policy


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    def __init__(self, *args: Any, policy: NetPolicy, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.policy = policy


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def pool_manager(policy: NetPolicy, tls: ssl.SSLContext | None, per_host: int) -> PoolManager:
    """Connections for one network policy and one scheme, kept per host.

    A manager for plain http has no TLS context and only the http pool
    class, so it can never open an https connection: it fails closed
    rather than skip verification. `per_host` connections are kept per host,
    as many as the fetch may run at once toward it.
    """
    kwargs: dict[str, Any] = {"num_pools": MAX_HOSTS, "maxsize": max(per_host, 1), "block": False}
    if tls is not None:
        kwargs["ssl_context"] = tls
    manager = PoolManager(**kwargs)
    scheme = "https" if tls is not None else "http"
    pool_class = GuardedHTTPSPool if tls is not None else GuardedHTTPPool
    manager.pool_classes_by_scheme = {scheme: partial(pool_class, policy=policy)}
    return manager
