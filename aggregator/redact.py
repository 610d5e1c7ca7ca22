"""Credentials in source URLs never leave the process.

A feed URL may carry a login (`https://reader:secret@host/feed.xml`): it
works, and fetching sends it as Basic authorization, but every log line,
command output, export, published page and /healthz shows it as
`https://reader:***@host/feed.xml`. A user name alone is often a token, so
it becomes `***` too.
"""

from __future__ import annotations

import logging
import re

# scheme://userinfo@ : userinfo runs to the last "@" before the path, query or fragment starts.
USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s@]*(?:@[^/?#\s@]*)*)@")


def redact(text: str) -> str:
    """`text` with the password (or a lone user name) of every URL in it replaced by ***."""
    if "@" not in text:
        return text
    return USERINFO.sub(_masked, text)


def _masked(match: re.Match) -> str:
    user, has_password, _ = match["userinfo"].partition(":")
    shown = f"{user}:***" if has_password and user else "***"
    return f"{match['scheme']}{shown}@"


class RedactingFilter(logging.Filter):
    """On a handler: every record it writes, from any logger, is redacted once formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_text is None and "@" in (text := logging.Formatter().formatException(
                record.exc_info)):
            record.exc_text = redact(text)
        return True
