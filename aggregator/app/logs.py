"""How log lines look: plain for a terminal, prefixed for journald, JSON for log shippers.

Every command logs to stderr. Under systemd, stderr is a journald stream
and systemd sets JOURNAL_STREAM; journald then reads a `<N>` prefix as the
line's syslog priority, so `journalctl -p err` finds our errors. A log
shipper (Vector, Fluent Bit, Loki's promtail) wants one JSON object per
line instead of parsing prose.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

FORMATS = ("text", "json")

# syslog priorities (RFC 5424) journald understands as a `<N>` line prefix.
PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def priority(level: int) -> int:
    """The syslog priority of a logging level; levels between ours take the next more severe one."""
    for threshold in sorted(PRIORITIES, reverse=True):
        if level >= threshold:
            return PRIORITIES[threshold]
    return 7


class TextFormatter(logging.Formatter):
    """`LEVEL message`; with a `<N>` priority prefix when stderr is journald's stream."""

    def __init__(self, journald: bool = False):
        super().__init__("%(levelname)s %(message)s")
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.journald:
            return text
        prefix = f"<{priority(record.levelno)}>"
        # journald starts a new entry at each newline: each line of a traceback keeps the priority.
        return "\n".join(prefix + line for line in text.split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def stderr_is_journald() -> bool:
    """Whether stderr is the journald stream systemd set up (JOURNAL_STREAM names its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        status = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return TextFormatter(journald=stderr_is_journald())
