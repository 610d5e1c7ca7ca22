"""HTTP attacks on the fetcher: size limits, timeouts, redirects, and no way to reach private addresses.

Two real servers run on loopback: the feed server on 127.0.0.1 (the only
address:port the policy opens, as a test must) and a "forbidden" server on
127.0.0.2 that records every hit. Each SSRF trick must end in an error with
the forbidden server never contacted.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import struct
import threading
import time
import zlib

import pytest

from aggregator.ingest import netguard
from aggregator.ingest.netguard import BlockedAddress, NetPolicy
from aggregator.ingest.http import Fetcher, FetchLimits

from .hostile_support import run_isolated

LIMIT = 100_000


def _bomb(blocks: int = 64) -> bytes:
    """gzip of 1 GiB of zeros in about 1 MB: one fully flushed 16 MiB deflate block, repeated.

    After Z_FULL_FLUSH the compressor keeps no history, so every block
    compresses to the same bytes; only the CRC needs the whole gigabyte.
    """
    block = bytes(16 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    size = (blocks * len(block)) & 0xFFFFFFFF
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + piece * blocks + compressor.flush()
            + struct.pack("<II", crc, size))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bomb: bytes = b""
    deflate_bomb: bytes = b""
    redirect_to: dict[str, str] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "application/rss+xml"}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path
        if path == "/ok":
            self._send(b"<rss version='2.0'><channel><title>t</title></channel></rss>")
        elif path == "/big-plain":
            self._send(b"x" * (LIMIT * 10))
        elif path == "/big-lying-length":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * (LIMIT * 10))
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(100):
                chunk = b"y" * 20_000
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path in ("/gzip-bomb", "/deflate-bomb"):
            body = self.bomb if path == "/gzip-bomb" else self.deflate_bomb
            self._send(body, {"Content-Encoding": "gzip" if path == "/gzip-bomb" else "deflate",
                              "Content-Length": str(len(body))})
        elif path == "/slow-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/slow-headers":
            for byte in b"HTTP/1.1 200 OK\r\nX-Drip: " + b"d" * 200:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        elif path.startswith("/loop"):
            self._send(b"", {"Location": path, "Content-Length": "0"}, status=302)
        elif path.startswith("/chain"):
            n = int(path.rsplit("/", 1)[-1]) if path.count("/") > 1 else 0
            self._send(b"", {"Location": f"/chain/{n + 1}", "Content-Length": "0"}, status=301)
        elif path.startswith("/redirect/"):
            self._send(b"", {"Location": self.redirect_to[path], "Content-Length": "0"}, status=302)
        else:
            self._send(b"nope", status=404)


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"SECRET")

    def log_message(self, *args: object) -> None:
        pass


def _serve(address: tuple[str, int], handler) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(address, handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers():
    Handler.bomb = _bomb()
    Handler.deflate_bomb = zlib.compress(bytes(64 << 20), 1)
    feed = _serve(("127.0.0.1", 0), Handler)
    forbidden = _serve(("127.0.0.2", 0), Recorder)
    yield feed.server_address[1], forbidden.server_address[1]
    for server in (feed, forbidden):
        server.shutdown()
        server.server_close()


@pytest.fixture
def fetch(servers):
    port, _ = servers
    Recorder.hits = []
    policy = NetPolicy(allowed=frozenset({("127.0.0.1", port)}))
    fetcher = Fetcher(FetchLimits(timeout=2.0, connect_timeout=1.0, max_body_size=LIMIT, max_redirects=5))

    def run(target: str):
        url = target if "://" in target or ":" in target.split("/")[0] else f"http://127.0.0.1:{port}{target}"
        return fetcher.fetch(url, policy)

    yield run
    fetcher.close()


def test_a_plain_fetch_works(fetch) -> None:
    """Guard against a vacuous pass: the setup can fetch."""
    result = fetch("/ok")
    assert result.error is None and result.body.startswith(b"<rss")


@pytest.mark.parametrize("path", ["/big-plain", "/big-lying-length", "/big-chunked", "/deflate-bomb"])
def test_bodies_over_the_limit_are_refused(fetch, path: str) -> None:
    result = fetch(path)
    if path == "/big-lying-length":  # the body is the 100 bytes announced; the rest is never read
        assert result.body is None or len(result.body) <= 100
        return
    assert result.body is None and result.error and "limit" in result.error, path


def test_gzip_bomb_inflating_to_1_gib_is_refused_in_bounded_memory(servers) -> None:
    """In a child under a 600 MB address-space limit: inflating it whole would be a MemoryError."""
    port, _ = servers
    result = run_isolated(f"""
        import time
        from aggregator.ingest.netguard import NetPolicy
        from aggregator.ingest.http import Fetcher, FetchLimits
        fetcher = Fetcher(FetchLimits(timeout=20, max_body_size=10_000_000))
        start = time.monotonic()
        result = fetcher.fetch("http://127.0.0.1:{port}/gzip-bomb", NetPolicy(allowed=frozenset({{("127.0.0.1", {port})}})))
        print(result.body is None, repr(result.error), round(time.monotonic() - start, 2))
    """, timeout=60, memory_mb=600)
    assert not result.timed_out
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("True ") and "limit" in result.stdout and "gzip" in result.stdout


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_slow_drip_is_cut_off_by_the_total_timeout(fetch, path: str) -> None:
    """Each byte arrives well inside the read timeout; only a total deadline stops the drip."""
    start = time.monotonic()
    result = fetch(path)
    elapsed = time.monotonic() - start
    assert result.error and result.body is None
    assert elapsed < 6, f"{path}: a 2 s total timeout took {elapsed:.1f}s"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The same hostile handler over https, with a certificate from a test CA (trustme)."""
    import ssl

    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server.server_address[1], str(ca_file)
    server.shutdown()
    server.server_close()


