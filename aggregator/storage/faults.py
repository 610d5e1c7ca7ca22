"""A storage fault as one line: the file, the cause, the fix.

Disks fill up, files and folders turn read-only, pages rot, a file that is
not a database ends up where the database should be, another process holds
the write lock. None of these is our bug or a config mistake: a command ends
with this line and exit status 3, the daemon shows it on /healthz and retries.
What was stored stays stored: every write is a transaction and every feed
file is replaced atomically, so a failed write leaves the last good state.

SQLite errors are told apart by the error name sqlite3 gives each exception
(Python 3.11+), so this module needs no sqlite3 import (only storage/ talks
SQL); errors writing feed files by their errno. A database an older
aggregator wrote, opened by a command that only reads, is one too: that
command may not upgrade it, a writing command does (OlderSchema).
"""

from __future__ import annotations

import errno
import os
import resource
from dataclasses import dataclass
from pathlib import Path

KEPT = "nothing stored is lost"
FEEDS_KEPT = "the feeds of the last publish stay in place"
# Errnos that mean the disk or a file's permissions, not a bug of ours.
FILE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
WAL_WRITE_LOCK_BYTE = 120  # SQLite's WAL writer lock: this byte of the -shm file (wal.c, WALINDEX_LOCK_OFFSET)


@dataclass(frozen=True)
class StorageFault:
    """What went wrong with which file; str() is the line for the user."""

    kind: str  # "disk full", "read-only", "corrupt", "not a database", "locked", "I/O error", "older schema"
    path: Path  # the database, or the feed file or folder that could not be written
    line: str
    database: bool = True  # the database (or its folder), not feeds/

    def __str__(self) -> str:
        return self.line


class OlderSchema(Exception):
    """A read-only store found the database behind the current schema: only a writing command migrates it."""

    def __init__(self, path: Path, version: int, latest: int):
        super().__init__(f"{path}: schema version {version}, this aggregator reads version {latest}")
        self.path, self.version, self.latest = path, version, latest

    def line(self, db: Path) -> str:
        fix = "run a command that writes, such as `aggregator run --once`"
        if self.version == 0:
            return f"{db}: holds no aggregator tables yet; {fix}, to create them"
        return (f"{db}: the database was written by an older aggregator (schema version {self.version} of "
                f"{self.latest}); {fix}, to upgrade it ({KEPT})")


def storage_fault(exc: BaseException, database: Path, feeds_dir: Path | None = None,
                  busy_seconds: float | None = None) -> StorageFault | None:
    """The fault `exc` is, or None when it is not a storage fault (then it is a bug, and raises on).

    `busy_seconds`: how long SQLite waited for a lock before giving up.
    """
    if isinstance(exc, OlderSchema):
        return StorageFault("older schema", Path(database), exc.line(Path(database)))
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return database_fault(name, str(exc), Path(database), busy_seconds)
    if isinstance(exc, OSError) and exc.errno in FILE_ERRNOS:
        return file_fault(exc, Path(database), feeds_dir)
    return None


def database_fault(name: str, message: str, db: Path, busy_seconds: float | None = None) -> StorageFault | None:
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR") and _is_write_error(name):
        kind, cause, fix = _cannot_write(db, full=name == "SQLITE_FULL", detail=message)
        return StorageFault(kind, db, f"{db}: cannot write: {cause}; {fix} ({KEPT})")
    if name.startswith("SQLITE_IOERR"):
        return StorageFault("I/O error", db, f"{db}: cannot read: {message} ({name}); check the disk (dmesg) "
                                             "and the file's permissions")
    if name == "SQLITE_READONLY_DBMOVED":
        return StorageFault("read-only", db, f"{db}: the database file was moved or deleted while in use; "
                                             "put it back, or restart aggregator")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return StorageFault("read-only", db, _read_only_line(db, name))
    if name.startswith("SQLITE_CORRUPT"):
        return StorageFault("corrupt", db, corrupt_line(db, message))
    if name == "SQLITE_NOTADB":
        return StorageFault("not a database", db,
                            f"{db}: not an SQLite database ({message}); set [storage] database to the right file, "
                            "or move this one away to start a new, empty database")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        waited = f" for over {busy_seconds:g} s" if busy_seconds else ""
        return StorageFault("locked", db, f"{db}: the database is locked: {lock_holder(db)} has held its write "
                                          f"lock{waited}; try again when it is done ({KEPT})")
    return None


def corrupt_line(db: Path, message: str) -> str:
    return (f"{db}: the database is corrupt ({message}); stop aggregator, then run `aggregator recover` "
            f"(it saves every readable row into a new database and keeps the damaged file as {db}.corrupt), "
            "or restore a backup")


