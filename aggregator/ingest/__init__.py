"""ingest stage: configured sources in, ParseResults (Articles, skipped inputs, warnings) and source state out.

Remote feeds, in the order a fetch runs:

    remote_plan.py    config + stored state -> FetchJob: what to request, or why not now (pure)
    remote.py         FetchJob -> FetchOutcome: performs the fetch, the parse, a linked feed, full text
    remote_state.py   an HTTP answer (and its parse) -> the source's new state row (pure)
    http.py           URL + validators -> FetchResult: redirects, limits, the deadline (urllib3)
    http_request.py   a URL -> the request as it goes on the wire
    wire_host.py      a Unicode host name -> its ASCII form (idna, loaded only for such names)
    http_body.py      a response -> its body, bounded while it streams and decompressed
    http_errors.py    urllib3 and socket exceptions -> one line the source's owner can act on
    http_headers.py   Cache-Control, Expires, Retry-After -> seconds; a Content-Type's type, charset
    transport.py      urllib3 connections under netguard and a total deadline
    netguard.py       which addresses a fetch may reach (no SSRF, no DNS rebinding)
    tls.py            the TLS context: Mozilla's CA bundle, host names verified (loaded for https only)
    feed_links.py     a web page -> the feeds it links to
    full_text.py      summary-only entries -> their page's article text
    parsing_pool.py   a large feed -> parsed, fingerprinted and tagged in a worker process
    concurrency.py    jobs -> threads, bounded overall and per host

Feeds, whether fetched or saved in a folder:

    feed.py           feed bytes -> ParseResult: the one way in; the content decides the format
    feed_xml.py       RSS and Atom through feedparser
    feed_fast.py      feedparser-rs, only where it reads a feed as feedparser does
    xml_document.py   XML bytes before a parser sees them: entities refused, truncation found
    feed_json.py      JSON Feed 1.0 and 1.1
    feed_entries.py   what every format shares: entries -> Articles, names, the cap

Local folders:

    local.py          a folder -> its changed files -> Articles; recognises each file's kind
    plaintext.py      the plain-text article format
    markdown.py       Markdown with YAML or TOML front matter
    front_matter.py   where front matter is, so a file's kind is known without loading Markdown
    html.py           HTML pages (trafilatura), and a fetched page's article text
    jsonfile.py       JSON article objects, lists of them, or a JSON Feed
    encoding.py       bytes -> text when the encoding cannot be trusted
    charset_guess.py  the last resort: charset-normalizer's guess

    source_status.py  a source's row in the `sources` table after a read, and the listing

Submodules load on first use (below): a command that reads no feed never
imports feedparser, and one that fetches nothing never imports urllib3.
"""

import importlib

_SUBMODULES = {
    "remote_plan", "remote", "remote_state", "http", "http_request", "http_body", "http_errors", "http_headers",
    "wire_host", "transport", "netguard", "tls", "feed_links", "full_text", "parsing_pool", "concurrency",
    "feed", "feed_xml", "feed_fast", "xml_document", "feed_json", "feed_entries",
    "local", "plaintext", "markdown", "front_matter", "html", "jsonfile", "encoding", "charset_guess", "source_status",
}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
