"""What an HTTP answer means for a feed: the answer (and its parse) in, a FetchOutcome out.

Pure functions, like remote_plan.py: they touch no network and no database,
and log nothing. remote.py performs the fetch and the parse and asks here
what they amount to; the pipeline writes the new state in the same
transaction as the articles, so a stored ETag never covers articles that
were not stored.

Status values in the `sources` table: ok, error (the last fetch failed),
backing off (failed repeatedly, or the server asked us to wait), gone
(HTTP 410: not fetched again until the source's config changes). Beside
the status, `warning` keeps what the last feed read was read in spite of
(entries past [ingest] max_entries, ill-formed XML recovered), so
`aggregator sources` shows it until a fetch reads the feed without one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

from aggregator.config import AUTO_MAX, AUTO_MIN
from aggregator.enrich.dates import iso_utc
from aggregator.ingest.http_headers import media_type
from aggregator.ingest.remote_plan import FetchJob
from aggregator.models import ParseResult, warning_line

if TYPE_CHECKING:
    from aggregator.ingest.http import FetchResult

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


def not_fetched(job: FetchJob) -> FetchOutcome:
    """A job the plan skipped: its reason as the source's error, or nothing when it is only not due."""
    results = [] if job.quiet_skip else [ParseResult(error=job.skip)]
    return FetchOutcome(job.source.name, results, state=None, skipped=True)


def answered(job: FetchJob, fetched: FetchResult, now: datetime,
             rng: random.Random | None = None) -> FetchOutcome | None:
    """The outcome the HTTP answer settles on its own; None when its body is a document to read."""
    if fetched.error:
        return failed(job, now, fetched.error, rng, http_status=fetched.status, elapsed=fetched.elapsed)
    outcome = FetchOutcome(job.source.name, http_status=fetched.status, elapsed=fetched.elapsed)
    if fetched.status == 304 and not _worth_recording(job, fetched, now):
        return outcome  # nothing new, and a recent OK fetch is on record: no state, so no write
    base = _base_state(job, fetched.status, now)
    if fetched.status == 304:
        outcome.state = _succeeded(job, base, fetched, now, interval=job.interval)
        return outcome
    if fetched.status == 410:
        outcome.state = {**base, "status": "gone", "last_error": http_error(fetched, "the publisher removed "
                         "the feed; it will not be fetched again until you change this source's config"),
                         "next_due": None}
        outcome.results = [ParseResult(error=outcome.state["last_error"])]
        return outcome
    if fetched.status in (429, 503) and fetched.retry_after is not None:
        return _told_to_wait(outcome, job, base, fetched, now)
    if fetched.status is None or not 200 <= fetched.status < 300:
        return failed(job, now, http_error(fetched), rng, http_status=fetched.status, elapsed=fetched.elapsed)
    if kind := refused_type(fetched):
        return failed(job, now, f"the server sent {kind}, not a feed; check the source's url", rng,
                      http_status=fetched.status, elapsed=fetched.elapsed)
    return None


def feed_read(job: FetchJob, fetched: FetchResult, result: ParseResult, now: datetime, *,
              found_on: str | None = None, elapsed: float | None = None) -> FetchOutcome:
    """A feed read without error: adopt its validators, learn its pace ("auto"), keep its warning.

    `found_on` is the web page the feed was found on, when `job.url` is the
    feed that page links to; `elapsed` then counts both requests.
    """
    base = _base_state(job, fetched.status, now)
    if found_on is not None:
        base["found_on"] = found_on
    interval = learned_interval(result) if job.source.interval is None else job.interval
    state = _succeeded(job, base, fetched, now, interval=interval or job.interval)
    state.update(etag=fetched.etag, last_modified=fetched.last_modified, warning=warning_line(result.warnings))
    return FetchOutcome(job.source.name, [result], state, http_status=fetched.status,
                        elapsed=fetched.elapsed if elapsed is None else elapsed)


def failed(job: FetchJob, now: datetime, message: str, rng: random.Random | None = None, *,
           http_status: int | None = None, elapsed: float = 0.0) -> FetchOutcome:
    """A failed fetch or read: one more failure in a row, the next try backed off."""
    count = job.error_count + 1
    delay = backoff_seconds(job.interval, count, rng)
    state = {**_base_state(job, http_status, now), "status": "error" if count == 1 else "backing off",
             "last_error": message, "error_count": count, "next_due": iso_utc(now + timedelta(seconds=delay))}
    if job.found_on:  # the page may link to another feed by now: ask it again next time
        state.update(url=job.source.url, found_on=None, etag=None, last_modified=None)
    return FetchOutcome(job.source.name, [ParseResult(error=message)], state, http_status=http_status,
                        elapsed=elapsed)


def moved(job: FetchJob, fetched: FetchResult) -> bool:
    """Whether a usable answer came from elsewhere through permanent redirects: the stored URL follows."""
    return bool(fetched.moved_to) and fetched.moved_to != job.url


def _worth_recording(job: FetchJob, fetched: FetchResult, now: datetime) -> bool:
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


def _succeeded(job: FetchJob, base: dict[str, Any], fetched: FetchResult, now: datetime,
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
    return state


def _told_to_wait(outcome: FetchOutcome, job: FetchJob, base: dict[str, Any], fetched: FetchResult,
                  now: datetime) -> FetchOutcome:
    assert fetched.retry_after is not None
    until = now + timedelta(seconds=max(fetched.retry_after, 1.0))
    message = http_error(fetched, f"the server asked us to wait until {iso_utc(until)} (Retry-After)")
    outcome.state = {**base, "status": "backing off", "last_error": message,
                     "error_count": job.error_count + 1, "retry_after": iso_utc(until),
                     "next_due": iso_utc(max(until, now + timedelta(seconds=job.interval)))}
    outcome.results = [ParseResult(error=message)]
    return outcome


def refused_type(fetched: FetchResult) -> str | None:
    """The media type, when it says the body is no feed (an image, an archive) and the body agrees."""
    kind = media_type(fetched.content_type)
    return kind if kind.startswith(NOT_FEED_TYPES) and not _looks_like_a_document(fetched.body or b"") else None


def _looks_like_a_document(body: bytes) -> bool:
    """Markup or JSON at the start (past a byte-order mark, UTF-16 zero bytes and whitespace).

    An image or an archive never starts like this, and a feed served under such a
    type does: the content decides, the Content-Type only explains a refusal.
    """
    head = body[:512].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xfe\xff \t\r\n")
    return head[:1] in (b"<", b"{", b"[")


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
    gaps = sorted((a - b).total_seconds() for a, b in zip(dates, dates[1:]))
    middle = len(gaps) // 2
    median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    return min(max(median / 2, AUTO_MIN), AUTO_MAX)


def http_error(fetched: FetchResult, detail: str | None = None) -> str:
    """'HTTP 404 Not Found from URL: what it means', for the source's owner."""
    reason = f" {fetched.reason}" if fetched.reason else ""
    if detail is None:
        status = fetched.status or 0
        detail = STATUS_TEXT.get(status) or ("server error; will retry with backoff" if status >= 500
                                             else "unexpected answer; will retry with backoff")
    return f"HTTP {fetched.status}{reason} from {fetched.final_url}: {detail}"
