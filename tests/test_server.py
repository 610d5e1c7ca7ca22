"""The feed server on a real socket: types, validators, gzip, HEAD, and nothing outside feeds/."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from aggregator.app.server import make_server, resolve_request_path, start_in_thread

FILES = {
    "world.atom": ("application/atom+xml", b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>"
                   + b"<title>w</title>" * 40 + b"</feed>"),
    "world.rss": ("application/rss+xml", b"<?xml version='1.0'?><rss version='2.0'><channel/></rss>"),
    "world.json": ("application/feed+json", json.dumps({"version": "https://jsonfeed.org/version/1.1",
                                                        "items": []}).encode()),
    "topics.opml": ("text/x-opml", b"<?xml version='1.0'?><opml version='2.0'><body/></opml>"),
    "index.html": ("text/html", b"<!doctype html><title>index</title>" + b"<p>x</p>" * 60),
}


@pytest.fixture
def site(tmp_path: Path):
    feeds = tmp_path / "feeds"
    (feeds / "articles").mkdir(parents=True)
    for name, (_, body) in FILES.items():
        (feeds / name).write_bytes(body)
    (feeds / "articles" / "a1.html").write_bytes(b"<p>article</p>")
    (feeds / ".world.atom.x1.tmp").write_bytes(b"half")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (feeds / "escape.atom").symlink_to(tmp_path / "secret.txt")
    (feeds / "inside.atom").symlink_to(feeds / "world.atom")
    health = {"status": "ok", "sources": [{"name": "desk", "status": "ok"}]}
    server = make_server("127.0.0.1:0", feeds, lambda: health)
    start_in_thread(server)
    yield server, feeds
    server.shutdown()
    server.server_close()


def request(server, path: str, headers: dict | None = None, method: str = "GET"):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def raw(server, data: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_kind_of_file_is_served_with_its_content_type(site, name):
    server, feeds = site
    status, headers, body = request(server, f"/{name}")
    assert status == 200
    assert headers["content-type"].split(";")[0] == FILES[name][0]
    assert body == FILES[name][1]
    assert headers["content-length"] == str(len(body))


def test_root_and_folders_serve_index_html(site):
    server, _ = site
    status, headers, body = request(server, "/")
    assert status == 200 and body == FILES["index.html"][1]
    assert request(server, "/articles/a1.html")[2] == b"<p>article</p>"


def test_etag_and_last_modified_give_304_until_the_file_changes(site):
    server, feeds = site
    _, headers, _ = request(server, "/world.rss")
    etag, modified = headers["etag"], headers["last-modified"]
    status, again, body = request(server, "/world.rss", {"If-None-Match": etag})
    assert status == 304 and body == b"" and again["etag"] == etag
    assert request(server, "/world.rss", {"If-None-Match": f'"nope", W/{etag}'})[0] == 304
    assert request(server, "/world.rss", {"If-None-Match": "*"})[0] == 304
    assert request(server, "/world.rss", {"If-Modified-Since": modified})[0] == 304
    past = formatdate(time.time() - 86400 * 365, usegmt=True)
    assert request(server, "/world.rss", {"If-Modified-Since": past})[0] == 200
    assert request(server, "/world.rss", {"If-Modified-Since": "garbage"})[0] == 200
    # If-None-Match wins over If-Modified-Since when it does not match.
    assert request(server, "/world.rss", {"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200

    (feeds / "world.rss").write_bytes(b"<rss version='2.0'><channel><title>new</title></channel></rss>")
    os.utime(feeds / "world.rss", (time.time() + 5, time.time() + 5))
    status, headers, body = request(server, "/world.rss", {"If-None-Match": etag})
    assert status == 200 and b"new" in body and headers["etag"] != etag


def test_gzip_when_accepted_and_not_otherwise(site):
    server, _ = site
    status, headers, body = request(server, "/world.atom", {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == FILES["world.atom"][1]
    assert "accept-encoding" in headers["vary"].lower()
    gz_etag = headers["etag"]
    assert request(server, "/world.atom", {"Accept-Encoding": "gzip", "If-None-Match": gz_etag})[0] == 304
    status, headers, body = request(server, "/world.atom", {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in headers and body == FILES["world.atom"][1]
    status, headers, body = request(server, "/world.atom")
    assert "content-encoding" not in headers and headers["etag"] != gz_etag


def test_head_sends_headers_without_a_body(site):
    server, _ = site
    status, headers, body = request(server, "/world.json", method="HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(FILES["world.json"][1]))
    assert headers["content-type"].startswith("application/feed+json")


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/articles/..%2f..%2fsecret.txt",
    "/..%5csecret.txt", "/%252e%252e/secret.txt", "//etc/passwd", "/etc/passwd", "/escape.atom",
    "/.world.atom.x1.tmp", "/world.atom%00.html", "/%ff%fe", "/nothing.atom", "/C:/secret.txt",
    "http://example.com/../secret.txt",
])
def test_nothing_outside_feeds_is_reachable(site, target):
    server, _ = site
    status, _, body = request(server, target)
    assert status in (400, 404), (target, status)
    assert b"secret" not in body


def test_traversal_by_raw_request_line(site):
    server, feeds = site
    answer = raw(server, b"GET /../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404") and b"secret" not in answer.split(b"\r\n\r\n", 1)[1]
    assert resolve_request_path(feeds, "/inside.atom") == (feeds / "world.atom").resolve()
    assert resolve_request_path(feeds, "/escape.atom") is None


def test_absolute_form_targets_are_served_from_feeds(site):
    server, _ = site
    assert request(server, "http://127.0.0.1/world.rss")[0] == 200


def test_healthz_returns_json(site):
    server, _ = site
    status, headers, body = request(server, "/healthz")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["sources"][0]["name"] == "desk"
    assert headers["cache-control"] == "no-store"


def test_healthz_reports_503_when_health_fails(tmp_path: Path):
    def broken() -> dict:
        raise RuntimeError("database is locked")

    server = make_server("127.0.0.1:0", tmp_path, broken)
    start_in_thread(server)
    try:
        status, _, body = request(server, "/healthz")
        assert status == 503 and json.loads(body)["status"] == "failing"
    finally:
        server.shutdown()
        server.server_close()


def test_oversized_and_malformed_requests_are_refused(site):
    server, _ = site
    assert request(server, "/" + "a" * 5000)[0] == 414
    assert raw(server, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414")
    assert raw(server, b"NONSENSE\r\n\r\n").split(b" ", 2)[1] == b"400"
    assert raw(server, b"GET / HTTP/9.9\r\n\r\n").split(b" ", 2)[1] in (b"400", b"505")
    too_many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    assert raw(server, too_many).split(b" ", 2)[1] == b"431"
    long_header = b"GET / HTTP/1.1\r\nX-Long: " + b"v" * 70000 + b"\r\n\r\n"
    assert raw(server, long_header).split(b" ", 2)[1] in (b"400", b"431")
    with_body = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
    assert raw(server, with_body).split(b" ", 2)[1] == b"413"
    assert raw(server, b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n").split(b" ", 2)[1] == b"413"


def test_other_methods_get_405(site):
    server, _ = site
    status, headers, _ = request(server, "/world.atom", method="DELETE")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert request(server, "/world.atom", method="POST")[0] == 405


def test_keep_alive_serves_several_requests_on_one_connection(site):
    server, _ = site
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/world.rss")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == FILES["world.rss"][1]
    finally:
        connection.close()


def test_a_busy_port_is_one_clear_error(site):
    server, _ = site
    host, port = server.server_address[:2]
    with pytest.raises(OSError, match=f"cannot listen on {host}:{port}"):
        make_server(f"{host}:{port}", Path("."), dict)


def test_before_the_first_publish_a_missing_feed_is_503_with_retry_after(tmp_path: Path):
    """A reader subscribing in the first seconds must hear "retry", not "gone"; files already
    on disk (from the last run) are served meanwhile, and afterwards a missing file is 404."""
    (tmp_path / "old.atom").write_bytes(b"<feed/>")
    published = threading.Event()
    server = make_server("127.0.0.1:0", tmp_path, dict, published=published.is_set)
    start_in_thread(server)
    try:
        status, headers, _ = request(server, "/all.atom")
        assert status == 503 and headers["retry-after"] == "5"
        status, headers, _ = request(server, "/all.atom", method="HEAD")
        assert status == 503 and headers["retry-after"] == "5"
        assert request(server, "/old.atom")[0] == 200
        published.set()
        assert request(server, "/all.atom")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_an_idle_server_does_not_poll_and_still_stops_at_once(tmp_path: Path) -> None:
    """serve_forever polls without a timeout (an idle daemon does not wake twice a second), so
    shutdown has to wake it: it returns at once, with the serving thread ended, and the port free."""
    server = make_server("127.0.0.1:0", tmp_path, lambda: {"status": "ok", "sources": []})
    thread = start_in_thread(server)
    assert request(server, "/healthz")[0] == 200
    time.sleep(0.3)  # idle: the poll is waiting, with nothing to wake it but shutdown
    started = time.monotonic()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 1.0
    with pytest.raises(OSError):
        socket.create_connection(server.server_address[:2], timeout=1).close()