def _tls_fetch(tls_server, path: str, trusted: bool = True):
    port, ca_file = tls_server
    policy = NetPolicy(allowed=frozenset({("127.0.0.1", port)}))
    with Fetcher(FetchLimits(timeout=2.0, connect_timeout=1.0, max_body_size=LIMIT),
                 ca_file=ca_file if trusted else None) as fetcher:
        return fetcher.fetch(f"https://127.0.0.1:{port}{path}", policy)


def test_https_fetch_verifies_the_certificate(tls_server) -> None:
    assert _tls_fetch(tls_server, "/ok").body.startswith(b"<rss")
    untrusted = _tls_fetch(tls_server, "/ok", trusted=False)  # certifi's bundle does not know the test CA
    assert untrusted.body is None and "certificate" in untrusted.error.lower()


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_slow_drip_over_https_is_cut_off_by_the_total_timeout(tls_server, path: str) -> None:
    """After the TLS handshake the stream is a new object; it must keep the total deadline."""
    start = time.monotonic()
    result = _tls_fetch(tls_server, path)
    elapsed = time.monotonic() - start
    assert result.error and result.body is None
    assert elapsed < 6, f"{path} over https: a 2 s total timeout took {elapsed:.1f}s"


@pytest.mark.parametrize("path", ["/loop", "/chain"])
def test_endless_redirects_stop(fetch, path: str) -> None:
    result = fetch(path)
    assert result.error and "redirects" in result.error and len(result.redirects) <= 6


