"""Real HTTP servers for the fetch tests' server matrix (tests/test_server_matrix.py).

Three kinds, each started on a free port of a 127.0.0.x address and stopped by the test:

- `WireServer`: an HTTP/1.1 server written on plain sockets, in threads, so a test
  controls every byte: keep-alive or `Connection: close`, idle connections closed
  after a delay, Content-Length, chunked or close-delimited bodies, gzip, and bodies
  cut short by a FIN or a TCP RST. It records every request with its headers as
  received and the server-side connection it came on.
- `StdlibServer`: `python -m http.server --bind HOST PORT --directory DIR` as a
  subprocess (HTTP/1.0: one response per connection; Last-Modified, no ETag; a 304
  with no validators). Its request log (stderr) is read back.
- `Nginx`: Debian's nginx on its own config in a temp dir (pid, logs, temp paths
  there), with real ETag, Last-Modified, 304s and a gzip location. Its access log
  (one JSON object per request) names the connection and the conditional headers.

All three give `hits()`: the requests they saw, oldest first, as `Hit`s.
Feeds to serve come from `rss_feed` / `atom_feed` / `json_feed`: distinct,
deterministic text (dedup must not merge them) and their titles.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Callable

INSTALL_HINT = "run `bash scripts/install-test-tools.sh` (as root, or with sudo) to install it"


# --- what a server saw ---


@dataclass
class Hit:
    path: str
    status: int | None = None
    headers: dict[str, str] | None = None  # lower-case names; None: this server's log does not show them
    connection: int | None = None  # the server's number for the TCP connection it came on
    raw_headers: list[tuple[str, str]] = field(default_factory=list)  # as received, repeats included
    on_connection: int = 1  # 1 for a connection's first request, 2 for the next...
    sent: dict[str, str] = field(default_factory=dict)  # nginx: response headers it logged

    @property
    def conditional(self) -> bool:
        """Whether the request carried If-None-Match or If-Modified-Since (None: not known)."""
        return bool(self.headers and ("if-none-match" in self.headers or "if-modified-since" in self.headers))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_listening(host: str, port: int, proc: subprocess.Popen, what: str, log: Path,
                   timeout: float = 10.0) -> None:
    """Until something accepts on host:port; the process's log in the error if it died first."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}: {_tail(log)}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:g}s: {_tail(log)}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- a server written on sockets ---


