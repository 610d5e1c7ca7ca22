"""A remote feed source: when to fetch it, what the answer means, what to remember.

Three steps, so the pipeline can run the middle one on many threads while
only its own thread touches SQLite:

    plan_fetch(config, source, state)  -> FetchJob       reads the stored state (no I/O)
    run_fetch(job, fetcher)            -> FetchOutcome   HTTP + parse, no database
    (pipeline)                         store_results(..., source_state=outcome.state)

`fetch_source` chains them for one source. Its outcome is an iterable of
ParseResults that also carries the source's new state; the pipeline writes
that state in the same transaction as the articles, so a stored ETag never
covers articles that were not stored.

Status values in the `sources` table: ok, error (the last fetch failed),
backing off (failed repeatedly, or the server asked us to wait), gone
(HTTP 410: not fetched again until the source's config changes). Beside
the status, `warning` keeps what the last feed read was read in spite of
(entries past [ingest] max_entries, ill-formed XML recovered), so
`aggregator sources` shows it until a fetch reads the feed without one.

The body decides what it is, not its Content-Type. A web page that links to
a feed (`<link rel="alternate" type="application/rss+xml" href=...>`) is
followed once, to that feed, with the same fetcher and network policy; the
feed's URL is then fetched directly, like a permanent redirect, and the
source's row keeps the page in `found_on` so `aggregator sources` says how
the feed was found. If that feed fails, the next fetch asks the page again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any, Iterator
from urllib.parse import urljoin

from aggregator.config import AUTO_DEFAULT, AUTO_MAX, AUTO_MIN, Config, IngestConfig, SourceConfig
from aggregator.models import Article, ParseResult, warning_line
from aggregator.enrich.dates import iso_utc
from aggregator.ingest.netguard import NetPolicy

log = logging.getLogger("aggregator")

CACHE_STRETCH_MAX = 24 * 3600.0  # Cache-Control / Expires never push a source further out than this
BACKOFF_CAP = 24 * 3600.0
NOT_FEED_TYPES = ("image/", "audio/", "video/", "font/", "application/pdf", "application/zip",
                  "application/gzip", "application/x-tar")
STATUS_TEXT = {
    400: "the server rejected the request", 401: "the feed needs a login, which we do not support",
    403: "the server refuses to serve us this feed", 404: "there is no feed at this URL; check the source's url",
    405: "the server does not allow GET here", 406: "the server has no feed format we accept",
    451: "the feed is unavailable for legal reasons",
}


@dataclass(frozen=True)
class FetchJob:
    source: SourceConfig
    url: str
    policy: NetPolicy
    fingerprint: str
    etag: str | None = None
    last_modified: str | None = None
    error_count: int = 0
    interval: float = AUTO_DEFAULT  # the regular interval for this source now
    skip: str | None = None  # why it is not fetched this time (gone, Retry-After, not due)
    quiet_skip: bool = False  # not due yet: nothing to report
    fresh: bool = False  # first fetch since the source's config changed: forget the old state
    recorded_ok_at: datetime | None = None  # when an OK fetch was last written to the store
    found_on: str | None = None  # the web page `url` was found on, when the configured URL is a page
    known: dict[str, str] = field(default_factory=dict)  # full_text sources: stored id -> content hash
    topics: tuple = ()  # the config's TopicConfigs: articles are tagged where the feed is parsed
    max_entries: int = IngestConfig.max_entries  # entries read from the feed ([ingest] max_entries)
    login: Any = field(default=None, repr=False)  # http.Login from username + password_file, read by run_fetch


@dataclass
class FetchOutcome:
    """ParseResults for the pipeline, plus the source's new state and a note for the log."""

    source: str
    results: list[ParseResult] = field(default_factory=list)
    state: dict[str, Any] | None = None
    http_status: int | None = None
    elapsed: float = 0.0
    skipped: bool = False

    def __iter__(self) -> Iterator[ParseResult]:
        return iter(self.results)

    @property
    def note(self) -> str:
        if self.skipped:
            return "not fetched"
        status = f"HTTP {self.http_status}" if self.http_status else "no response"
        return f"{status} in {self.elapsed:.2f}s"


# --- step 1: plan (reads state only) ---


def fingerprint(source: SourceConfig) -> str:
    """What identifies a remote source's config: a change restarts its state (even 'gone')."""
    identity = [source.url, source.allow_private_network, source.interval]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def policy_for(config: Config, source: SourceConfig) -> NetPolicy:
    return NetPolicy(allow_private=config.fetch.allow_private_network or source.allow_private_network)


