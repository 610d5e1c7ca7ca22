"""config.toml -> Config: typed, validated, with errors a person can act on.

Every mistake a user can make becomes a `ConfigError` whose lines name the
file, the key path and the fix (`config.toml: topics.world.keywords: expected
a list of strings, got 3`). All problems are collected in one pass, so a user
fixes the whole file at once instead of one error per run.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

DEFAULT_CONFIG = "config.toml"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")  # \Z: "world\n" is no slug
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.I)
FORMATS = ("atom", "rss", "json")
RESERVED_SLUGS = {"index", "topics", "articles", "healthz"}


class ConfigError(Exception):
    """One or more user mistakes in the config; str() is ready to print."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class SiteConfig:
    title: str = "News Digest"
    base_url: str = "http://127.0.0.1:8080/"
    description: str = ""
    language: str = "en"


@dataclass(frozen=True)
class StorageConfig:
    database: Path = Path("aggregator.db")
    feeds_dir: Path = Path("feeds")
    keep_days: int = 0
    max_articles_per_source: int = 0


@dataclass(frozen=True)
class PublishConfig:
    max_items: int = 50
    related_posts: int = 5
    formats: tuple[str, ...] = FORMATS
    full_content: bool = True


@dataclass(frozen=True)
class IngestConfig:
    known_categories: tuple[str, ...] = ()
    max_file_size: int = 10 * 1024 * 1024
    max_entries: int = 20_000  # entries read from one feed (fetched or a file) or JSON list; the rest are left


@dataclass(frozen=True)
class FetchConfig:
    timeout: float = 30.0
    max_body_size: int = 10 * 1024 * 1024
    concurrency: int = 16
    per_host: int = 2
    allow_private_network: bool = False
    user_agent: str = ""  # empty: "aggregator/<version> (+<project URL>)"


@dataclass(frozen=True)
class DedupConfig:
    threshold: float = 0.75  # overlap of shingles; measured by bench/eval_quality.py


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:8080"


@dataclass(frozen=True)
class SourceConfig:
    name: str
    path: Path | None = None
    url: str | None = None
    topics: tuple[str, ...] = ()
    interval: float | None = None  # seconds; None means "auto"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_private_network: bool = False
    full_text: bool = False
    enabled: bool = True
    username: str = ""  # with password_file: Basic authorization, kept out of the URL (and so out of every output)
    password_file: Path | None = None  # read at each fetch; its content is never logged or printed

    @property
    def kind(self) -> str:
        return "local" if self.path is not None else "remote"

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else str(self.url)


@dataclass(frozen=True)
class TopicConfig:
    slug: str
    title: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_score: float = 1.0


@dataclass(frozen=True)
class Config:
    path: Path
    site: SiteConfig = field(default_factory=SiteConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    sources: tuple[SourceConfig, ...] = ()
    topics: tuple[TopicConfig, ...] = ()

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)


