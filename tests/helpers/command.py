"""Shared by the fault tests: run the real `aggregator` command, watch its processes and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
T = TypeVar("T")


def desk_config(database: str = "news.db") -> str:
    """config.toml for the fault tests: one local folder source, "Desk" (articles/), and a topic
    every test story matches ("council")."""
    return f"""
[site]
title = "Fault digest"
base_url = "http://127.0.0.1:8080/"

[storage]
database = "{database}"
feeds_dir = "feeds"

[[sources]]
name = "Desk"
path = "articles"

[topics.news]
title = "News"
keywords = ["council"]
"""


def rss_channel(site: str, items: str) -> bytes:
    """An RSS 2.0 document of `site` around `items` (their XML), as the fault tests' feeds are."""
    slug = site.lower().replace(" ", "-")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{site}</title>'
            f"<link>https://{slug}.example/</link><description>d</description>{items}</channel></rss>").encode()


def aggregator(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`aggregator -c project/config.toml ARGS...`, run to completion; output captured as text."""
    return subprocess.run([PYTHON, "-m", "aggregator", "-c", str(project / "config.toml"), *args],
                          cwd=project, env=_env(), capture_output=True, text=True, timeout=timeout)


def start_aggregator(project: Path, *args: str, name: str) -> tuple[subprocess.Popen, Path, Path]:
    """The command started in the background; (process, stdout file, stderr file)."""
    out, err = project / f"{name}.out", project / f"{name}.err"
    process = subprocess.Popen([PYTHON, "-m", "aggregator", "-c", str(project / "config.toml"), *args],
                               cwd=project, env=_env(), stdout=out.open("wb"), stderr=err.open("wb"))
    return process, out, err


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("AGGREGATOR_CONFIG", None)
    return env


def wait_until(condition: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll condition() until it is truthy and return its value; fail naming `what` if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def descendants(pid: int, depth: int) -> list[int]:
    """Pids exactly `depth` generations below pid (2: a forkserver's workers), read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue  # ended while we looked
    generation = {pid}
    for _ in range(depth):
        generation = {child for child, parent in parents.items() if parent in generation}
    return sorted(generation)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]