def plan_fetch(config: Config, source: SourceConfig, state: dict[str, Any], *,
               honour_schedule: bool = False, now: datetime | None = None) -> FetchJob:
    """Decide what to request: URL, validators, or why not to fetch now."""
    now = now or _now()
    print_ = fingerprint(source)
    policy = policy_for(config, source)
    assert source.url is not None
    if state.get("fingerprint") != print_:
        return FetchJob(source, source.url, policy, print_, interval=regular_interval(source, {}), fresh=True)
    job = FetchJob(source, state.get("url") or source.url, policy, print_, state.get("etag"),
                   state.get("last_modified"), state.get("error_count") or 0,
                   regular_interval(source, state),
                   recorded_ok_at=_parse_time(state.get("last_fetch")) if state.get("status") == "ok" else None,
                   found_on=state.get("found_on"))
    if state.get("status") == "gone":
        return _skip(job, f"gone (HTTP 410 on {state.get('last_fetch') or '?'}): the publisher removed the "
                          "feed; not fetched until you change or remove this source in the config",
                     quiet=honour_schedule)
    retry = _parse_time(state.get("retry_after"))
    if retry and retry > now:
        return _skip(job, f"not fetched: the server asked us to wait until {iso_utc(retry)} (Retry-After)",
                     quiet=honour_schedule)
    due = _parse_time(state.get("next_due"))
    if honour_schedule and due and due > now:
        return _skip(job, "not due", quiet=True)
    return job


def _skip(job: FetchJob, reason: str, quiet: bool) -> FetchJob:
    return dataclasses.replace(job, skip=reason, quiet_skip=quiet)


def regular_interval(source: SourceConfig, state: dict[str, Any]) -> float:
    """The configured interval, or for "auto" the one learned from the feed's own pace."""
    if source.interval is not None:
        return source.interval
    learned = state.get("interval_seconds")
    return float(learned) if learned else AUTO_DEFAULT


# --- step 2: fetch and parse (no database; runs on worker threads) ---


def run_fetch(job: FetchJob, fetcher: Any, now: datetime | None = None,
              rng: random.Random | None = None) -> FetchOutcome:
    """Fetch, interpret the HTTP answer, parse; every failure becomes a value."""
    name = job.source.name
    if job.skip:
        results = [] if job.quiet_skip else [ParseResult(error=job.skip)]
        return FetchOutcome(name, results, state=None, skipped=True)
    now = now or _now()
    try:
        job = dataclasses.replace(job, login=read_login(job.source))
    except OSError as exc:
        message = (f"cannot read password_file {job.source.password_file}: {exc.strerror or exc}; "
                   "fix the path or the file's permissions")
        return _failed(FetchOutcome(name), job, _base_state(job, None, now), message, now, rng)
    fetched = fetcher.fetch(job.url, job.policy, job.etag, job.last_modified, login=job.login)
    outcome = FetchOutcome(name, http_status=fetched.status, elapsed=fetched.elapsed)
    base = _base_state(job, fetched.status, now)
    if fetched.error:
        return _failed(outcome, job, base, fetched.error, now, rng)
    if fetched.status == 304:
        if not _worth_recording(job, fetched, now):
            return outcome  # nothing new, and a recent OK fetch is on record: no write at all
        outcome.state = _succeeded(job, base, fetched, now, interval=job.interval)
        return outcome
    if fetched.status == 410:
        outcome.state = {**base, "status": "gone", "last_error": _http_error(fetched, "the publisher removed "
                         "the feed; it will not be fetched again until you change this source's config"),
                         "next_due": None}
        outcome.results = [ParseResult(error=outcome.state["last_error"])]
        return outcome
    if fetched.status in (429, 503) and fetched.retry_after is not None:
        return _told_to_wait(outcome, job, base, fetched, now)
    if fetched.status is None or not 200 <= fetched.status < 300:
        return _failed(outcome, job, base, _http_error(fetched), now, rng)
    return _parsed(outcome, job, base, fetched, now, rng, fetcher)


def _worth_recording(job: FetchJob, fetched: Any, now: datetime) -> bool:
    """Whether a 304 changes anything worth a database write.

    A scheduled fetch comes at least one interval after the last recorded
    one, so it is always recorded (fresh last_fetch and next_due). An extra
    refresh soon after (`run --once` again, a manual check) that finds the
    same validators and URL costs no write: the stored state already says so.
    """
    if job.recorded_ok_at is None or fetched.moved_to or (fetched.etag and fetched.etag != job.etag):
        return True
    return now - job.recorded_ok_at >= timedelta(seconds=job.interval / 2)


