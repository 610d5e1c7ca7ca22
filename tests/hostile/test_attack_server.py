"""Attacks on the feeds/ server: nothing outside feeds/ is ever sent; bad requests get a 4xx."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from aggregator.app.server import make_server, start_in_thread

MARKER = b"TOP-SECRET-OUTSIDE-FEEDS"


@pytest.fixture
def server(tmp_path: Path):
    (tmp_path / "secret.txt").write_bytes(MARKER)
    (tmp_path / "secret.atom").write_bytes(MARKER)
    feeds = tmp_path / "feeds"
    (feeds / "articles").mkdir(parents=True)
    (feeds / "all.atom").write_bytes(b"<feed xmlns='http://www.w3.org/2005/Atom'/>")
    (feeds / "index.html").write_bytes(b"<!DOCTYPE html><title>i</title>")
    (feeds / ".hidden.atom").write_bytes(MARKER)
    (feeds / "escape.atom").symlink_to(tmp_path / "secret.atom")
    (feeds / "up").symlink_to(tmp_path, target_is_directory=True)
    srv = make_server("127.0.0.1:0", feeds, lambda: {"status": "ok"})
    thread = start_in_thread(srv)
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def raw(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        if b"Connection:" not in request:  # else a keep-alive waits out the server's idle timeout
            request = request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n", 1)
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, socket.timeout):
            pass
    return b"".join(chunks)


def get(port: int, target: str | bytes) -> bytes:
    target = target.encode("latin-1") if isinstance(target, str) else target
    return raw(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


TRAVERSALS = [
    "/../secret.txt", "/../../../../../../etc/passwd", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt", "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%252e%252e/secret.txt",
    "/articles/../../secret.txt", "/articles/%2e%2e/%2e%2e/secret.txt", "/./../secret.txt",
    "//etc/passwd", "/etc/passwd", "/%2fetc%2fpasswd", "/..\\secret.txt", "/%5c..%5csecret.txt",
    "/..%5csecret.txt", "/%00/../secret.txt", "/all.atom%00.txt", "/%c0%ae%c0%ae/secret.txt",
    "/%uff0e%uff0e/secret.txt", "/\uff0e\uff0e/secret.txt".encode("utf-8").decode("latin-1"),
    "http://x/../secret.txt", "http://x/%2e%2e/secret.txt", "file:///etc/passwd", "/.hidden.atom",
    "/escape.atom", "/up/secret.txt", "/up/feeds/../secret.txt", "/C:/Windows/win.ini", "/~/secret.txt",
    "*", "secret.txt", "../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_never_leaves_feeds(server: int, target: str) -> None:
    response = get(server, target)
    assert MARKER not in response
    assert b"root:" not in response
    assert 400 <= status(response) < 500, response[:200]


def test_the_server_still_serves_feeds(server: int) -> None:
    """Guard against a vacuous pass: the same server sends what is inside feeds/."""
    assert status(get(server, "/all.atom")) == 200
    assert status(get(server, "/")) == 200


@pytest.mark.parametrize("request_bytes, expected", [
    (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    (b"GET /all.atom HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", {400, 431}),
    (b"GET /all.atom HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1\r\n" * 200 + b"\r\n", {400, 431}),
    (b"GARBAGE\r\n\r\n", {400}),
    (b"GET\r\n\r\n", {400}),
    (b"GET /all.atom HTTP/9.9\r\n\r\n", {400, 505}),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505}),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", {400}),  # TLS to a plain port
    (b"POST /all.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", {405, 413}),
    (b"GET /all.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", {413}),
    (b"GET /all.atom HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", {413, 400}),
    (b"GET /all.atom HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {413, 400}),
    (b"DELETE /all.atom HTTP/1.1\r\nHost: x\r\n\r\n", {405}),
    (b"BREW /all.atom HTTP/1.1\r\nHost: x\r\n\r\n", {405, 501}),
    (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}),
])
def test_oversized_and_malformed_requests_are_refused(server: int, request_bytes: bytes, expected: set) -> None:
    response = raw(server, request_bytes)
    assert response.startswith(b"HTTP/"), response[:100]
    assert status(response) in expected, response[:200]
    assert MARKER not in response


def test_slow_client_does_not_block_others(server: int) -> None:
    """A client that sends half a request and waits must not stop others being served."""
    idle = [socket.create_connection(("127.0.0.1", server), timeout=5) for _ in range(20)]
    for sock in idle:
        sock.sendall(b"GET /all.atom HTTP/1.1\r\nHost:")
    start = time.monotonic()
    try:
        assert status(get(server, "/all.atom")) == 200
    finally:
        for sock in idle:
            sock.close()
    assert time.monotonic() - start < 3
