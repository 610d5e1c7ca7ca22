"""XML attacks on feed parsing: no entity is resolved or expanded, and a bad feed fails alone.

The expansion attacks run in a child process under RLIMIT_AS and a timeout:
without the DTD guard in ingest/feed.py feedparser expands them (the
quadratic one reached 2.3 GB in 36 s when probed), so the child dies or
times out and the test fails instead of the machine.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from aggregator.models import ParseResult
from aggregator.pipeline import store_results
from aggregator.ingest.feed import parse_feed
from aggregator.storage.store import Store
from aggregator.enrich.topics import TopicRules

from .hostile_support import INPUTS, rss, run_isolated

ENTITY_REFUSED = "declares XML entities"


def quadratic_blowup(encoding: str = "utf-8", size: int = 100_000, refs: int = 30_000) -> bytes:
    """One 100 kB entity referenced 30,000 times: 3 GB once expanded, 200 kB on the wire."""
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE rss [<!ENTITY a "{"x" * size}">]>\n'
            '<rss version="2.0"><channel><title>Q</title><link>http://example.com/</link><description>d'
            f'</description><item><title>q</title><description>{"&a;" * refs}</description></item>'
            "</channel></rss>\n")
    return text.encode(encoding)


def parse_in_child(path: Path) -> str:
    return f"""
        import time
        from pathlib import Path
        from aggregator.ingest.feed import parse_feed
        start = time.monotonic()
        result = parse_feed(Path({str(path)!r}).read_bytes(), source="attack")
        print(repr(result.error))
        print(sum(len(a.text) + len(a.title) for a in result.articles))
        print(round(time.monotonic() - start, 2))
    """


@pytest.mark.parametrize("name, make", [
    ("billion_laughs.rss", lambda: (INPUTS / "billion_laughs.rss").read_bytes()),
    ("quadratic.rss", lambda: quadratic_blowup()),
    ("quadratic_utf16.rss", lambda: quadratic_blowup("utf-16")),
    ("quadratic_utf32.rss", lambda: quadratic_blowup("utf-32")),
    ("quadratic_ebcdic.rss", lambda: quadratic_blowup("cp037")),
])
def test_entity_expansion_is_bounded_in_time_and_memory(tmp_path: Path, name: str, make) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    result = run_isolated(parse_in_child(path), timeout=40, memory_mb=1024)
    assert not result.timed_out, f"{name}: parsing did not finish in 40 s (entities expanded?)"
    assert result.returncode == 0, f"{name}: child failed (MemoryError under 1 GB?):\n{result.stderr[-2000:]}"
    error, expanded, seconds = result.stdout.split("\n")[:3]
    assert ENTITY_REFUSED in error
    assert int(expanded) == 0
    assert float(seconds) < 10


def test_external_file_entity_is_never_resolved() -> None:
    result = parse_feed((INPUTS / "xxe_file.rss").read_bytes(), source="attack")
    assert result.error and ENTITY_REFUSED in result.error
    assert not result.articles
    passwd = Path("/etc/passwd").read_text(errors="replace").splitlines()[0]
    assert passwd not in repr(result)


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        type(self).hits.append(self.path)
        body = b'<!ENTITY leak "LEAKED-FROM-REMOTE-DTD">'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml-dtd")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dtd_server():
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_dtd_is_never_fetched(dtd_server: str) -> None:
    """A DOCTYPE pointing at a DTD on a (real, local) server: stripped, never requested."""
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{dtd_server}/evil.dtd">\n'
            '<rss version="2.0"><channel><title>T</title><link>http://example.com/</link><description>d'
            "</description><item><title>Hello &leak;</title><link>http://example.com/1</link>"
            "<description>body</description></item></channel></rss>").encode()
    result = parse_feed(data, source="attack", url="http://example.com/feed")
    assert _Recorder.hits == []
    assert "LEAKED" not in repr(result)


def test_remote_parameter_entity_is_refused_and_never_fetched(dtd_server: str) -> None:
    data = (INPUTS / "xxe_parameter.atom").read_bytes().replace(b"http://127.0.0.1:9", dtd_server.encode())
    result = parse_feed(data, source="attack")
    assert result.error and ENTITY_REFUSED in result.error
    assert _Recorder.hits == []


@pytest.mark.parametrize("data", [
    b"",
    b"   \n\t  ",
    b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>Not a feed</p></body></html>",
    b"/etc/passwd",  # feedparser would open a non-URL *string* as a file; we only ever pass bytes
    b"\x00\x01\x02\xff\xfe" * 1000,
    b"<rss><<<>>></rss",
    b"<?xml version='1.0'?><nope/>",
    b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"version": "https://example.com/not-json-feed", "items": []}',
    b"[1, 2, 3]",
])
def test_not_a_feed_is_a_clear_error(data: bytes) -> None:
    result = parse_feed(data, source="attack")
    assert result.error, data[:40]
    assert not result.articles
    assert "root:" not in result.error


def test_truncated_feed_stores_nothing_and_says_so(tmp_path: Path) -> None:
    """Policy: a feed cut off before its end is rejected whole (it is retried), never half-written."""
    result = parse_feed((INPUTS / "truncated.rss").read_bytes(), source="cut")
    assert result.error and "cut off" in result.error
    assert result.articles == []


def test_bad_feed_fails_only_its_own_source(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    rules = TopicRules(())
    good = rss("<item><title>Fine</title><link>http://example.com/ok</link><description>ok</description></item>")
    reports = []
    for name, data in [("cut", (INPUTS / "truncated.rss").read_bytes()), ("xxe", (INPUTS / "xxe_file.rss").read_bytes()),
                       ("laughs", (INPUTS / "billion_laughs.rss").read_bytes()), ("good", good)]:
        reports.append(store_results(store, name, [parse_feed(data, source=name)], rules))
    errors = {r.source: r.error for r in reports}
    assert errors["cut"] and errors["xxe"] and errors["laughs"] and errors["good"] is None
    assert store.source_counts() == {"good": 1}
    assert store.integrity_ok()
    store.close()


def test_malformed_but_complete_feed_does_not_raise() -> None:
    result = parse_feed((INPUTS / "malformed.rss").read_bytes(), source="bad")
    assert isinstance(result, ParseResult)
    assert result.error or result.articles
