"""Full text for summary-only feeds (a source's `full_text = true`): each entry's page, read for its article.

Loaded only for such sources: it brings in trafilatura (html.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from aggregator.ingest.encoding import UndecodableError, decode_text
from aggregator.ingest.html import extract_article_html
from aggregator.ingest.http_headers import charset_of, media_type
from aggregator.ingest.remote_plan import FetchJob
from aggregator.models import Article, ParseResult

if TYPE_CHECKING:
    from aggregator.ingest.http import Fetcher

log = logging.getLogger("aggregator")


def with_full_text(result: ParseResult, job: FetchJob, fetcher: Fetcher) -> ParseResult:
    """The feed's result with each new or changed entry's summary replaced by its page's article text.

    The articles are new values: their topics, salient words and dedup
    fingerprint, if the parse worker worked them out, came from the summary,
    so the result is marked not enriched and the main thread's enrich chain
    and dedup redo them from the full text.
    """
    return replace(result, articles=[_full_text(article, job, fetcher) for article in result.articles],
                   fingerprints={}, enriched=False)


def _full_text(article: Article, job: FetchJob, fetcher: Fetcher) -> Article:
    """The entry with its page's article text in place of its summary, or as it is.

    Pages are fetched with the feed's own fetcher and network policy (same
    limits, timeouts and address checks), one at a time, and only for entries
    the store does not hold with the same content hash, so a feed that is
    fetched again costs no page requests. The article keeps the hash of its
    feed version: the next fetch of an unchanged entry is "unchanged", and the
    stored full text is never overwritten by the summary. On any failure the
    entry keeps its summary, and one line says why.
    """
    if not article.url or job.known.get(article.id) == article.content_hash:
        return article
    page = fetcher.fetch(article.url, job.policy)
    kind = media_type(page.content_type)
    if page.error or page.status != 200 or not page.body or "html" not in kind:
        log.info("%s: full text of %s not fetched (%s); keeping the feed's summary", job.source.name,
                 article.url, page.error or f"HTTP {page.status}, {kind or 'no content type'}")
        return article
    try:
        extracted = extract_article_html(decode_text(page.body, charset_of(page.content_type)), page.final_url,
                                         article.title)
    except UndecodableError as exc:
        extracted = None
        log.info("%s: full text of %s: %s; keeping the feed's summary", job.source.name, article.url, exc)
    if extracted is None:
        log.info("%s: no article text found at %s; keeping the feed's summary", job.source.name, article.url)
        return article
    text, content_html = extracted
    return replace(article, text=text, content_html=content_html)
