"""A web page -> the feeds it links to (`<link rel="alternate" type="application/rss+xml" href=...>`).

People paste a site's home page where its feed belongs. When a fetched body
is such a page, remote.py follows its first feed link once, and when it
does not (or that feed fails too), the error names the link to use.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from aggregator.ingest.http_headers import media_type

if TYPE_CHECKING:
    from aggregator.ingest.http import FetchResult

PAGE_HEAD = 4096  # bytes of a body looked at for "<html"
PAGE_SEARCHED = 262144  # bytes of a page searched for feed links


def is_page(fetched: FetchResult) -> bool:
    """Whether the body is a web page: "<html" near its start, or an HTML Content-Type."""
    return b"<html" in (fetched.body or b"")[:PAGE_HEAD].lower() or "html" in media_type(fetched.content_type)


def linked_feed(fetched: FetchResult) -> str | None:
    """The first feed a web page links to (rel="alternate"), or None when the body is no page."""
    if not is_page(fetched):
        return None
    links = feed_links((fetched.body or b"")[:PAGE_SEARCHED], fetched.final_url)
    return links[0] if links else None


def explain_not_feed(error: str, fetched: FetchResult) -> str:
    """Parse errors, with the feed an HTML page links to when that is what we got (and did not follow)."""
    if not is_page(fetched):
        return error
    if link := linked_feed(fetched):
        return f"{fetched.final_url} is a web page, not a feed; it links to the feed {link}: put that in the source's url"
    return f"{fetched.final_url} is a web page, not a feed, and it links to no feed; check the source's url"


class _FeedLinkFinder(HTMLParser):
    """Collects the href of every <link rel="alternate"> whose type is a feed's."""

    TYPES = {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "link" and "alternate" in values.get("rel", "").lower().split() \
                and values.get("type", "").lower() in self.TYPES and values.get("href"):
            self.links.append(values["href"])


def feed_links(html: bytes, base: str) -> list[str]:
    """The feeds a page links to, as absolute URLs, in the page's order."""
    finder = _FeedLinkFinder()
    try:
        finder.feed(html.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - a broken page only means no suggestion
        return []
    return [urljoin(base, link) for link in finder.links if link.strip()]
