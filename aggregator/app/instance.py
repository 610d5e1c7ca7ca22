"""One daemon per database: an flock on `<database>.lock`, exclusive while the daemon lives.

`aggregator recover` takes the same lock, so it never replaces a database a
daemon is writing to.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another daemon holds the database's lock; str() is the message for the user."""


class InstanceLock:
    """An flock on `<database>.lock`: exclusive while we live, released by the kernel when we die.

    The file itself is never deleted (deleting it would let two processes
    lock two different inodes); it only holds the owner's pid for the message.
    """

    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning(
                    f"{self.database}: another aggregator daemon (pid {owner}) is already running "
                    f"on this database; stop it first, or give this config its own [storage] database"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
