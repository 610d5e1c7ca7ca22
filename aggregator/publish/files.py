"""Rendered bytes -> files under feeds/, written atomically and only when they change.

An unchanged file keeps its mtime and ETag, so HTTP caching keeps working;
a reader never sees half a file, because each is written to a temporary
file beside it and renamed over it. Only files we name are ever deleted.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aggregator.publish.last_publish import orphan_pages
from aggregator.publish.names import EXTENSIONS

WRITERS = 4  # threads: each file's fsync waits on the disk without the GIL, so several overlap


def write_files(outputs: dict[Path, bytes], force: bool = False) -> list[bool]:
    """write_if_changed for every file, a few at a time; whether each was written, in the order given.

    The first failure in that order is raised, as writing them one by one would.
    """
    if len(outputs) <= 1:
        return [write_if_changed(path, data, force) for path, data in outputs.items()]
    with ThreadPoolExecutor(max_workers=min(WRITERS, len(outputs)), thread_name_prefix="publish-write") as pool:
        return list(pool.map(lambda item: write_if_changed(item[0], item[1], force), outputs.items()))


def write_if_changed(path: Path, data: bytes, force: bool = False) -> bool:
    """Atomically replace path with data unless it already holds exactly that (or `force`)."""
    if not force and _holds(path, data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True


def _holds(path: Path, data: bytes) -> bool:
    """Whether path is a readable file with exactly these bytes; anything else is written over."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:  # missing, unreadable, a folder: the atomic replace below settles it
        return False


def remove_orphan_pages(feeds_dir: Path, outputs: dict[Path, bytes]) -> list[Path]:
    """Delete article pages no feed links to any more (only *.html under feeds/articles/)."""
    keep = {path.relative_to(feeds_dir).as_posix() for path in outputs}
    removed = orphan_pages(feeds_dir, keep)
    for page in removed:
        page.unlink(missing_ok=True)
    return removed


def remove_stale_feeds(feeds_dir: Path, slugs: set[str], formats: tuple[str, ...] | list[str] | None = None
                       ) -> list[Path]:
    """Delete feed files of topics or formats no longer in the config (only files we name)."""
    formats = tuple(EXTENSIONS) if formats is None else tuple(formats)
    wanted = {f"{slug}.{EXTENSIONS[fmt]}" for slug in slugs for fmt in formats}
    removed = []
    if not feeds_dir.is_dir():
        return removed
    for path in sorted(feeds_dir.iterdir()):
        if path.suffix.lstrip(".") in EXTENSIONS.values() and path.name not in wanted and path.is_file():
            path.unlink()
            removed.append(path)
    return removed
