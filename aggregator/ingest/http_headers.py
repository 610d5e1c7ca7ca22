"""Header values that steer scheduling and reading: freshness, Retry-After, media type, charset.

Pure functions of the strings a server sent: how long it says the feed
stays fresh (RFC 9111: max-age beats Expires), how long it asks us to wait
(delta-seconds or an HTTP date, capped at a week), and what a Content-Type
names.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone

MAX_RETRY_AFTER = 7 * 86400.0
MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.I)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; capped at a week."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    when = _http_date(value)
    if when is None:
        return None
    now = now or datetime.now(timezone.utc)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def freshness_seconds(cache_control: str | None, expires: str | None, date: str | None,
                      now: datetime | None = None) -> float | None:
    """How long the server says the feed stays fresh: max-age beats Expires (RFC 9111)."""
    if cache_control:
        if re.search(r"\b(no-cache|no-store)\b", cache_control, re.I):
            return 0.0
        if match := MAX_AGE_RE.search(cache_control):
            return float(match.group(1))
    if expires:
        when = _http_date(expires)
        if when is None:
            return 0.0  # an invalid Expires means "already expired"
        origin = _http_date(date) if date else None
        return max((when - (origin or now or datetime.now(timezone.utc))).total_seconds(), 0.0)
    return None


def _http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def media_type(content_type: str | None) -> str:
    """'application/rss+xml' from 'application/rss+xml; charset=utf-8': lower-cased, parameters left out."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type, unquoted, or None."""
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"').strip()
    return None
