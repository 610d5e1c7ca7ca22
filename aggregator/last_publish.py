"""The last publish: what it wrote, and whether anything it depends on has changed since.

Kept apart from publish.py so that a run with nothing new (an unchanged
refresh) answers "nothing to do" without importing feedgen and lxml.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .config import Config
from .store import Store


@dataclass
class PublishReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        return (f"published: {len(self.written)} written, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed")


def publish_stamp(config: Config, store: Store) -> str:
    """What the published files are a function of: stored content, the config, our version.

    Rendering never reads the clock, so when this stamp matches the last
    publish's, every file would come out byte-identical and none is rendered.
    """
    inputs = repr((__version__, store.content_version(), config.site, config.publish, config.topics,
                   config.storage.feeds_dir))
    return hashlib.sha256(inputs.encode("utf-8")).hexdigest()


def _key(config: Config) -> str:
    return f"published:{config.storage.feeds_dir.resolve()}"


def still_current(config: Config, store: Store, stamp: str) -> list[Path] | None:
    """The files of the last publish if it had this stamp and they are all still there."""
    last = json.loads(store.meta(_key(config)) or "{}")
    previous = [config.storage.feeds_dir / name for name in last.get("files", [])]
    if last.get("stamp") == stamp and previous and all(p.is_file() for p in previous):
        return previous
    return None


def unchanged_report(config: Config, store: Store) -> tuple[str, PublishReport | None]:
    """The publish stamp, and a report of the last publish's files when none needs writing again."""
    stamp = publish_stamp(config, store)
    previous = still_current(config, store, stamp)
    return stamp, PublishReport(unchanged=previous) if previous is not None else None


def remember(config: Config, store: Store, stamp: str, files: list[Path]) -> None:
    feeds_dir = config.storage.feeds_dir
    names = [str(p.relative_to(feeds_dir)) for p in files]
    store.set_meta(_key(config), json.dumps({"stamp": stamp, "files": names}))