def _base_state(job: FetchJob, http_status: int | None, now: datetime) -> dict[str, Any]:
    state = {"kind": "remote", "location": job.source.url, "fingerprint": job.fingerprint,
             "last_fetch": iso_utc(now), "http_status": http_status, "url": job.url, "retry_after": None}
    if job.fresh:
        state.update(etag=None, last_modified=None, interval_seconds=None, found_on=None, warning=None)
    return state


def _parsed(outcome: FetchOutcome, job: FetchJob, base: dict[str, Any], fetched: Any,
            now: datetime, rng: random.Random | None, fetcher: Any = None) -> FetchOutcome:
    if kind := _refused_type(fetched):
        return _failed(outcome, job, base, f"the server sent {kind}, not a feed; check the source's url",
                       now, rng)
    result = _parse_body(job, fetched)
    page = fetched
    if result.error and fetcher is not None and not job.found_on and (link := _linked_feed(fetched)):
        found = _follow_feed_link(job, fetched, link, fetcher)
        outcome.elapsed += found.fetched.elapsed if found.fetched else 0.0
        if found.error:
            return _failed(outcome, job, base, found.error, now, rng)
        job, fetched, result = dataclasses.replace(job, url=link), found.fetched, found.result
        base = {**base, "url": link, "http_status": fetched.status, "found_on": page.final_url}
        outcome.http_status = fetched.status
    if result.error:
        return _failed(outcome, job, base, _explain_not_feed(result.error, fetched), now, rng)
    if job.source.full_text:
        add_full_text(result.articles, job, fetcher)
        result.fingerprints.clear()  # computed from the summaries; the main thread redoes them
        result.tags.clear()
        for article in result.articles:
            article.terms = ""
    interval = learned_interval(result) if job.source.interval is None else job.interval
    outcome.state = _succeeded(job, base, fetched, now, interval=interval or job.interval)
    outcome.state.update(etag=fetched.etag, last_modified=fetched.last_modified,
                         warning=warning_line(result.warnings))
    outcome.results = [result]
    return outcome


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _refused_type(fetched: Any) -> str | None:
    """The media type, when it says the body is no feed (an image, an archive) and the body agrees."""
    kind = _media_type(fetched.content_type)
    return kind if kind.startswith(NOT_FEED_TYPES) and not _looks_like_a_document(fetched.body or b"") else None


def _looks_like_a_document(body: bytes) -> bool:
    """Markup or JSON at the start (past a byte-order mark, UTF-16 zero bytes and whitespace).

    An image or an archive never starts like this, and a feed served under such a
    type does: the content decides, the Content-Type only explains a refusal.
    """
    head = body[:512].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xfe\xff \t\r\n")
    return head[:1] in (b"<", b"{", b"[")


def _parse_body(job: FetchJob, fetched: Any) -> ParseResult:
    from aggregator.ingest.parsing_pool import parse_feed_bytes

    return parse_feed_bytes(fetched.body or b"", source=job.source.name, url=fetched.final_url,
                            content_type=fetched.content_type or None, topics=job.topics,
                            source_topics=job.source.topics, max_entries=job.max_entries)


def _is_page(fetched: Any) -> bool:
    return b"<html" in (fetched.body or b"")[:4096].lower() or "html" in _media_type(fetched.content_type)


def _linked_feed(fetched: Any) -> str | None:
    """The first feed a web page links to (rel="alternate"), or None when the body is no page."""
    if not _is_page(fetched):
        return None
    links = feed_links((fetched.body or b"")[:262144], fetched.final_url)
    return links[0] if links else None


@dataclass
class FoundFeed:
    """The fetch of the feed a page links to: its answer and parse, or why it is no use."""

    fetched: Any = None
    result: ParseResult | None = None
    error: str | None = None