def _forbidden_targets(fport: int) -> list[str]:
    return [
        f"http://127.0.0.2:{fport}/", f"http://2130706434:{fport}/", f"http://0x7f000002:{fport}/",
        f"http://0x7f.0.0.2:{fport}/", f"http://0177.0.0.2:{fport}/", f"http://0177.0.0.02:{fport}/",
        f"http://127.2:{fport}/", f"http://127.0.2:{fport}/", f"http://[::ffff:127.0.0.2]:{fport}/",
        f"http://[::ffff:7f00:2]:{fport}/", f"http://127.0.0.2.:{fport}/", f"http://localhost:{fport}/",
        f"http://user@127.0.0.2:{fport}/", f"http://127.0.0.1@127.0.0.2:{fport}/",
        f"http://127.0.0.2:{fport}\\@127.0.0.1/", f"http://127.0.0.2:{fport}\\.example.com/",
        "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/", "http://2852039166/", "http://0xa9fea9fe/", "http://[fe80::1]/",
        "http://[::1]/", "http://0.0.0.0/", "http://0/", "http://10.0.0.1/", "http://192.168.0.1/",
        "http://172.16.0.1/", "http://100.64.0.1/", "http://[fd00::1]/", "http://[64:ff9b::7f00:2]/",
        "http://[2002:7f00:2::]/", "http://224.0.0.1/", "http://255.255.255.255/",
    ]


def test_private_addresses_are_refused_directly(fetch, servers) -> None:
    _, fport = servers
    for url in _forbidden_targets(fport):
        result = fetch(url)
        assert result.error and result.body is None, url
    assert Recorder.hits == []


def test_redirects_to_private_addresses_and_other_schemes_are_refused(fetch, servers) -> None:
    port, fport = servers
    targets = _forbidden_targets(fport) + [
        "file:///etc/passwd", "ftp://127.0.0.2/", "gopher://127.0.0.2:70/", "javascript:alert(1)",
        "data:text/plain,hi", f"http://127.0.0.1:{fport}/", f"//127.0.0.2:{fport}/",
        f"http:127.0.0.2:{fport}/",
    ]
    for index, target in enumerate(targets):
        Handler.redirect_to[f"/redirect/{index}"] = target
        result = fetch(f"/redirect/{index}")
        assert result.error and result.body is None, target
        assert b"root:" not in (result.body or b"")
    assert Recorder.hits == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/feed", "gopher://example.com/",
                                 "javascript:alert(1)", "data:,hello", "ws://example.com/", "/etc/passwd",
                                 "httpx://example.com/", "HTTP:/example.com"])
def test_only_http_and_https_are_fetched(url: str) -> None:
    with Fetcher(FetchLimits(timeout=2.0, connect_timeout=1.0)) as fetcher:
        result = fetcher.fetch(url, NetPolicy())
    assert result.error and result.body is None


def test_dns_answer_pointing_at_a_private_address_is_refused(fetch, servers, monkeypatch) -> None:
    _, fport = servers
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "feeds.evil.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", fport))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    result = fetch(f"http://feeds.evil.test:{fport}/")
    assert result.error and "refused" in result.error
    assert Recorder.hits == []


def test_connects_to_the_address_it_checked_not_a_second_dns_answer(monkeypatch) -> None:
    """DNS rebinding: first answer public, second private. We resolve once and connect to the first."""
    answers = iter([[("93.184.216.34", 80)], [("127.0.0.2", 80)]])
    lookups: list[str] = []
    connects: list[tuple] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", addr) for addr in next(answers)]

    def fake_connect(self, address):
        connects.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", fake_connect)
    with pytest.raises(OSError):
        netguard.open_connection("rebind.evil.test", 80, NetPolicy(), timeout=1)
    assert lookups == ["rebind.evil.test"]
    assert connects == [("93.184.216.34", 80)]


@pytest.mark.parametrize("host, expected", [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("017700000001", "127.0.0.1"),
    ("2852039166", "169.254.169.254"), ("0xA9.0xFE.0xA9.0xFE", "169.254.169.254"), ("0", "0.0.0.0"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"), ("::ffff:a9fe:a9fe", "::ffff:169.254.169.254"),
])
def test_disguised_literals_are_judged_as_the_address_they_are(host: str, expected: str) -> None:
    address = netguard.literal_address(host)
    assert address == ipaddress.ip_address(expected)
    assert not netguard.is_public(address)
    with pytest.raises(BlockedAddress):
        netguard.checked_addresses(host, 80, NetPolicy())
