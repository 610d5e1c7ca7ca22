"""What each config key accepts: one raw TOML value in, a typed value out.

A checker returns the converted value or raises ValueError with the fix in
words (`expected a list of strings, got 3`); load.py adds the file and the
key path. The table specs at the end map every key of every table to its
checker; the dataclasses in model.py give the defaults of keys left out.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from aggregator import config
from aggregator.config.model import FORMATS

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.I)


def short_repr(value: Any) -> str:
    """repr(value), cut to one short line for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _nonempty_str(value: Any) -> str:
    if not _str(value).strip():
        raise ValueError("expected a non-empty string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _int_at_least(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < minimum:
            raise ValueError(f"expected a number >= {minimum}, got {value}")
        return value

    return check


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number between 0 and 1, got {value!r}")
    if not 0 < value <= 1:
        raise ValueError(f"expected a number between 0 and 1, got {value}")
    return float(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {short_repr(value)}")
    return tuple(value)


def _languages(value: Any) -> tuple[str, ...]:
    codes = tuple(code.strip().lower() for code in _str_list(value))
    wrong = [code for code in codes if not re.fullmatch(r"[a-z]{2}", code)]
    if wrong:
        raise ValueError(f'expected ISO 639-1 codes like ["en", "de"], got {short_repr(wrong[0])}')
    return codes


def parse_duration(value: Any) -> float:
    """'30s', '15m', '2h', '1d' or a number of seconds -> seconds (> 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := DURATION_RE.match(value)):
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    else:
        raise ValueError(f'expected a duration like "30s", "15m" or "2h", got {short_repr(value)}')
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive duration, got {short_repr(value)}")
    return seconds


def _interval(value: Any) -> float | None:
    return None if value == "auto" else parse_duration(value)


def parse_size(value: Any) -> int:
    """'10MB', '512kB', 1048576 -> bytes (> 0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (m := SIZE_RE.match(value)):
        unit = (m.group(2) or "b").lower()
        factor = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
                  "kib": 1024, "mib": 1024**2, "gib": 1024**3}[unit]
        scaled = float(m.group(1)) * factor
        size = int(scaled) if math.isfinite(scaled) else -1  # "1e999MB" is no size
    else:
        raise ValueError(f'expected a size like "10MB" or a number of bytes, got {short_repr(value)}')
    if size <= 0:
        raise ValueError(f"expected a positive size, got {short_repr(value)}")
    return size


# An http(s) URL we write into feeds, pages and OPML: no quotes, brackets or spaces to break out of them.
WEB_URL_RE = re.compile(r"https?://[^/\s\"'<>`\\]+[^\s\"'<>`\\]*", re.I)


def _base_url(value: Any) -> str:
    text = _str(value)
    if not WEB_URL_RE.fullmatch(text):
        raise ValueError(f'expected an http(s) URL like "http://127.0.0.1:8080/", got {text!r}')
    return text if text.endswith("/") else text + "/"


def _feed_url(value: Any) -> str:
    text = _str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text, re.I):
        raise ValueError(f"only http:// and https:// URLs can be fetched, got {short_repr(value)}")
    return text


def _web_url(value: Any) -> str:
    text = _str(value).strip()
    if not WEB_URL_RE.fullmatch(text):
        raise ValueError(f'expected an http(s) URL like "https://news.example/", got {short_repr(value)}')
    return text


def _user_agent(value: Any) -> str:
    """A header value: printable ASCII on one line, so no config can add a header or break one."""
    text = _str(value).strip()
    if not text or len(text) > 256 or not all(" " <= ch <= "~" for ch in text):
        raise ValueError(f"expected up to 256 printable ASCII characters on one line, got {short_repr(value)}")
    return text


def _formats(value: Any) -> tuple[str, ...]:
    formats = _str_list(value)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"expected a non-empty list drawn from {list(FORMATS)}, got {short_repr(value)}")
    return formats


def listen_address(value: Any) -> str:
    text = _str(value)
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f'expected "HOST:PORT" like "127.0.0.1:8080", got {text!r}')
    return text


def _regex_list(value: Any) -> tuple[str, ...]:
    """Topic regex rules, each checked by the engine that runs them (config/topic_regex.py)."""
    return tuple(config.topic_regex.checked_rule(pattern) for pattern in _str_list(value))


# --- table specs: key -> checker; the dataclasses in model.py give defaults ---

SITE = {"title": _nonempty_str, "base_url": _base_url, "description": _str, "language": _str}
STORAGE = {"database": _nonempty_str, "feeds_dir": _nonempty_str,
           "keep_days": _int_at_least(0), "max_articles_per_source": _int_at_least(0)}
PUBLISH = {"max_items": _int_at_least(1), "related_posts": _int_at_least(0),
           "formats": _formats, "full_content": _bool, "websub_hub": _web_url}
INGEST = {"known_categories": _str_list, "max_file_size": parse_size, "max_entries": _int_at_least(1)}
FETCH = {"timeout": parse_duration, "max_body_size": parse_size,
         "concurrency": _int_at_least(1), "per_host": _int_at_least(1),
         "allow_private_network": _bool, "user_agent": _user_agent}
DEDUP = {"threshold": _fraction}
SERVER = {"listen": listen_address}
SOURCE = {"name": _nonempty_str, "path": _nonempty_str, "url": _feed_url,
          "topics": _str_list, "interval": _interval, "include": _str_list,
          "exclude": _str_list, "allow_private_network": _bool, "full_text": _bool,
          "enabled": _bool, "username": _nonempty_str, "password_file": _nonempty_str,
          "home_page": _web_url}
TOPIC = {"title": _nonempty_str, "description": _str, "keywords": _str_list,
         "categories": _str_list, "exclude": _str_list, "regex": _regex_list,
         "sources": _str_list, "min_score": _number, "languages": _languages}
TABLES = {"site": SITE, "storage": STORAGE, "publish": PUBLISH, "ingest": INGEST,
          "fetch": FETCH, "dedup": DEDUP, "server": SERVER}
TOP_LEVEL = [*TABLES, "sources", "topics"]