def _follow_feed_link(job: FetchJob, page: Any, link: str, fetcher: Any) -> FoundFeed:
    """Fetch and parse the feed a page links to: one hop, never a page found there in turn.

    Same fetcher and network policy as the page (address checks, limits,
    deadline); no validators, as the stored ones belong to the URL asked before.
    """
    source = job.source.name
    where = f"{page.final_url} is a web page, not a feed; it links to the feed {link}"
    fetched = fetcher.fetch(link, job.policy, login=job.login)
    if fetched.error or fetched.status is None or not 200 <= fetched.status < 300:
        return FoundFeed(fetched, error=f"{where}, which failed: {fetched.error or _http_error(fetched)}")
    if kind := _refused_type(fetched):
        return FoundFeed(fetched, error=f"{where}, which is {kind}, not a feed; check the source's url")
    result = _parse_body(job, fetched)
    if result.error:
        return FoundFeed(fetched, error=f"{where}, which we cannot read: {result.error}")
    log.warning("%s: %s is a web page; reading the feed it links to, %s (put that URL in the source's url "
                "to save a fetch)", source, page.final_url, fetched.moved_to or link)
    return FoundFeed(fetched, result)


def _succeeded(job: FetchJob, base: dict[str, Any], fetched: Any, now: datetime,
               interval: float) -> dict[str, Any]:
    """A usable answer (200 or 304): adopt a permanent redirect, reset the error count."""
    wait = interval
    if fetched.max_age:
        wait = max(interval, min(fetched.max_age, CACHE_STRETCH_MAX))
    state = {**base, "status": "ok", "last_success": iso_utc(now), "last_error": None, "error_count": 0,
             "next_due": iso_utc(now + timedelta(seconds=wait)), "interval_seconds": interval,
             "url": fetched.moved_to or job.url}
    if fetched.status == 304 and fetched.etag:
        state["etag"] = fetched.etag
    if fetched.moved_to and fetched.moved_to != job.url:
        log.warning("%s: the feed moved permanently (HTTP %s) to %s; fetching it there from now on "
                    "(update url in the config)", job.source.name, fetched.redirects[-1][0], fetched.moved_to)
    return state


def _failed(outcome: FetchOutcome, job: FetchJob, base: dict[str, Any], message: str,
            now: datetime, rng: random.Random | None) -> FetchOutcome:
    count = job.error_count + 1
    delay = backoff_seconds(job.interval, count, rng)
    outcome.state = {**base, "status": "error" if count == 1 else "backing off", "last_error": message,
                     "error_count": count, "next_due": iso_utc(now + timedelta(seconds=delay))}
    if job.found_on:  # the page may link to another feed by now: ask it again next time
        outcome.state.update(url=job.source.url, found_on=None, etag=None, last_modified=None)
    outcome.results = [ParseResult(error=message)]
    return outcome


def _told_to_wait(outcome: FetchOutcome, job: FetchJob, base: dict[str, Any], fetched: Any,
                  now: datetime) -> FetchOutcome:
    until = now + timedelta(seconds=max(fetched.retry_after, 1.0))
    message = _http_error(fetched, f"the server asked us to wait until {iso_utc(until)} (Retry-After)")
    outcome.state = {**base, "status": "backing off", "last_error": message,
                     "error_count": job.error_count + 1, "retry_after": iso_utc(until),
                     "next_due": iso_utc(max(until, now + timedelta(seconds=job.interval)))}
    outcome.results = [ParseResult(error=message)]
    return outcome


def backoff_seconds(interval: float, failures: int, rng: random.Random | None = None) -> float:
    """Exponential in the number of failures in a row, from the source's interval, capped, jittered.

    Jitter (+-10%) keeps sources that failed together (one host down) from
    all coming back in the same second.
    """
    delay = min(interval * 2 ** max(failures - 1, 0), BACKOFF_CAP)
    return min(delay * (rng or random).uniform(0.9, 1.1), BACKOFF_CAP)


def learned_interval(result: ParseResult) -> float | None:
    """For interval = "auto": half the median gap between the latest entries, within bounds."""
    dates = sorted((a.published for a in result.articles if a.published), reverse=True)[:11]
    if len(dates) < 2:
        return None
    gaps = [(a - b).total_seconds() for a, b in zip(dates, dates[1:])]
    import statistics  # here: it imports fractions and decimal, start-up time a refresh need not pay

    return min(max(statistics.median(gaps) / 2, AUTO_MIN), AUTO_MAX)


def _http_error(fetched: Any, detail: str | None = None) -> str:
    reason = f" {fetched.reason}" if fetched.reason else ""
    if detail is None:
        status = fetched.status or 0
        detail = STATUS_TEXT.get(status) or ("server error; will retry with backoff" if status >= 500
                                             else "unexpected answer; will retry with backoff")
    return f"HTTP {fetched.status}{reason} from {fetched.final_url}: {detail}"


