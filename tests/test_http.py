"""ingest/http.py against a real server on 127.0.0.1: conditional GET, redirects, limits, timeouts."""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime, timezone

import pytest

from aggregator import __version__
from aggregator.ingest.netguard import NetPolicy
from aggregator.ingest.http import USER_AGENT, Fetcher, FetchError, FetchLimits
from aggregator.ingest.http_headers import freshness_seconds, retry_after_seconds
from aggregator.ingest.http_request import wire_request
from helpers.feed_server import FeedServer, Reply, feed_bytes

RSS = feed_bytes("rss20.xml")


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


def only(server: FeedServer) -> NetPolicy:
    """Exactly the test server's address is reachable; every other private address is not."""
    return NetPolicy(allowed=frozenset({(server.host, server.port)}))


def fetcher(**limits) -> Fetcher:
    return Fetcher(FetchLimits(**limits))


def test_200_sends_user_agent_and_accept_encoding_and_returns_validators(server):
    server.routes["/feed"] = Reply(200, RSS, {"Content-Type": "application/rss+xml", "ETag": '"v1"',
                                               "Last-Modified": "Tue, 03 Jun 2025 09:30:00 GMT"})
    with fetcher() as f:
        result = f.fetch(server.url("/feed"), only(server))
    assert result.error is None and result.status == 200 and result.body == RSS
    assert result.etag == '"v1"' and result.last_modified == "Tue, 03 Jun 2025 09:30:00 GMT"
    sent = server.hits("/feed")[0].headers
    assert sent["user-agent"] == USER_AGENT and sent["user-agent"].startswith(f"aggregator/{__version__} (+https://")
    assert "gzip" in sent["accept-encoding"] and "if-none-match" not in sent


def test_conditional_headers_are_sent_and_304_has_no_body(server):
    def route(headers):
        if headers.get("if-none-match") == '"v1"' or headers.get("if-modified-since") == "Mon, 02 Jun 2025 08:00:00 GMT":
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, RSS)
    server.routes["/feed"] = route
    with fetcher() as f:
        by_etag = f.fetch(server.url("/feed"), only(server), etag='"v1"')
        by_date = f.fetch(server.url("/feed"), only(server), last_modified="Mon, 02 Jun 2025 08:00:00 GMT")
        plain = f.fetch(server.url("/feed"), only(server))
    assert by_etag.not_modified and by_etag.body is None
    assert by_date.not_modified and by_date.body is None
    assert plain.status == 200
    assert server.hits("/feed")[1].headers["if-modified-since"] == "Mon, 02 Jun 2025 08:00:00 GMT"


def test_304s_and_redirects_reuse_one_connection(server):
    """An unchanged refresh must not pay a new TCP connection per feed (an unread body blocks reuse)."""
    server.routes["/feed"] = Reply(304, headers={"ETag": '"v1"'})
    server.routes["/moved"] = Reply(301, b"moved", {"Location": "/feed"})
    server.routes["/gone"] = Reply(404, b"not here either")
    with fetcher() as f:
        results = [f.fetch(server.url(path), only(server), etag='"v1"') for path in ("/feed", "/moved", "/gone", "/feed")]
    assert [r.status for r in results] == [304, 304, 404, 304]
    assert len({seen.peer for seen in server.requests}) == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced(server):
    """Servers close idle keep-alive connections without warning; the next fetch must not fail for it."""
    server.routes["/feed"] = Reply(200, RSS, hang_up=True)
    with fetcher() as f:
        results = [f.fetch(server.url("/feed"), only(server)) for _ in range(3)]
    assert [(r.error, r.status, r.body) for r in results] == [(None, 200, RSS)] * 3
    assert len({seen.peer for seen in server.requests}) == 3


