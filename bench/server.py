"""Serve a benchmark corpus on 127.0.0.1 with ETag, Last-Modified and 304s.

`python bench/server.py bench/.work/corpus --port 8700 --latency-ms 50`
serves feeds/NNNN.xml from a corpus written by bench/corpus.py. bench/run.py
starts the same server in threads of its own process, one per loopback
host (`HostedCorpus`).

Why its own server: a refresh benchmark is only honest if the server answers
conditional requests the way real publishers do (strong ETag, Last-Modified,
304 with no body), and the latency option shows how much of a run is waiting
on the network rather than CPU. It counts responses by status, so a run can
prove that an unchanged refresh was all 304s.
"""

from __future__ import annotations

import argparse
import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LAST_MODIFIED = 1740830400.0  # 2025-03-01T12:00:00Z, the corpus' fixed "now"


@dataclass(frozen=True)
class Resource:
    data: bytes
    etag: str
    last_modified: str
    content_type: str


def resources(files: dict[str, bytes]) -> dict[str, Resource]:
    """URL path -> what is served for it; the ETag is a hash of the bytes."""
    stamp = formatdate(LAST_MODIFIED, usegmt=True)
    served = {}
    for path, data in files.items():
        kind = "application/atom+xml" if b"<feed" in data[:300] else "application/rss+xml"
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        served[path] = Resource(data, etag, stamp, f"{kind}; charset=utf-8")
    return served


def load_files(root: Path) -> dict[str, bytes]:
    return {"/feeds/" + p.name: p.read_bytes() for p in sorted((root / "feeds").glob("*.xml"))}


def not_modified(resource: Resource, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110: If-None-Match wins when present; otherwise compare dates."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or resource.etag in tags
    if if_modified_since:
        try:
            return parsedate_to_datetime(if_modified_since).timestamp() >= LAST_MODIFIED
        except (TypeError, ValueError):
            return False
    return False


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops connections under 16 concurrent fetchers
    daemon_threads = True


class CorpusServer:
    """A threaded HTTP server for a corpus; start() returns at once, stop() joins."""

    def __init__(self, files: dict[str, bytes], latency: float = 0.0, host: str = "127.0.0.1", port: int = 0):
        self.resources = resources(files)
        self.latency = latency
        self.counts: Counter[int] = Counter()
        self.connections = 0
        self._lock = threading.Lock()
        self.httpd = _Server((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> "CorpusServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="corpus-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join()

    def __enter__(self) -> "CorpusServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take_counts(self) -> Counter[int]:
        """Responses by status since the last call."""
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts

    def take_connections(self) -> int:
        """TCP connections accepted since the last call."""
        with self._lock:
            count, self.connections = self.connections, 0
        return count

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _count(self, status: int) -> None:
        with self._lock:
            self.counts[status] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real feed hosts do

            def setup(self) -> None:  # once per TCP connection: whether clients reuse theirs
                server._connected()
                super().setup()

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self._respond(body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._respond(body=False)

            def _respond(self, body: bool) -> None:
                if server.latency:
                    time.sleep(server.latency)
                resource = server.resources.get(self.path.split("?", 1)[0])
                if resource is None:
                    self._send(404, b"not found\n", {"Content-Type": "text/plain"}, body)
                    return
                headers = {"ETag": resource.etag, "Last-Modified": resource.last_modified,
                           "Cache-Control": "max-age=0"}
                if not_modified(resource, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")):
                    self._send(304, b"", headers, body)
                    return
                self._send(200, resource.data, {**headers, "Content-Type": resource.content_type}, body)

            def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
                server._count(status)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body and status != 304:
                    self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # quiet: thousands of requests
                pass

        return Handler


class HostedCorpus:
    """A corpus spread over N loopback hosts, 127.0.0.1 to 127.0.0.N, one server each.

    Feeds go to hosts in turn (feed i on host i mod N), so a client's per-host
    connection bound acts as it does on the web, where feeds come from many sites.
    """

    def __init__(self, files: dict[str, bytes], hosts: int = 1, latency: float = 0.0):
        if not 1 <= hosts <= 254:
            raise ValueError(f"hosts must be 1-254, not {hosts}")
        self._host_of = {path: n % hosts for n, path in enumerate(files)}
        self.servers = [CorpusServer({p: data for p, data in files.items() if self._host_of[p] == k}, latency,
                                     host=f"127.0.0.{k + 1}") for k in range(hosts)]

    def url(self, path: str) -> str:
        return self.servers[self._host_of[path]].url(path)

    def validators(self) -> list[tuple[str, str, str]]:
        """(url, ETag, Last-Modified) of every feed: what a client that fetched them all once holds."""
        return [(server.url(path), res.etag, res.last_modified)
                for server in self.servers for path, res in server.resources.items()]

    def take_connections(self) -> int:
        """TCP connections accepted by every host since the last call."""
        return sum(server.take_connections() for server in self.servers)

    def take_counts(self) -> Counter[int]:
        """Responses by status over every host since the last call."""
        total: Counter[int] = Counter()
        for server in self.servers:
            total.update(server.take_counts())
        return total

    def __enter__(self) -> "HostedCorpus":
        for server in self.servers:
            server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a bench corpus on 127.0.0.1.")
    parser.add_argument("corpus", type=Path, help="a folder written by bench/corpus.py")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every response")
    args = parser.parse_args()
    files = load_files(args.corpus)
    if not files:
        raise SystemExit(f"error: {args.corpus}/feeds has no .xml files; run bench/corpus.py first")
    server = CorpusServer(files, args.latency_ms / 1000, port=args.port)
    print(f"serving {len(files)} feeds at {server.base_url}/feeds/ (Ctrl-C to stop)")
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        print(f"responses: {dict(server.counts)}")


if __name__ == "__main__":
    main()
