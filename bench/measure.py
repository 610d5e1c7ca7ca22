"""Measuring one whole command: wall time, peak memory, HTTP responses; and the machine it ran on.

Shared by run.py and scale.py. A command is timed as a user runs it, in a
subprocess, so interpreter start-up, imports and exit are part of the figure.
Peak memory comes from sampling the process tree with psutil every 20 ms:
the largest single process, and the largest sum over the tree, which is what
the machine has to hold once work is spread over a process pool. CPU time
(user + system) comes two ways: os.wait4 gives the command and the children
it waited for, which misses workers that a forkserver started and reaped;
the sampler adds up every process of the tree as last seen, up to 20 ms
short per process. On a machine shared with other work CPU time moves less
than wall time, but it moves too (two busy hyperthreads slow each other);
each run keeps the load average at its start. The
kernel's ru_maxrss (from os.wait4) is kept too, but it overstates: Linux
carries the high-water mark over exec, so a command started from this
process reports at least this process' size.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

PYTHON = sys.executable
AGGREGATOR = str(Path(PYTHON).with_name("aggregator"))


class CountsResponses(Protocol):
    def take_counts(self) -> dict[int, int]: ...


@dataclass
class Run:
    """One run of one command."""

    seconds: float
    max_rss_mb: float  # kernel's ru_maxrss via wait4: overstates, see the module's docstring
    tree_rss_mb: float  # the largest sampled sum over the process tree
    largest_rss_mb: float  # the largest single process, sampled
    returncode: int
    responses: dict[int, int] = field(default_factory=dict)  # HTTP status -> count, as the servers saw them
    stderr_tail: str = ""
    cpu_s: float = 0.0  # user + system time of the command and the children it waited for (os.wait4)
    tree_cpu_s: float = 0.0  # user + system time of every process in the tree, sampled (workers of a forkserver too)
    load: float = 0.0  # the machine's 1-minute load average when the command started


def run_command(cmd: list[str], log: Path, server: CountsResponses | None = None,
                env: dict[str, str] | None = None) -> Run:
    """Wall time, peak memory and HTTP responses of one whole command."""
    if server:
        server.take_counts()
    load = os.getloadavg()[0]
    with open(log, "wb") as out:
        start = time.perf_counter()
        # In the log's folder: a worker started with `python -c` (a forkserver) puts the current folder first
        # on sys.path, and in a checkout that would import its package instead of the one measured.
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    sampler.stop()
    responses = dict(sorted(server.take_counts().items())) if server else {}
    tail = "\n".join(log.read_text("utf-8", "replace").strip().splitlines()[-5:])
    return Run(seconds, usage.ru_maxrss / 1024, sampler.peak / 2**20, sampler.largest / 2**20, proc.returncode,
               responses, tail, usage.ru_utime + usage.ru_stime, sampler.cpu_total(), load)


class _TreeSampler(threading.Thread):
    """Peak of the summed RSS of a process and its descendants, and of the largest one of them, sampled."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.largest = pid, interval, 0, 0
        self.cpu: dict[int, float] = {}  # pid -> its own user + system seconds at the last sample
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            sizes = []
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        sizes.append(proc.memory_info().rss)
                        times = proc.cpu_times()
                        self.cpu[proc.pid] = times.user + times.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak = max(self.peak, sum(sizes))
            self.largest = max(self.largest, *sizes, 0)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def cpu_total(self) -> float:
        """Every process' CPU time as last sampled: up to one interval short per process, so a floor."""
        return sum(self.cpu.values())


def median_run(runs: list[Run]) -> Run:
    """The run with the median time (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def files_digest(*paths: Path) -> str:
    """Whether a database changed: a hash of its file and WAL as they are on disk."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<absent>")
    return digest.hexdigest()


def db_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal")]


def count_rows(db: Path, sql: str) -> int | None:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return None


def startup_seconds(cmd: list[str], repeat: int = 3) -> float:
    """The best of a few runs: start-up is short, and only load makes it longer."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {model}, Python {platform.python_version()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("aggregator", "reader", "feedparser", "lxml", "urllib3"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def git_commit() -> str:
    """The commit of the aggregator package measured, with "+" when it had uncommitted changes.

    The package is the one this interpreter imports (PYTHONPATH may point at another
    checkout), and the subprocesses run it too.
    """
    import aggregator

    root = Path(aggregator.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                "--", "aggregator"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def byte_compile_aggregator() -> None:
    """Bytecode for our package, as pip writes it for an installed one (reader's is in site-packages).

    The editable install imports from the source tree, and with PYTHONDONTWRITEBYTECODE
    set (as on this team's machines) every run would compile every module from source.
    """
    import compileall

    import aggregator

    compileall.compile_dir(Path(aggregator.__file__).parent, quiet=1)


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