def test_chunked_gzip_body_is_decoded_and_its_connection_reused(server):
    compressed = gzip.compress(RSS)
    chunks = [compressed[i:i + 100] for i in range(0, len(compressed), 100)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    server.routes["/chunked"] = Reply(200, body, {"Transfer-Encoding": "chunked", "Content-Encoding": "gzip"})
    server.routes["/feed"] = Reply(304)
    with fetcher() as f:
        first = f.fetch(server.url("/chunked"), only(server))
        second = f.fetch(server.url("/feed"), only(server), etag='"v1"')
    assert first.error is None and first.body == RSS and len(chunks) > 1
    assert second.not_modified and len({seen.peer for seen in server.requests}) == 1


@pytest.mark.parametrize("url, host, target, authority", [
    ("http://Example.COM/a b?q=ü#frag", "example.com", "/a%20b?q=%C3%BC", "example.com"),
    ("https://bücher.example/straße", "xn--bcher-kva.example", "/stra%C3%9Fe", "xn--bcher-kva.example"),
    ("http://[::1]:8080/feed", "::1", "/feed", "[::1]:8080"),
    ("https://example.com:443", "example.com", "/", "example.com"),
    ("http://example.com/already%20encoded/%E2%82%AC", "example.com", "/already%20encoded/%E2%82%AC",
     "example.com"),
])
def test_urls_go_on_the_wire_as_ascii(url, host, target, authority):
    wire = wire_request(url, {"If-None-Match": '"v1"'})
    sent = dict(wire.headers)
    assert (wire.host, wire.target) == (host, target) and wire.target.isascii()
    assert sent["Host"] == authority and sent["If-None-Match"] == '"v1"' and sent["User-Agent"] == USER_AGENT


def test_credentials_in_the_url_become_basic_authorization():
    wire = wire_request("https://reader:s%40cret@example.com/private.xml", {})
    assert dict(wire.headers)["Authorization"] == "Basic cmVhZGVyOnNAY3JldA=="  # reader:s@cret
    assert (wire.scheme, wire.port) == ("https", 443)


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http:///path", "http://exa\u0000mple.com/"])
def test_urls_that_cannot_go_on_the_wire_are_one_line_errors(url):
    with pytest.raises(FetchError, match="invalid URL"):
        wire_request(url.replace("\\u0000", "\u0000"), {})


def test_plain_http_pool_refuses_https_and_the_https_pool_verifies():
    """The manager kept for http:// URLs has no TLS at all, so it fails closed if handed an https host."""
    with fetcher() as f:
        plain = f.manager(NetPolicy(), "http")
        secure = f.manager(NetPolicy(), "https")
        with pytest.raises(KeyError):
            plain.connection_from_host("example.com", 443, "https")
        tls = secure.connection_pool_kw["ssl_context"]
    assert plain is not secure and "ssl_context" not in plain.connection_pool_kw
    assert tls.verify_mode.name == "CERT_REQUIRED" and tls.check_hostname
    assert tls.get_ca_certs()


def test_301_then_200_reports_the_permanent_target(server):
    server.routes["/old"] = Reply(301, headers={"Location": "/new"})
    server.routes["/new"] = Reply(200, RSS)
    with fetcher() as f:
        result = f.fetch(server.url("/old"), only(server))
    assert result.status == 200 and result.moved_to == server.url("/new")
    assert result.redirects == [(301, server.url("/new"))]


def test_302_in_the_chain_means_not_moved(server):
    server.routes["/a"] = Reply(308, headers={"Location": "/b"})
    server.routes["/b"] = Reply(302, headers={"Location": "/c"})
    server.routes["/c"] = Reply(200, RSS)
    with fetcher() as f:
        result = f.fetch(server.url("/a"), only(server))
    assert result.status == 200 and result.final_url == server.url("/c") and result.moved_to is None


def test_redirect_loop_stops(server):
    server.routes["/loop"] = Reply(302, headers={"Location": "/loop"})
    with fetcher(max_redirects=3) as f:
        result = f.fetch(server.url("/loop"), only(server))
    assert "more than 3 redirects" in result.error and len(server.hits("/loop")) == 4


@pytest.mark.parametrize("target", [
    "http://127.0.0.2:{port}/feed",         # loopback, but not the allowed host
    "http://localhost:{other}/feed",        # a name resolving to loopback, another port
    "http://2130706433:{other}/feed",        # 127.0.0.1 written as one decimal number
    "http://0x7f.1:{other}/feed",            # ... and in hex short form
    "http://10.1.2.3/feed",                  # private network: refused before any connect attempt
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://[::ffff:127.0.0.1]:{port}/feed",  # IPv4-mapped IPv6
])
def test_redirect_to_a_private_address_is_refused(server, target):
    server.routes["/feed"] = Reply(200, RSS)
    location = target.format(port=server.port, other=server.port + 1 if server.port < 65535 else 1)
    server.routes["/go"] = Reply(302, headers={"Location": location})
    with fetcher(timeout=2) as f:
        result = f.fetch(server.url("/go"), only(server))
    assert result.body is None
    assert result.error.startswith("refused to connect to"), result.error
    assert "allow_private_network" in result.error
    assert len(server.hits("/feed")) == 0


def test_private_address_refused_without_permission(server):
    server.routes["/feed"] = Reply(200, RSS)
    with fetcher() as f:
        strict = f.fetch(server.url("/feed"), NetPolicy())
        open_ = f.fetch(server.url("/feed"), NetPolicy(allow_private=True))
    assert "refused to connect to 127.0.0.1" in strict.error and not server.hits("/feed")[1:]
    assert open_.status == 200


def test_only_http_and_https(server):
    server.routes["/ftp"] = Reply(302, headers={"Location": "file:///etc/passwd"})
    with fetcher() as f:
        result = f.fetch(server.url("/ftp"), only(server))
    assert "only http and https" in result.error


def test_timeout_is_a_value_not_an_exception(server):
    server.routes["/slow"] = Reply(200, RSS, delay=2.0)
    with fetcher(timeout=0.3) as f:
        result = f.fetch(server.url("/slow"), only(server))
    assert result.error.startswith("timed out after 0.3s") and result.elapsed < 1.5


def test_body_over_the_limit_plain(server):
    server.routes["/big"] = Reply(200, b"<rss>" + b"x" * 5000 + b"</rss>")
    server.routes["/big-no-length"] = Reply(200, b"y" * 5000, {"Content-Length": "0"})
    with fetcher(max_body_size=1000) as f:
        declared = f.fetch(server.url("/big"), only(server))
    assert "larger than the 1000 bytes limit" in declared.error and declared.body is None


def test_body_over_the_limit_while_streaming_without_content_length(server):
    # HTTP/1.0-style: no Content-Length, body ends when the connection closes
    class Stream:
        def __call__(self, headers):
            return Reply(200, b"z" * 200_000, {"Connection": "close", "Content-Length": "200000"})
    server.routes["/stream"] = Stream()
    with fetcher(max_body_size=50_000) as f:
        result = f.fetch(server.url("/stream"), only(server))
    assert "larger than" in result.error


def test_gzip_bomb_is_cut_after_decompression(server):
    bomb = gzip.compress(b"<" * 5_000_000)  # ~5 KB on the wire, 5 MB inflated
    server.routes["/bomb"] = Reply(200, bomb, {"Content-Encoding": "gzip"})
    with fetcher(max_body_size=100_000) as f:
        result = f.fetch(server.url("/bomb"), only(server))
    assert len(bomb) < 100_000
    assert "larger than" in result.error and "after gzip decompression" in result.error


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
])
def test_compressed_bodies_are_decoded(server, encoding, compress):
    server.routes["/z"] = Reply(200, compress(RSS), {"Content-Encoding": encoding})
    with fetcher() as f:
        result = f.fetch(server.url("/z"), only(server))
    assert result.error is None and result.body == RSS


