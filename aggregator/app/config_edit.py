"""Changing config.toml for the user: add or remove a source, import OPML, write a starter file.

Edits go through tomlkit, so the file's comments, order and layout
survive. The new text is checked as a whole config before it replaces the
old file, atomically: a command that would break the config changes
nothing and says why.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit

from aggregator.config import ConfigError, parse_config


class EditError(ValueError):
    """The edit cannot be made; str() names the file and says what to do."""


def load_document(config_file: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(config_file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise EditError(f"{config_file}: cannot read: {exc.strerror or exc}; "
                        "run `aggregator init` to create one") from None
    except tomlkit.exceptions.TOMLKitError as exc:
        raise EditError(f"{config_file}: not valid TOML ({exc}); fix it first (`aggregator check`)") from None


def save_document(config_file: Path, document: tomlkit.TOMLDocument, what: str) -> None:
    """Check the edited config as a whole, then replace the file atomically; EditError if it would be invalid."""
    text = tomlkit.dumps(document)
    try:
        parse_config(tomllib.loads(text), config_file)
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise EditError(f"{config_file}: {what} would make the config invalid, so nothing was changed: {exc}") from None
    write_atomically(config_file, text)


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sources_of(document: tomlkit.TOMLDocument) -> Any:
    """The [[sources]] array of tables, created empty when the file has none."""
    existing = document.get("sources")
    if existing is None:
        existing = tomlkit.aot()
        document.append("sources", existing)
    return existing


def url_key(url: str) -> str:
    """Same feed, written differently: scheme and host are case-insensitive, a trailing slash is noise."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}"


def unique_name(title: str, names: set[str]) -> str:
    base = " ".join(title.split())[:80] or "feed"
    name, n = base, 2
    while name in names:
        name, n = f"{base} ({n})", n + 1
    names.add(name)
    return name


def add_source(config_file: Path, url: str, name: str | None = None, topics: tuple[str, ...] = ()) -> str:
    """Append a remote source; returns its name. The URL must not be configured already."""
    document = load_document(config_file)
    sources = sources_of(document)
    for source in sources:
        if "url" in source and url_key(str(source["url"])) == url_key(url):
            raise EditError(f"{config_file}: {url} is already configured as {source.get('name')!r}")
    names = {str(s.get("name")) for s in sources}
    if name is not None and name in names:
        raise EditError(f"{config_file}: a source is already named {name!r}; choose another --name")
    table = tomlkit.table()
    table.add("name", name or unique_name(urlsplit(url).hostname or url, names))
    table.add("url", url)
    if topics:
        table.add("topics", list(topics))
    sources.append(table)
    save_document(config_file, document, f"adding {url}")
    return str(table["name"])


def remove_source(config_file: Path, name: str) -> None:
    document = load_document(config_file)
    sources = sources_of(document)
    names = [str(s.get("name")) for s in sources]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else "; `aggregator sources` lists them"
        raise EditError(f"{config_file}: no source named {name!r}{hint}")
    del sources[names.index(name)]
    if not len(sources):
        del document["sources"]
    save_document(config_file, document, f"removing {name!r}")
