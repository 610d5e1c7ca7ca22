"""The daemon's logging: info unless --log-level says otherwise, a repeated warning logged once."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict


class RepeatFilter(logging.Filter):
    """Drop a warning identical to one already logged: a broken file is reported once, not every run."""

    def __init__(self, remember: int = 10_000):
        super().__init__()
        self.remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not record.name == "aggregator":
            return True
        message = record.getMessage()
        with self._lock:
            if message in self._seen:
                self._seen.move_to_end(message)
                return False
            self._seen[message] = None
            if len(self._seen) > self.remember:
                self._seen.popitem(last=False)
        return True


def configure_logging(explicit_level: bool) -> None:
    """journald-friendly lines on stderr: no timestamps (journald adds them), no tracebacks for user errors."""
    root = logging.getLogger()
    if not explicit_level:
        root.setLevel(logging.INFO)
    repeat = RepeatFilter()
    for handler in root.handlers:
        handler.addFilter(repeat)
    if root.level > logging.DEBUG:
        # APScheduler warns on every skipped overlapping run; our own fetch lines say enough.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