def test_429_and_503_carry_retry_after(server):
    server.routes["/busy"] = Reply(429, b"slow down", {"Retry-After": "120"})
    server.routes["/down"] = Reply(503, b"maintenance", {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    with fetcher() as f:
        busy = f.fetch(server.url("/busy"), only(server))
        down = f.fetch(server.url("/down"), only(server))
    assert busy.status == 429 and busy.retry_after == 120.0 and busy.body is None
    assert down.status == 503 and down.retry_after == 7 * 86400.0  # capped at a week


def test_header_arithmetic():
    now = datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert retry_after_seconds("Sun, 01 Jun 2025 00:10:00 GMT", now) == 600
    assert retry_after_seconds("soon") is None
    assert freshness_seconds("public, max-age=3600", None, None) == 3600
    assert freshness_seconds("no-cache", "Sun, 01 Jun 2025 02:00:00 GMT", None) == 0
    assert freshness_seconds(None, "Sun, 01 Jun 2025 02:00:00 GMT", "Sun, 01 Jun 2025 00:00:00 GMT") == 7200
    assert freshness_seconds(None, "0", None) == 0
    assert freshness_seconds(None, None, None) is None


def test_connection_refused_is_one_line(server):
    with fetcher() as f:
        result = f.fetch("http://127.0.0.1:1/feed", NetPolicy(allow_private=True))
    assert result.error.startswith("network error fetching http://127.0.0.1:1/feed") and "\n" not in result.error
