"""Full text for summary-only feeds (a source's `full_text = true`): each entry's page, read for its article.

Loaded only for such sources: it brings in trafilatura (html.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aggregator.ingest.encoding import UndecodableError, decode_text
from aggregator.ingest.html import extract_article_html
from aggregator.ingest.http_headers import charset_of, media_type
from aggregator.ingest.remote_plan import FetchJob
from aggregator.models import Article

if TYPE_CHECKING:
    from aggregator.ingest.http import Fetcher

log = logging.getLogger("aggregator")


def add_full_text(articles: list[Article], job: FetchJob, fetcher: Fetcher) -> None:
    """Replace each new or changed entry's summary with its page's article text.

    Pages are fetched with the feed's own fetcher and network policy (same
    limits, timeouts and address checks), one at a time, and only for entries
    the store does not hold with the same content hash, so a feed that is
    fetched again costs no page requests. The article keeps the hash of its
    feed version: the next fetch of an unchanged entry is "unchanged", and the
    stored full text is never overwritten by the summary. On any failure the
    entry keeps its summary, and one line says why.
    """
    for article in articles:
        if not article.url or job.known.get(article.id) == article.content_hash:
            continue
        page = fetcher.fetch(article.url, job.policy)
        kind = media_type(page.content_type)
        if page.error or page.status != 200 or not page.body or "html" not in kind:
            log.info("%s: full text of %s not fetched (%s); keeping the feed's summary", job.source.name,
                     article.url, page.error or f"HTTP {page.status}, {kind or 'no content type'}")
            continue
        try:
            extracted = extract_article_html(decode_text(page.body, charset_of(page.content_type)), page.final_url,
                                             article.title)
        except UndecodableError as exc:
            extracted = None
            log.info("%s: full text of %s: %s; keeping the feed's summary", job.source.name, article.url, exc)
        if extracted is None:
            log.info("%s: no article text found at %s; keeping the feed's summary", job.source.name, article.url)
            continue
        article.text, article.content_html = extracted
