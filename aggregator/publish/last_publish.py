"""The last publish: what it wrote, and whether anything it depends on has changed since.

Kept apart from render.py so that a run with nothing new (an unchanged
refresh) answers "nothing to do" without importing feedgen and lxml.

"Nothing to do" needs both: the stamp (stored content, config, version) is
the one the last publish rendered, and every file it wrote still holds the
bytes it wrote (a SHA-256 per file, recorded in the database). A file that is
missing, truncated, emptied or edited, or a stray page under feeds/articles/,
sends the publish down the full path, which writes back whatever differs.
Hashing the files is cheap next to rendering them, so it is done at every
publish.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aggregator import __version__
from aggregator.config import Config
from aggregator.storage.store import Store

log = logging.getLogger("aggregator")
PAGES_DIR = "articles"  # feeds/articles/: pages for local articles without a URL of their own
NAMES_SHOWN = 5  # damaged files named in the one log line; the rest are counted


@dataclass
class PublishReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # one line per stored article no feed could carry

    def summary(self) -> str:
        count = len(self.left_out)
        left_out = f", {count} article{'' if count == 1 else 's'} left out (see above)" if count else ""
        return (f"published: {len(self.written)} written, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed{left_out}")


def publish_stamp(config: Config, store: Store) -> str:
    """What the published files are a function of: stored content, the config, our version.

    Rendering never reads the clock, so when this stamp matches the last
    publish's, every file would come out byte-identical and none is rendered.
    """
    inputs = repr((__version__, store.content_version(), config.site, config.publish, config.topics,
                   config.storage.feeds_dir))
    return hashlib.sha256(inputs.encode("utf-8")).hexdigest()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """The file's SHA-256, or None when it cannot be read as a file (missing, a folder, unreadable)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _key(config: Config) -> str:
    return f"published:{config.storage.feeds_dir.resolve()}"


def last_written(config: Config, store: Store) -> tuple[str | None, dict[str, str]]:
    """The last publish's stamp and {file name under feeds/: SHA-256}; no hashes before they were kept."""
    last = json.loads(store.meta(_key(config)) or "{}")
    files = last.get("files")
    return last.get("stamp"), files if isinstance(files, dict) else {}


def damaged_files(feeds_dir: Path, written: dict[str, str]) -> list[str]:
    """Names of the files that no longer hold what the last publish wrote."""
    return [name for name, sha in written.items() if file_digest(feeds_dir / name) != sha]


def orphan_pages(feeds_dir: Path, keep: set[str]) -> list[Path]:
    """Article pages under feeds/articles/ that the publish does not write (their articles left every feed)."""
    pages = feeds_dir / PAGES_DIR
    if not pages.is_dir():
        return []
    return sorted(p for p in pages.glob("*.html") if f"{PAGES_DIR}/{p.name}" not in keep)


def still_current(config: Config, store: Store, stamp: str) -> list[Path] | None:
    """The files of the last publish if it had this stamp and each still holds what it wrote."""
    last_stamp, written = last_written(config, store)
    if last_stamp != stamp or not written:
        return None
    feeds_dir = config.storage.feeds_dir
    damaged = damaged_files(feeds_dir, written)
    if damaged:
        log.warning("%s", damage_line(feeds_dir, damaged))
        return None
    if orphan_pages(feeds_dir, set(written)):
        return None
    return [feeds_dir / name for name in written]


def damage_line(feeds_dir: Path, damaged: list[str]) -> str:
    """One line naming what is repaired: the file, or how many and the first few."""
    cause = "not what the last publish wrote (missing, truncated or edited)"
    if len(damaged) == 1:
        return f"{feeds_dir / damaged[0]}: {cause}; writing it again"
    shown = ", ".join(damaged[:NAMES_SHOWN]) + (f" and {len(damaged) - NAMES_SHOWN} more"
                                                 if len(damaged) > NAMES_SHOWN else "")
    return f"{feeds_dir}: {len(damaged)} files are {cause}; writing them again: {shown}"


def unchanged_report(config: Config, store: Store) -> tuple[str, PublishReport | None]:
    """The publish stamp, and a report of the last publish's files when none needs writing again."""
    stamp = publish_stamp(config, store)
    previous = still_current(config, store, stamp)
    return stamp, PublishReport(unchanged=previous) if previous is not None else None


def remember(config: Config, store: Store, stamp: str, outputs: dict[Path, bytes]) -> None:
    """Record the stamp and each written file's SHA-256, for the next publish to check the files against."""
    feeds_dir = config.storage.feeds_dir
    written = {path.relative_to(feeds_dir).as_posix(): digest(data) for path, data in outputs.items()}
    store.set_meta(_key(config), json.dumps({"stamp": stamp, "files": written}))