def file_fault(exc: OSError, database: Path, feeds_dir: Path | None) -> StorageFault:
    """A feed file (or the database's folder) that could not be written."""
    place = _place(exc, database, feeds_dir)
    ours = place == database or place == database.parent or place.name == f"{database.name}.lock"
    kept = KEPT if ours else FEEDS_KEPT
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        kind, cause, fix = _cannot_write(place, full=exc.errno != errno.EFBIG, detail=exc.strerror or str(exc))
        return StorageFault(kind, place, f"{place}: cannot write: {cause}; {fix} ({kept})", ours)
    if exc.errno == errno.EROFS:
        return StorageFault("read-only", place, f"{place}: cannot write: the file system is read-only; remount it "
                                                f"read-write or move it elsewhere in the config ({kept})", ours)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageFault("read-only", place, f"{place}: cannot write: permission denied; give the user running "
                                                f"aggregator write access to it ({kept})", ours)
    return StorageFault("I/O error", place, f"{place}: cannot write: {exc.strerror or exc}; check the disk (dmesg) "
                                            f"({kept})", ours)


def _place(exc: OSError, database: Path, feeds_dir: Path | None) -> Path:
    """The file or folder to name: a publish's temporary file is named by its folder."""
    if exc.filename:
        path = Path(os.fsdecode(exc.filename))
        return path.parent if path.name.startswith(".") and path.name.endswith(".tmp") else path
    return feeds_dir if feeds_dir is not None else database  # a write() to an open file has no name


def _is_write_error(name: str) -> bool:
    return not name.startswith(("SQLITE_IOERR_READ", "SQLITE_IOERR_SHORT_READ"))


def _cannot_write(path: Path, full: bool, detail: str) -> tuple[str, str, str]:
    """(kind, cause, fix) for a write that failed for lack of room, or a size limit, or the disk itself."""
    free = _free_bytes(path)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if free is not None and free < 1 << 20 or full and limit == resource.RLIM_INFINITY:
        shown = f" ({_size(free)} free)" if free is not None else ""
        return "disk full", f"the disk is full{shown}", "free some space"
    if limit != resource.RLIM_INFINITY:
        return ("disk full", f"a file reached this process's file size limit (ulimit -f: {_size(limit)})",
                "raise the limit or free some space")
    return "I/O error", f"{detail}", "check free space and the disk (dmesg)"


def _read_only_line(db: Path, name: str) -> str:
    """Which of the file, its -wal and -shm, its folder or the file system refuses writes, and what to do."""
    folder = db.parent
    if _read_only_file_system(folder):
        return (f"{db}: the file system is read-only; remount it read-write, or set [storage] database to "
                "a writable place")
    if not folder.is_dir():
        return f"{db}: its folder {folder} does not exist; create it, or fix [storage] database"
    if db.exists() and not os.access(db, os.W_OK):
        return (f"{db}: the database file is read-only; give the user running aggregator write access to it "
                f"and to its -wal and -shm files (chmod u+w {db}*)")
    for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        if extra.exists() and not os.access(extra, os.W_OK):
            return (f"{db}: {extra.name} next to it is read-only; give the user running aggregator "
                    f"write access to it (and to {db.name})")
    if name == "SQLITE_READONLY_DIRECTORY" or not os.access(folder, os.W_OK | os.X_OK):
        return (f"{db}: its folder {folder} is read-only, and SQLite must create {db.name}-wal and {db.name}-shm "
                f"there; give the user running aggregator write access to {folder}")
    if db.exists() and not os.access(db, os.R_OK):
        return f"{db}: the database file is unreadable; give the user running aggregator access to it"
    return f"{db}: cannot write to the database ({name}); check the permissions of the file and its folder"


def _read_only_file_system(folder: Path) -> bool:
    try:
        return bool(os.statvfs(_existing(folder)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _free_bytes(path: Path) -> int | None:
    try:
        stat = os.statvfs(_existing(path))
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:g} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def lock_holder(db: Path) -> str:
    """'pid 123 (aggregator ingest big/)' for the process holding the database's write lock, read from
    /proc/locks (SQLite locks a byte of the -shm file); 'another process' when that cannot be told."""
    try:
        shm = os.stat(f"{db}-shm")
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return "another process"
    device = f"{os.major(shm.st_dev):02x}:{os.minor(shm.st_dev):02x}:{shm.st_ino}"
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        try:
            kind, mode, pid, inode, start, end = fields[1], fields[3], int(fields[4]), fields[5], fields[6], fields[7]
        except (IndexError, ValueError):
            continue
        if (kind == "POSIX" and mode == "WRITE" and inode == device and pid != os.getpid()
                and int(start) <= WAL_WRITE_LOCK_BYTE <= (int(end) if end != "EOF" else 1 << 62)):
            return f"pid {pid} ({_command_of(pid)})"
    return "another process"


def _command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = [a.decode("utf-8", "replace") for a in cmdline.read().split(b"\0") if a]
    except OSError:
        return "gone"
    if not argv:
        return "unknown"
    if len(argv) > 2 and argv[1:3] == ["-m", "aggregator"]:
        argv = ["aggregator", *argv[3:]]
    argv[0] = os.path.basename(argv[0])
    text = " ".join(argv)
    return text if len(text) <= 80 else text[:79] + "\u2026"
