"""Static HTTP for feeds/: the only files this server will ever send are inside it.

Stdlib `ThreadingHTTPServer`, because feed readers poll small files and the
daemon must not need a web server in front of it. Every request path is
decoded once, split into segments, and refused if any segment could climb
out ('..', hidden names, NUL, backslash); the resolved file must still be
inside feeds/, so a symlink pointing out is refused too. Readers that poll
get ETag / Last-Modified and a 304 when nothing changed; gzip when they ask.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import socket
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

log = logging.getLogger("aggregator.app.server")

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
MAX_TARGET = 2048          # longer request targets get 414
MAX_FILE = 64 * 1024 * 1024  # we publish feeds, not videos
GZIP_MIN = 256
CACHE_ENTRIES = 128
REQUEST_TIMEOUT = 10.0     # seconds a client may stall before we drop it
RETRY_AFTER_FIRST_PUBLISH = 5  # seconds, for a feed asked for before the first publish

Health = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Representation:
    """One file's bytes as served, with validators computed once per version."""

    body: bytes
    gzipped: bytes | None
    etag: str  # without quotes
    last_modified: str
    mtime: float
    content_type: str


class FileCache:
    """Small LRU of file versions keyed by (path, mtime, size, inode): a replaced file is a new key."""

    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._items: OrderedDict[tuple, Representation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Representation | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        if stat.st_size > MAX_FILE:
            return None
        key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        representation = _read(path, stat)
        if representation is None:
            return None
        with self._lock:
            self._items[key] = representation
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return representation


def _read(path: Path, stat: os.stat_result) -> Representation | None:
    try:
        body = path.read_bytes()
    except OSError:
        return None
    content_type = content_type_for(path)
    compressible = content_type.startswith(("text/", "application/")) and len(body) >= GZIP_MIN
    return Representation(
        body=body,
        gzipped=gzip.compress(body, 6, mtime=0) if compressible else None,
        etag=hashlib.sha256(body).hexdigest()[:32],
        last_modified=formatdate(stat.st_mtime, usegmt=True),
        mtime=stat.st_mtime,
        content_type=content_type,
    )


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def resolve_request_path(root: Path, target: str) -> Path | None:
    """The file under root that a request target names, or None if it names nothing we serve.

    Decoding happens exactly once, and the decoded segments are checked, so
    '%2e%2e', '..%2f' and friends are caught after decoding; '%252e' stays a
    literal name that does not exist.
    """
    if len(target) > MAX_TARGET:
        return None
    if target.startswith(("http://", "https://")):
        target = urlsplit(target).path or "/"
    if not target.startswith("/"):
        return None
    raw_path = target.split("?", 1)[0].split("#", 1)[0]
    decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    if "\x00" in decoded or "\\" in decoded:
        return None
    segments = [s for s in decoded.split("/") if s]
    if any(s in (".", "..") or s.startswith(".") or ":" in s for s in segments):
        return None
    root = root.resolve()
    candidate = root.joinpath(*segments) if segments else root
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if resolved != root and root not in resolved.parents:
        return None  # a symlink that points out of feeds/
    if resolved.is_dir():
        resolved = resolved / "index.html"
        if not resolved.is_file():
            return None
    return resolved if resolved.is_file() else None


class FeedRequestHandler(BaseHTTPRequestHandler):
    server_version = "aggregator"
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line
    timeout = REQUEST_TIMEOUT

    server: "FeedServer"

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _refuse_method(self) -> None:
        self._send_plain(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _serve(self, send_body: bool) -> None:
        if self._has_body():
            self.close_connection = True
            self._send_plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "requests must not have a body\n",
                             send_body=send_body)
            return
        if len(self.path) > MAX_TARGET:
            self.close_connection = True
            self._send_plain(HTTPStatus.REQUEST_URI_TOO_LONG, "request target too long\n", send_body=send_body)
            return
        if self.path.split("?", 1)[0] == "/healthz":
            self._send_health(send_body)
            return
        if self.path.split("?", 1)[0] == "/metrics" and self.server.metrics is not None:
            content_type, body = self.server.metrics()
            self._send_plain(HTTPStatus.OK, body.decode("utf-8"), {"Content-Type": content_type,
                                                                   "Cache-Control": "no-store"}, send_body)
            return
        try:
            path = resolve_request_path(self.server.root, self.path)
        except UnicodeDecodeError:
            path = None
        representation = self.server.cache.get(path) if path else None
        if representation is None and not self.server.published():
            # Right after start the feeds are not written yet: "try again soon", not "gone",
            # or a feed reader subscribing now may mark the feed dead.
            self._send_plain(HTTPStatus.SERVICE_UNAVAILABLE, "the feeds are being published; retry shortly\n",
                             {"Retry-After": str(RETRY_AFTER_FIRST_PUBLISH)}, send_body=send_body)
            return
        if representation is None:
            self._send_plain(HTTPStatus.NOT_FOUND, "not found\n", send_body=send_body)
            return
        self._send_file(representation, send_body)

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length", "0").strip()
        return bool(self.headers.get("Transfer-Encoding")) or not length.isdigit() or int(length) > 0

    def _send_file(self, rep: Representation, send_body: bool) -> None:
        use_gzip = rep.gzipped is not None and accepts_gzip(self.headers.get("Accept-Encoding", ""))
        etag = f'"{rep.etag}-gz"' if use_gzip else f'"{rep.etag}"'
        headers = {"ETag": etag, "Last-Modified": rep.last_modified,
                   "Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding"}
        if not_modified(self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"),
                        rep.etag, rep.mtime):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        body = rep.gzipped if use_gzip else rep.body
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", rep.content_type)
        self.send_header("Content-Length", str(len(body)))
        if use_gzip:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_health(self, send_body: bool) -> None:
        """The health report as JSON: 200, or 503 when its status is "failing" (storage or publishing)."""
        try:
            report = self.server.health()
        except Exception as exc:  # the database being unreadable is exactly what /healthz must report
            log.debug("health report failed", exc_info=True)
            report = {"status": "failing", "reason": f"{type(exc).__name__}: {exc}", "error": str(exc)}
        failing = report.get("status") == "failing"
        status = HTTPStatus.SERVICE_UNAVAILABLE if failing else HTTPStatus.OK
        body = json.dumps(report, ensure_ascii=False, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_plain(self, status: HTTPStatus, text: str, extra: dict[str, str] | None = None,
                    send_body: bool = True) -> None:
        body = text.encode("utf-8")
        headers = {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and _qvalue(q[2:]) == 0)
    return False


def _qvalue(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str, mtime: float) -> bool:
    """RFC 9110: If-None-Match wins (weak comparison); If-Modified-Since only without it."""
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        if "*" in tags:
            return True
        bare = {t.removeprefix("W/").strip('"').removesuffix("-gz") for t in tags}
        return etag in bare
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(mtime) <= since
    return False


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], root: Path, health: Health, family: int = socket.AF_INET,
                 published: Callable[[], bool] = lambda: True, metrics: Callable[[], tuple[str, bytes]] | None = None):
        self.address_family = family
        self.root = Path(root)
        self.health = health
        self.published = published  # False until the first publish has run
        self.metrics = metrics  # (content type, body) of the Prometheus exposition, served at /metrics
        self.cache = FileCache()
        super().__init__(address, FeedRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response is routine, not a traceback on stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, error)
            return
        super().handle_error(request, client_address)

    def shutdown(self) -> None:
        """Stop serve_forever and wait for it, at once, although it polls without a timeout.

        An idle daemon should not wake twice a second for nothing, so the poll
        has no timeout, and this wakes it: shutting the listening socket for
        reading ends the poll (Linux); where that does not, a connection to
        ourselves does. The loop then sees the stop request.
        """
        stopping = threading.Thread(target=super().shutdown, name="feed-server-stop", daemon=True)
        stopping.start()
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RD)
        while stopping.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(self.server_address[:2], timeout=0.5).close()
            stopping.join(0.1)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


def parse_listen(listen: str) -> tuple[str, int, int]:
    """'127.0.0.1:8080' or '[::1]:8080' -> (host, port, address family)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return host, int(port), family


def make_server(listen: str, root: Path, health: Health,
                published: Callable[[], bool] = lambda: True, metrics: Callable[[], tuple[str, bytes]] | None = None
                ) -> FeedServer:
    """Bind (raising OSError with the address on failure); call serve_forever() to run.

    Until `published()` is true a missing file is 503 with Retry-After, not 404.
    """
    host, port, family = parse_listen(listen)
    try:
        return FeedServer((host, port), root, health, family, published, metrics)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {listen}: {exc.strerror}; "
                                 "change [server] listen or stop what uses it") from None


def start_in_thread(server: FeedServer) -> threading.Thread:
    """Serve on a daemon thread, polling without a timeout (FeedServer.shutdown wakes it)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None},
                              name="feed-server", daemon=True)
    thread.start()
    return thread
