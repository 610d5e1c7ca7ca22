"""What no article carries into the store, whichever parser produced it.

In: an Article as a parser made it. Out: the same story without characters
XML 1.0 cannot hold (one would stop every publish) and without the login of
the feed URL it came from (it must not reach a published <source url>).
"""

from __future__ import annotations

from dataclasses import replace

from aggregator.enrich.text import is_xml_safe, xml_safe
from aggregator.models import Article
from aggregator.redact import redact

TEXT_FIELDS = ("title", "site", "url", "guid", "summary", "text", "content_html", "image", "origin")
LONG_TEXT_FIELDS = ("text", "content_html")


def scrub(article: Article) -> Article:
    """The article XML-safe and with its origin redacted; the same value when nothing changes."""
    texts = [getattr(article, name) or "" for name in TEXT_FIELDS if name not in LONG_TEXT_FIELDS]
    texts += [*article.authors, *article.categories, *(r.title + r.author for r in article.site_related)]
    # One pass over the short fields joined (nearly always clean), one over each long one: a
    # joined copy of a 10 MB text is 20-40 MB more at the moment memory peaks.
    if all(is_xml_safe(text) for text in ["\n".join(texts), article.text, article.content_html]):
        origin = redact(article.origin)
        return article if origin == article.origin else replace(article, origin=origin)
    changes = {name: xml_safe(value) for name in TEXT_FIELDS if (value := getattr(article, name))}
    changes["origin"] = redact(changes.get("origin", article.origin))
    return replace(article, **changes,
                   authors=tuple(xml_safe(a) for a in article.authors),
                   categories=tuple(xml_safe(c) for c in article.categories),
                   site_related=tuple(replace(r, title=xml_safe(r.title), author=xml_safe(r.author))
                                      for r in article.site_related))