# --- value checkers: each returns the converted value or raises ValueError(fix) ---


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
        raise ValueError(f"expected a list of strings, got {_short(value)}")
    return tuple(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_duration(value: Any) -> float:
    """'30s', '15m', '2h', '1d' or a number of seconds -> seconds (> 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := DURATION_RE.match(value)):
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    else:
        raise ValueError(f'expected a duration like "30s", "15m" or "2h", got {_short(value)}')
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive duration, got {_short(value)}")
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
        raise ValueError(f'expected a size like "10MB" or a number of bytes, got {_short(value)}')
    if size <= 0:
        raise ValueError(f"expected a positive size, got {_short(value)}")
    return size


def _base_url(value: Any) -> str:
    text = _str(value)
    # It is written into every page and feed: no quotes, brackets or spaces to break out of them.
    if not re.fullmatch(r"https?://[^/\s\"'<>`\\]+[^\s\"'<>`\\]*", text):
        raise ValueError(f'expected an http(s) URL like "http://127.0.0.1:8080/", got {text!r}')
    return text if text.endswith("/") else text + "/"


def _feed_url(value: Any) -> str:
    text = _str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text, re.I):
        raise ValueError(f"only http:// and https:// URLs can be fetched, got {_short(value)}")
    return text


def _user_agent(value: Any) -> str:
    """A header value: printable ASCII on one line, so no config can add a header or break one."""
    text = _str(value).strip()
    if not text or len(text) > 256 or not all(" " <= ch <= "~" for ch in text):
        raise ValueError(f"expected up to 256 printable ASCII characters on one line, got {_short(value)}")
    return text


def _formats(value: Any) -> tuple[str, ...]:
    formats = _str_list(value)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"expected a non-empty list drawn from {list(FORMATS)}, got {_short(value)}")
    return formats


def _listen(value: Any) -> str:
    text = _str(value)
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f'expected "HOST:PORT" like "127.0.0.1:8080", got {text!r}')
    return text


def _regex_list(value: Any) -> tuple[str, ...]:
    patterns = _str_list(value)
    for pattern in patterns:
        try:
            re.compile(pattern)
            nested = _nested_repeat(re._parser.parse(pattern), inside_repeat=False)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"invalid regular expression {_short(pattern)}: {exc}") from None
        if nested:
            raise ValueError(f"regular expression {_short(pattern)} repeats a repetition (like "
                             "(a+)+), which can take exponential time on some text; "
                             "drop the inner or the outer quantifier")
    return patterns


def _nested_repeat(items: Any, inside_repeat: bool) -> bool:
    """True if an unbounded quantifier sits inside another: catastrophic backtracking.

    topics.py also runs every rule with a time limit; this check gives the
    usual mistake a clear error at `aggregator check` instead of a slow run.
    """
    from re import _constants as c

    for op, arg in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, body = arg
            unbounded = high == c.MAXREPEAT or high > 100
            if unbounded and inside_repeat and op != c.POSSESSIVE_REPEAT:
                return True
            if _nested_repeat(body, inside_repeat or unbounded):
                return True
        elif op == c.ATOMIC_GROUP:  # no backtracking into it
            if _nested_repeat(arg, inside_repeat=False):
                return True
        elif op in (c.SUBPATTERN, c.ASSERT, c.ASSERT_NOT):
            if _nested_repeat(arg[-1], inside_repeat):
                return True
        elif op == c.BRANCH:
            if any(_nested_repeat(branch, inside_repeat) for branch in arg[1]):
                return True
        elif op == c.GROUPREF_EXISTS:
            if any(b is not None and _nested_repeat(b, inside_repeat) for b in arg[1:]):
                return True
    return False


# --- table specs: key -> checker; the dataclass gives defaults ---

SITE = {"title": _nonempty_str, "base_url": _base_url, "description": _str, "language": _str}
STORAGE = {"database": _nonempty_str, "feeds_dir": _nonempty_str,
           "keep_days": _int_at_least(0), "max_articles_per_source": _int_at_least(0)}
PUBLISH = {"max_items": _int_at_least(1), "related_posts": _int_at_least(0),
           "formats": _formats, "full_content": _bool}
INGEST = {"known_categories": _str_list, "max_file_size": parse_size, "max_entries": _int_at_least(1)}
FETCH = {"timeout": parse_duration, "max_body_size": parse_size,
         "concurrency": _int_at_least(1), "per_host": _int_at_least(1),
         "allow_private_network": _bool, "user_agent": _user_agent}
DEDUP = {"threshold": _fraction}
SERVER = {"listen": _listen}
SOURCE = {"name": _nonempty_str, "path": _nonempty_str, "url": _feed_url,
          "topics": _str_list, "interval": _interval, "include": _str_list,
          "exclude": _str_list, "allow_private_network": _bool, "full_text": _bool,
          "enabled": _bool, "username": _nonempty_str, "password_file": _nonempty_str}
TOPIC = {"title": _nonempty_str, "description": _str, "keywords": _str_list,
         "categories": _str_list, "exclude": _str_list, "regex": _regex_list,
         "sources": _str_list, "min_score": _number}
TABLES = {"site": SITE, "storage": STORAGE, "publish": PUBLISH, "ingest": INGEST,
          "fetch": FETCH, "dedup": DEDUP, "server": SERVER}
TOP_LEVEL = [*TABLES, "sources", "topics"]


class _Checker:
    """Collects problems while converting raw TOML tables into typed values."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[str] = []

    def problem(self, key_path: str, message: str) -> None:
        # A quoted TOML key may hold a newline or an escape sequence: one problem, one printable line.
        key_path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in key_path)
        self.problems.append(f"{self.file}: {key_path}: {message}" if key_path else f"{self.file}: {message}")

    def table(self, raw: Any, spec: dict[str, Callable], key_path: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.problem(key_path, f"expected a table, got {_short(raw)}")
            return {}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            path = f"{key_path}.{key}" if key_path else key
            if key not in spec:
                self.problem(path, f"unknown key{_suggestion(key, spec)}")
                continue
            try:
                values[key] = spec[key](value)
            except ValueError as exc:
                self.problem(path, str(exc))
        return values


def _suggestion(key: str, valid: Any) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys are: {', '.join(sorted(valid))}"


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config beats $AGGREGATOR_CONFIG beats ./config.toml."""
    return Path(explicit or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def read_toml(path: Path) -> dict[str, Any]:
    """Read TOML, turning every way it can fail into a ConfigError."""
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{name}: file not found; create it or pass --config PATH"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror}"]) from None
    try:
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: invalid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}: invalid TOML: nested too deeply"]) from None


def load_config(path: str | os.PathLike | None = None, require_sources: bool = False) -> Config:
    """Load and validate; relative paths in the file are relative to the file.

    `require_sources`: a config without sources is an error too. `check` and
    the daemon's reload ask for it: running such a config publishes nothing
    and removes every topic's feeds. Commands that can start from nothing
    (`sources import`, an ad hoc `ingest`) do not.
    """
    file = config_path(path)
    return parse_config(read_toml(file), file, require_sources)


def parse_config(raw: dict[str, Any], file: Path, require_sources: bool = False) -> Config:
    check = _Checker(str(file))
    root = file.resolve().parent
    for key in raw:
        if key not in TOP_LEVEL:
            check.problem(key, f"unknown section{_suggestion(key, TOP_LEVEL)}")
    tables = {name: check.table(raw.get(name, {}), spec, name) for name, spec in TABLES.items()}
    storage = tables["storage"]
    for key in ("database", "feeds_dir"):
        if key in storage:
            storage[key] = root / storage[key]
    if "database" not in storage:
        storage["database"] = root / StorageConfig.database
    if "feeds_dir" not in storage:
        storage["feeds_dir"] = root / StorageConfig.feeds_dir
    topics = _topics(check, raw.get("topics", {}))
    sources = _sources(check, raw.get("sources", []), root, {t.slug for t in topics})
    if require_sources:
        _require_sources(check, raw)
    if check.problems:
        raise ConfigError(check.problems)
    return Config(
        path=file,
        site=SiteConfig(**tables["site"]),
        storage=StorageConfig(**storage),
        publish=PublishConfig(**tables["publish"]),
        ingest=IngestConfig(**tables["ingest"]),
        fetch=FetchConfig(**tables["fetch"]),
        dedup=DedupConfig(**tables["dedup"]),
        server=ServerConfig(**tables["server"]),
        sources=tuple(sources),
        topics=tuple(topics),
    )


def _require_sources(check: _Checker, raw: dict[str, Any]) -> None:
    """An empty file, or one without any [[sources]] entry, is one problem with its fix."""
    fix = "add a [[sources]] entry with a name and a path (a file or folder) or a url (a feed)"
    if not raw:
        check.problem("", f"the file holds no settings; {fix}")
    elif not raw.get("sources"):
        check.problem("sources", f"no sources configured; {fix}")


def _topics(check: _Checker, raw: Any) -> list[TopicConfig]:
    if not isinstance(raw, dict):
        check.problem("topics", "expected tables like [topics.world]")
        return []
    topics = []
    for slug, table in raw.items():
        path = f"topics.{slug}"
        if not SLUG_RE.match(slug) or slug in RESERVED_SLUGS or slug == "all":
            check.problem(path, "topic names become file names: use lowercase letters, digits "
                          f"and '-' (like \"middle-east\"), not {slug!r}"
                          + (" (reserved)" if slug in RESERVED_SLUGS | {"all"} else ""))
            continue
        values = check.table(table, TOPIC, path)
        values.setdefault("title", slug.replace("-", " ").title())
        topics.append(TopicConfig(slug=slug, **values))
    return topics


def _login_is_whole(check: _Checker, path: str, values: dict[str, Any]) -> bool:
    """username and password_file come together, only for a url, and not besides a login in the url."""
    given = [key for key in ("username", "password_file") if key in values]
    if not given:
        return True
    if "url" not in values:
        check.problem(path, f"{given[0]} is for a url source (a feed that needs a login), not a path")
    elif len(given) == 1:
        missing = "password_file" if given == ["username"] else "username"
        check.problem(path, f'{given[0]} needs {missing} too (the password is read from that file)')
    elif "@" in values["url"].split("//", 1)[-1].split("/", 1)[0]:
        check.problem(path, "the url holds a login too; keep it in username and password_file only")
    else:
        return True
    return False


def _sources(check: _Checker, raw: Any, root: Path, topic_slugs: set[str]) -> list[SourceConfig]:
    if not isinstance(raw, list):
        check.problem("sources", "expected [[sources]] entries")
        return []
    sources, names = [], set()
    for index, table in enumerate(raw):
        path = f"sources[{index}]"
        values = check.table(table, SOURCE, path)
        name = values.get("name")
        if name is None:
            check.problem(path, 'missing "name"; give every source a unique name')
            continue
        path = f"sources[{index}] ({name})"
        if name in names:
            check.problem(path, "duplicate source name; source names must be unique")
        names.add(name)
        if ("path" in values) == ("url" in values):
            check.problem(path, 'give exactly one of "path" (a local file or folder) or "url" (a feed)')
            continue
        if "path" in values:
            values["path"] = root / values["path"]
        if not _login_is_whole(check, path, values):
            continue
        if "password_file" in values:
            values["password_file"] = root / values["password_file"]
        for slug in values.get("topics", ()):
            if slug not in topic_slugs:
                check.problem(f"{path}.topics", f"no topic named {slug!r}{_suggestion(slug, topic_slugs)}")
        values.setdefault("interval", 900.0 if "url" in values else 300.0)
        sources.append(SourceConfig(**values))
    return sources
