"""full_text = true: a summary-only feed's new entries get their page's article text.

Real HTTP on 127.0.0.1: the feed and its article pages come from one local
server, fetched with the feed's own fetcher, limits and address policy.
"""

from __future__ import annotations

import pytest

from aggregator.storage.store import Store
from helpers.feed_server import FeedServer, Reply
from test_remote import make_config, run

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<nav><a href="/">Home</a> | <a href="/world">World</a> | Follow us on Google News</nav>
<article><h1>{title}</h1>
<p>{lead}</p>
<p>The harbour authority said repairs to the north wall would take until the spring, and that ferries
would use the temporary berth on the east side of the port in the meantime.</p>
<p>Local businesses said the closure had already cut the number of visitors by a third since October.</p>
</article>
<footer>Copyright Harbour Times. Sign up for our newsletter.</footer></body></html>"""


def feed(base: str, items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>{base}/news/{slug}</link><guid>{slug}</guid>"
        f"<pubDate>Tue, 03 Jun 2025 09:30:00 GMT</pubDate><description>Short summary of {title}.</description></item>"
        for slug, title in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Harbour Times</title>'
            f"<link>{base}/</link><description>d</description>{entries}</channel></rss>").encode("utf-8")


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


def test_new_entries_get_full_text_and_failures_keep_the_summary(tmp_path, server, caplog) -> None:
    base = server.url("").rstrip("/")
    items = [("wall", "Harbour wall repairs begin"), ("gone", "Missing page story")]
    server.routes["/feed.xml"] = Reply(200, feed(base, items), {"Content-Type": "application/rss+xml"})
    server.routes["/news/wall"] = Reply(200, PAGE.format(title="Harbour wall repairs begin",
                                                         lead="Repairs to the harbour wall began on Monday.").encode(),
                                        {"Content-Type": "text/html; charset=utf-8"})
    server.routes["/news/gone"] = Reply(404, b"not here", {"Content-Type": "text/html"})
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/feed.xml"), "full_text": True}])
    caplog.set_level("INFO")
    report, _ = run(config)
    assert (report.new, report.error) == (2, None)
    with Store(config.storage.database) as store:
        by_guid = {a.url.rsplit("/", 1)[-1]: a for a in store.articles(source="Feed")}
    wall = by_guid["wall"].text
    assert wall.startswith("Repairs to the harbour wall began on Monday.")
    assert "temporary berth" in wall and "Follow us" not in wall and "newsletter" not in wall
    assert "<p>" in by_guid["wall"].content_html
    assert "berth" in by_guid["wall"].terms.split()  # related posts match the full text, not the summary
    assert by_guid["gone"].text == "Short summary of Missing page story."
    assert any("full text of" in r.message and "HTTP 404" in r.message for r in caplog.records)

    # The feed again, unchanged entries: no page is requested again, the full text stays.
    server.routes["/feed.xml"] = Reply(200, feed(base, items + [("new", "A third story")]),
                                       {"Content-Type": "application/rss+xml"})
    server.routes["/news/new"] = Reply(200, PAGE.format(title="A third story",
                                                        lead="A third story broke on Tuesday.").encode(),
                                       {"Content-Type": "text/html; charset=utf-8"})
    before = len(server.hits("/news/wall"))
    report, _ = run(config)
    assert (report.new, report.updated) == (1, 0)
    assert len(server.hits("/news/wall")) == before
    assert len(server.hits("/news/new")) == 1
    with Store(config.storage.database) as store:
        by_guid = {a.url.rsplit("/", 1)[-1]: a for a in store.articles(source="Feed")}
    assert "temporary berth" in by_guid["wall"].text
    assert by_guid["new"].text.startswith("A third story broke on Tuesday.")


def test_pages_obey_the_network_policy(tmp_path, server) -> None:
    """An entry linking to a private address is not fetched when private networks are not allowed."""
    body = feed("http://10.0.0.1", [("x", "Internal link story")])
    server.routes["/feed.xml"] = Reply(200, body, {"Content-Type": "application/rss+xml"})
    config = make_config(tmp_path, [{"name": "Feed", "url": server.url("/feed.xml"), "full_text": True}])
    report, _ = run(config)  # the feed itself is allowed (test server); the 10.0.0.1 page is refused
    assert report.new == 1
    with Store(config.storage.database) as store:
        assert store.articles(source="Feed")[0].text == "Short summary of Internal link story."