@dataclass
class Answer:
    """What WireServer sends for one request, and how it frames and ends the body."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    framing: str = "length"  # "length" (Content-Length), "chunked", or "close" (the body ends at the FIN)
    chunk_sizes: tuple[int, ...] = (4096,)  # chunked: sizes used in turn
    chunk_extension: str = ""  # chunked: ";name=value" after every chunk size
    trailers: dict[str, str] = field(default_factory=dict)  # chunked: header lines after the last chunk
    cut_at: int | None = None  # send this many bytes of the framed body, then close cleanly (FIN)
    reset_at: int | None = None  # send this many bytes of the framed body, then reset (RST, SO_LINGER 0)
    drip: float = 0.0  # seconds between body bytes (one byte per send)
    drop: str = ""  # "fin" or "rst": close without answering, as a server whose idle timer just fired

    def framed(self) -> bytes:
        if self.status == 304 or self.status < 200 or self.status == 204:
            return b""
        if self.framing != "chunked":
            return self.body
        out, sizes, at, n = [], self.chunk_sizes, 0, 0
        while at < len(self.body):
            size = sizes[n % len(sizes)]
            piece = self.body[at:at + size]
            out.append(b"%x%s\r\n%s\r\n" % (len(piece), self.chunk_extension.encode(), piece))
            at, n = at + size, n + 1
        out.append(b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in self.trailers.items()) + b"\r\n")
        return b"".join(out)


Route = Callable[[Hit], Answer]
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 304: "Not Modified", 307: "Temporary Redirect",
           308: "Permanent Redirect", 404: "Not Found"}


class WireServer:
    """HTTP/1.1 on a listening socket; one thread per connection.

    mode "keep-alive": connections stay open between requests (until `idle_timeout`
    seconds pass without one, if set); "close": every response says
    `Connection: close` and the connection is closed after it.
    """

    FIRST_REQUEST_WAIT = 10.0  # a new connection's first request: generous, as real servers are

    def __init__(self, host: str = "127.0.0.1", mode: str = "keep-alive", idle_timeout: float | None = None):
        assert mode in ("keep-alive", "close")
        self.mode, self.idle_timeout = mode, idle_timeout
        self.routes: dict[str, Answer | Route] = {}
        self.requests: list[Hit] = []
        self.connections = 0
        self.idle_closed = 0  # connections this server closed after idle_timeout without a request
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"wire-{host}")

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def hits(self, path: str | None = None) -> list[Hit]:
        return [h for h in list(self.requests) if path is None or h.path == path]

    def __enter__(self) -> "WireServer":
        self._thread.start()
        return self

    def wait_idle_closed(self, count: int, timeout: float = 5.0) -> None:
        """Until the server has closed `count` idle connections (idle_timeout)."""
        give_up = time.monotonic() + timeout
        while self.idle_closed < count:
            assert time.monotonic() < give_up, f"the server closed {self.idle_closed} idle connections, not {count}"
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _peer = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer, served, close = b"", 0, True
        try:
            while not self._stopped.is_set():
                conn.settimeout(self.FIRST_REQUEST_WAIT if served == 0 or self.idle_timeout is None
                                else self.idle_timeout)
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return  # the client closed it
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                served += 1
                hit = _parse_request(head, number, served)
                self.requests.append(hit)
                route = self.routes.get(hit.path)
                answer = route(hit) if callable(route) else route or Answer(404, b"not here")
                hit.status = None if answer.drop else answer.status
                close = self._send(conn, answer, hit)
                if close is None:
                    return  # reset: the socket is gone already
                if close:
                    break
        except TimeoutError:
            if served:
                with self._lock:
                    self.idle_closed += 1
        except (OSError, ValueError):  # the client reset it, or the server is stopping
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
            if close is not None:
                try:
                    conn.shutdown(socket.SHUT_WR)  # a FIN, not a reset: the request was read
                except OSError:
                    pass
                conn.close()

    def _send(self, conn: socket.socket, answer: Answer, hit: Hit) -> bool | None:
        """Send the answer; True if the connection is to be closed now, None if it was reset."""
        if answer.drop:
            if answer.drop == "rst":
                _reset(conn)
                return None
            return True
        body = answer.framed()
        # A body cut short is not announced: the server meant to keep the connection (or crashed).
        closing = (self.mode == "close" or answer.framing == "close"
                   or (hit.headers or {}).get("connection", "").lower() == "close")
        lines = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Whatever')}",
                 f"Date: {formatdate(usegmt=True)}", "Server: wire/1"]
        given = {k.lower() for k in answer.headers}
        lines += [f"{k}: {v}" for k, v in answer.headers.items()]
        if answer.framing == "chunked" and answer.status != 304:
            lines.append("Transfer-Encoding: chunked")
        elif answer.framing == "length" and "content-length" not in given and answer.status != 304:
            lines.append(f"Content-Length: {len(answer.body)}")
        if closing:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if answer.reset_at is not None:
            conn.sendall(head + body[:answer.reset_at])
            time.sleep(0.05)  # the client is reading the body when the reset comes
            _reset(conn)
            return None
        if answer.cut_at is not None:
            conn.sendall(head + body[:answer.cut_at])
            return True
        if answer.drip:
            conn.sendall(head)
            for byte in body:
                if self._stopped.wait(answer.drip):
                    return True
                conn.sendall(bytes([byte]))
            return closing
        conn.sendall(head + body)
        return closing


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _parse_request(head: bytes, connection: int, on_connection: int) -> Hit:
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    _method, target, _version = request_line.split(" ", 2)
    raw = []
    for line in header_lines:
        name, _, value = line.partition(":")
        raw.append((name.strip(), value.strip()))
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Hit(target, None, headers, connection, raw, on_connection)


# --- feeds with validators, as WireServer routes ---


def feed_route(body: bytes, *, etag: str | None = '"v1"', last_modified: str | None = "Tue, 03 Jun 2025 09:30:00 GMT",
               content_type: str = "application/rss+xml; charset=utf-8", bare_304: bool = False,
               encoding: str = "", **answer: object) -> Route:
    """A feed answered 200, or 304 to a request whose If-None-Match / If-Modified-Since matches.

    `bare_304`: the 304 carries no ETag or Last-Modified (allowed, and common).
    `encoding` "gzip": the body is sent gzip-compressed (only to a client that accepts it).
    Other keywords go to every 200 Answer (framing, cut_at, reset_at...).
    """
    validators = {k: v for k, v in (("ETag", etag), ("Last-Modified", last_modified)) if v}
    packed = gzip.compress(body, mtime=0) if encoding == "gzip" else body

    def route(hit: Hit) -> Answer:
        sent = hit.headers or {}
        if "if-none-match" in sent:
            fresh = etag is not None and etag in [t.strip() for t in sent["if-none-match"].split(",")]
        else:
            fresh = last_modified is not None and sent.get("if-modified-since") == last_modified
        if fresh:
            return Answer(304, headers={} if bare_304 else dict(validators))
        if encoding and encoding not in sent.get("accept-encoding", ""):
            return Answer(200, body, {"Content-Type": content_type, **validators}, **answer)
        extra = {"Content-Encoding": encoding} if encoding else {}
        return Answer(200, packed, {"Content-Type": content_type, **validators, **extra}, **answer)

    return route


def redirect(status: int, location: str) -> Answer:
    return Answer(status, b"", {"Location": location})


def start_on_a_free_port(host: str, start: Callable[[int], subprocess.Popen], name: str,
                         log: Path) -> tuple[int, subprocess.Popen]:
    """(port, process) of a server `start(port)` launched on a free port, once it listens.

    A free port can be taken by someone else before the server binds it: three tries.
    """
    for attempt in range(3):
        port = free_port(host)
        proc = start(port)
        try:
            wait_listening(host, port, proc, name, log)
        except RuntimeError:
            _stop(proc)
            if attempt < 2:
                continue
            raise
        return port, proc


class ServerProcess:
    """A real server in a subprocess of its own: its address, and stopping it."""

    host: str
    port: int
    proc: subprocess.Popen | None

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            _stop(self.proc)


# --- python -m http.server ---


class StdlibServer(ServerProcess):
    """Python's own file server as a real subprocess (HTTP/1.0; closes after each response)."""

    def __init__(self, directory: Path, log: Path, host: str = "127.0.0.1"):
        self.directory, self.log, self.host = directory, log, host
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "StdlibServer":
        def start(port: int) -> subprocess.Popen:
            with self.log.open("ab") as log:
                return subprocess.Popen(
                    [sys.executable, "-m", "http.server", "--bind", self.host, str(port),
                     "--directory", str(self.directory)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)

        self.port, self.proc = start_on_a_free_port(self.host, start, "python -m http.server", self.log)
        return self

    def hits(self, path: str | None = None) -> list[Hit]:
        """From its log lines: `127.0.0.1 - - [date] "GET /feed.xml HTTP/1.1" 304 -`."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"GET ' not in line:
                continue
            request, _, rest = line.partition('"GET ')[2].partition('"')
            target = request.rsplit(" ", 1)[0]
            status = rest.split()[0]
            if path is None or target == path:
                found.append(Hit(target, int(status) if status.isdigit() else None))
        return found


# --- nginx ---

NGINX_CONF = """\
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    types {{ application/rss+xml xml; application/atom+xml atom; application/feed+json json; }}
    default_type application/octet-stream;
    log_format matrix escape=json '{{"connection":$connection,"on_connection":$connection_requests,'
        '"status":$status,"path":"$uri","if_none_match":"$http_if_none_match",'
        '"if_modified_since":"$http_if_modified_since","accept_encoding":"$http_accept_encoding",'
        '"content_encoding":"$sent_http_content_encoding","transfer_encoding":"$sent_http_transfer_encoding"}}';
    access_log {dir}/access.log matrix;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_timeout 65;
    server {{
        listen {host}:{port};
        root {root};
        location /gz/ {{
            gzip on;
            gzip_min_length 1;
            gzip_types application/rss+xml application/atom+xml application/feed+json;
        }}
        location /lm/ {{
            etag off;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                            if os.access(p, os.X_OK)), None)
    if found is None:
        raise RuntimeError(f"nginx is not installed: {INSTALL_HINT}")
    return found


class Nginx(ServerProcess):
    """nginx serving `root`, with everything it writes (pid, logs, temp files) in `workdir`.

    /gz/... is served gzip-compressed (chunked), /lm/... with Last-Modified but no ETag,
    the rest with both.
    """

    def __init__(self, root: Path, workdir: Path, host: str = "127.0.0.1"):
        self.root, self.dir, self.host = root, workdir, host
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.access_log = workdir / "access.log"

    def __enter__(self) -> "Nginx":
        binary = nginx_binary()
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        user = ""
        if os.geteuid() == 0:  # as root the workers would switch to `nobody`, who cannot read a 0700 tmp dir
            import grp
            import pwd

            user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
        log = self.dir / "error.log"
        conf = self.dir / "nginx.conf"

        def start(port: int) -> subprocess.Popen:
            conf.write_text(NGINX_CONF.format(user=user, dir=self.dir, host=self.host, port=port,
                                              root=self.root), encoding="utf-8")
            return subprocess.Popen([binary, "-p", str(self.dir), "-c", str(conf), "-e", str(log),
                                     "-g", "daemon off;"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        self.port, self.proc = start_on_a_free_port(self.host, start, "nginx", log)
        return self

    def hits(self, path: str | None = None) -> list[Hit]:
        found = []
        if not self.access_log.exists():
            return found
        for line in self.access_log.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            headers = {name.replace("_", "-"): entry[name]
                       for name in ("if_none_match", "if_modified_since", "accept_encoding") if entry[name]}
            hit = Hit(entry["path"], int(entry["status"]), headers, int(entry["connection"]),
                      on_connection=int(entry["on_connection"]),
                      sent={"content-encoding": entry["content_encoding"],
                            "transfer-encoding": entry["transfer_encoding"]})
            if path is None or hit.path == path:
                found.append(hit)
        return found

    def wait_for_log(self, count: int, timeout: float = 5.0) -> list[Hit]:
        """nginx writes a request's log line after its response: wait until `count` lines are there."""
        give_up = time.monotonic() + timeout
        while True:
            hits = self.hits()
            if len(hits) >= count or time.monotonic() > give_up:
                return hits
            time.sleep(0.01)


# --- feeds ---

WORDS = ("harbour ferry council budget river school election bridge market festival museum station "
         "railway farmers weather storm library hospital court minister tariff grain export port "
         "energy wind solar housing tenant mayor police theatre orchestra football stadium airport "
         "cargo fishing coast island valley mountain forest village district bakery brewery factory").split()


def _paragraphs(rng: random.Random, size: int) -> list[str]:
    out, total = [], 0
    while total < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
        paragraph = " ".join([sentence] + [" ".join(rng.choice(WORDS) for _ in range(12)) + "."
                                           for _ in range(3)])
        out.append(paragraph)
        total += len(paragraph) + 7
    return out


def _items(label: str, count: int, size: int) -> list[tuple[str, str, str, str]]:
    """(title, guid, date, html) for `count` items whose text is about `size` bytes in all."""
    rng = random.Random(label)  # the same feed every run, and no two feeds alike
    per_item = max(size // max(count, 1), 200)
    items = []
    for n in range(count):
        title = f"{label}: story {n + 1} about the {rng.choice(WORDS)} {rng.choice(WORDS)}"
        html = "".join(f"<p>{p}</p>" for p in _paragraphs(rng, per_item))
        date = formatdate(1748937600 - 3600 * n, usegmt=True)  # hourly from 2025-06-03 08:00 UTC
        items.append((title, f"{label.lower().replace(' ', '-')}-{n + 1}", date, html))
    return items


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rss_feed(label: str, count: int = 3, size: int = 2000, tail: str = "") -> tuple[bytes, list[str]]:
    """An RSS 2.0 feed of `count` items (about `size` bytes of text) and its titles.

    `tail` is appended after the document, as caches add (`<!-- cached ... -->`).
    """
    items = _items(label, count, size)
    entries = "".join(
        f"<item><title>{_escape(t)}</title><link>https://news.example/{g}</link><guid isPermaLink=\"false\">{g}"
        f"</guid><pubDate>{d}</pubDate><description>{_escape(h)}</description></item>\n" for t, g, d, h in items)
    doc = (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{_escape(label)}</title>'
           f"<link>https://news.example/</link><description>{_escape(label)} news</description>\n{entries}"
           f"</channel></rss>\n{tail}")
    return doc.encode("utf-8"), [t for t, *_ in items]


def atom_feed(label: str, count: int = 3, size: int = 2000) -> tuple[bytes, list[str]]:
    items = _items(label, count, size)
    entries = "".join(
        f"<entry><title>{_escape(t)}</title><link href=\"https://news.example/{g}\"/><id>urn:x:{g}</id>"
        f"<updated>2025-06-03T0{n % 10}:00:00Z</updated><content type=\"html\">{_escape(h)}</content></entry>\n"
        for n, (t, g, d, h) in enumerate(items))
    doc = (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
           f"<title>{_escape(label)}</title><id>urn:x:{_escape(label)}</id><updated>2025-06-03T09:00:00Z</updated>"
           f"<author><name>Desk</name></author>\n{entries}</feed>\n")
    return doc.encode("utf-8"), [t for t, *_ in items]


def json_feed(label: str, count: int = 3, size: int = 2000) -> tuple[bytes, list[str]]:
    items = _items(label, count, size)
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": label,
           "items": [{"id": g, "url": f"https://news.example/{g}", "title": t, "content_html": h,
                      "date_published": "2025-06-03T09:00:00Z"} for t, g, d, h in items]}
    return json.dumps(doc).encode("utf-8"), [t for t, *_ in items]
