"""config.toml -> Config, or a ConfigError listing every problem.

Every mistake a user can make becomes a line that names the file, the key
path and the fix (`config.toml: topics.world.keywords: expected a list of
strings, got 3`). All problems are collected in one pass, so a user fixes
the whole file at once instead of one error per run. Paths in the file are
relative to the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from aggregator.config.checks import SOURCE, TABLES, TOP_LEVEL, TOPIC, short_repr
from aggregator.config.model import (
    DEFAULT_CONFIG, LOCAL_INTERVAL, REMOTE_INTERVAL, Config, DedupConfig, FetchConfig, IngestConfig,
    PublishConfig, ServerConfig, SiteConfig, SourceConfig, StorageConfig, TopicConfig,
)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")  # \Z: "world\n" is no slug
RESERVED_SLUGS = {"index", "topics", "articles", "healthz"}


class ConfigError(Exception):
    """One or more user mistakes in the config; str() is ready to print."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


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
            self.problem(key_path, f"expected a table, got {short_repr(raw)}")
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
        values.setdefault("interval", REMOTE_INTERVAL if "url" in values else LOCAL_INTERVAL)
        sources.append(SourceConfig(**values))
    return sources
