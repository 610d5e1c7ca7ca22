"""Real storage faults for the fault tests: a file size limit, permissions that bind even root,
a corrupted page, a held write lock. Nothing of ours is mocked; SQLite and the kernel say no."""

from __future__ import annotations

import ctypes
import os
import resource
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .command import PYTHON, _env

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PAGE = 4096


def obey_permissions() -> None:
    """preexec_fn: the child honours file permissions even when it runs as root (as CI does).

    Root writes to a file or folder whatever its mode, through CAP_DAC_OVERRIDE. Dropping that
    capability (and CAP_DAC_READ_SEARCH) from the child's bounding set before exec leaves it
    root, owner of the files it made, but bound by their mode bits, as any user is. Needs only
    CAP_SETPCAP, which root has in containers too. As a user, permissions bind already.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def file_size_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: no file the child writes grows past `limit` bytes (RLIMIT_FSIZE): a full disk, for it."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def limit_file_size(pid: int, limit: int | None) -> None:
    """A running process's file size limit (None: unlimited again), as `prlimit --fsize` sets it."""
    value = resource.RLIM_INFINITY if limit is None else limit
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (value, resource.RLIM_INFINITY))


def aggregator_with(project: Path, *args: str, preexec: Callable[[], None],
                    timeout: float = 120) -> subprocess.CompletedProcess:
    """`aggregator -c project/config.toml ARGS...` under a fault set up in the child before exec."""
    return subprocess.run([PYTHON, "-m", "aggregator", "-c", str(project / "config.toml"), *args],
                          cwd=project, env=_env(), capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec)


def corrupt_page_of(database: Path, table: str) -> int:
    """Overwrite the middle leaf page of `table` with garbage, in the real file; its page number.

    The database must be closed by everyone (its WAL checkpointed away), so the bytes on disk
    are what the next reader gets.
    """
    with sqlite3.connect(database) as db:
        pages = [n for (n,) in db.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' "
                                          "ORDER BY pageno", [table])]
    db.close()
    assert not Path(f"{database}-wal").exists(), "the database is still open somewhere"
    page = pages[len(pages) // 2]
    with open(database, "r+b") as handle:
        handle.seek((page - 1) * PAGE)
        handle.write(bytes((i * 37 + 11) % 256 for i in range(PAGE)))
    return page


@contextmanager
def write_lock_held(database: Path) -> Iterator[sqlite3.Connection]:
    """This process holds the database's write lock (BEGIN IMMEDIATE) for the block, as a long
    write of another program would."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=10)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield holder
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def articles_in(database: Path) -> set[str]:
    db = sqlite3.connect(database, timeout=10)
    try:
        return {row[0] for row in db.execute("SELECT id FROM articles")}
    finally:
        db.close()