def _explain_not_feed(error: str, fetched: Any) -> str:
    """Parse errors, with the feed an HTML page links to when that is what we got (and did not follow)."""
    if not _is_page(fetched):
        return error
    if link := _linked_feed(fetched):
        return f"{fetched.final_url} is a web page, not a feed; it links to the feed {link}: put that in the source's url"
    return f"{fetched.final_url} is a web page, not a feed, and it links to no feed; check the source's url"


class _FeedLinkFinder(HTMLParser):
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
    finder = _FeedLinkFinder()
    try:
        finder.feed(html.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - a broken page only means no suggestion
        return []
    return [urljoin(base, link) for link in finder.links if link.strip()]


# --- full text for summary-only feeds (full_text = true) ---


def add_full_text(articles: list[Article], job: FetchJob, fetcher: Any) -> None:
    """Replace each new or changed entry's summary with its page's article text.

    Pages are fetched with the feed's own fetcher and network policy (same
    limits, timeouts and address checks), one at a time, and only for entries
    the store does not hold with the same content hash, so a feed that is
    fetched again costs no page requests. The article keeps the hash of its
    feed version: the next fetch of an unchanged entry is "unchanged", and the
    stored full text is never overwritten by the summary. On any failure the
    entry keeps its summary, and one line says why.
    """
    from aggregator.ingest.encoding import UndecodableError, decode_text
    from aggregator.ingest.html import extract_article_html

    for article in articles:
        if not article.url or job.known.get(article.id) == article.content_hash:
            continue
        page = fetcher.fetch(article.url, job.policy)
        kind = (page.content_type or "").split(";", 1)[0].strip().lower()
        if page.error or page.status != 200 or not page.body or "html" not in kind:
            log.info("%s: full text of %s not fetched (%s); keeping the feed's summary", job.source.name,
                     article.url, page.error or f"HTTP {page.status}, {kind or 'no content type'}")
            continue
        try:
            extracted = extract_article_html(decode_text(page.body, _charset(page.content_type)), page.final_url,
                                             article.title)
        except UndecodableError as exc:
            extracted = None
            log.info("%s: full text of %s: %s; keeping the feed's summary", job.source.name, article.url, exc)
        if extracted is None:
            log.info("%s: no article text found at %s; keeping the feed's summary", job.source.name, article.url)
            continue
        article.text, article.content_html = extracted


def _charset(content_type: str | None) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"').strip()
    return None


# --- one source, start to end ---


def plan_from_store(config: Config, store: Any, source: SourceConfig, *, honour_schedule: bool = False,
                    now: datetime | None = None, state: dict[str, Any] | None = None) -> FetchJob:
    """plan_fetch with what the store knows: the source's state, and for full_text its stored articles.

    `state` is the source's stored row when the caller already read every row at once.
    """
    state = store.source_state(source.name) if state is None else state
    job = plan_fetch(config, source, state, honour_schedule=honour_schedule, now=now)
    job = dataclasses.replace(job, topics=config.topics, max_entries=config.ingest.max_entries)
    if source.full_text and not job.skip:
        job = dataclasses.replace(job, known=store.content_hashes_of_source(source.name))
    return job


def fetch_source(config: Config, store: Any, source: SourceConfig, *, fetcher: Any = None,
                 honour_schedule: bool = False, now: datetime | None = None) -> FetchOutcome:
    """Fetch one remote source. Writes nothing: the pipeline stores results and state together."""
    job = plan_from_store(config, store, source, honour_schedule=honour_schedule, now=now)
    if fetcher is not None:
        return run_fetch(job, fetcher, now)
    with new_fetcher(config) as own:
        return run_fetch(job, own, now)


def read_login(source: SourceConfig) -> Any:
    """The source's Basic-authorization login (None without one); OSError if its password file is unreadable.

    Read at each fetch, so a rotated password needs no restart and the
    password is held only while the fetch runs.
    """
    if not source.username or source.password_file is None:
        return None
    from aggregator.ingest.http import Login

    return Login(source.username, source.password_file.read_text("utf-8").rstrip("\r\n"))


def new_fetcher(config: Config) -> Any:
    from aggregator.ingest.http import Fetcher, FetchLimits

    limits = FetchLimits(timeout=config.fetch.timeout, max_body_size=config.fetch.max_body_size)
    return Fetcher(limits, max_connections=config.fetch.concurrency, user_agent=config.fetch.user_agent,
                   per_host=config.fetch.per_host)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
