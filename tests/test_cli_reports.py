"""`run --once` names each failing source once, on stderr, whatever the log level; stdout keeps the counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
[[sources]]
name = "Down one"
url = "http://127.0.0.1:1/a.xml"
allow_private_network = true

[[sources]]
name = "Down two"
url = "http://127.0.0.1:1/b.xml"
allow_private_network = true

[topics.news]
title = "News"
keywords = ["council"]
"""


@pytest.mark.parametrize("flags", [[], ["-q"]])
def test_each_failing_source_is_reported_once(tmp_path: Path, flags: list[str]) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, "utf-8")
    run = subprocess.run([sys.executable, "-m", "aggregator", "-c", str(tmp_path / "config.toml"), *flags,
                          "run", "--once"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2  # some sources failed
    for name, path in (("Down one", "a.xml"), ("Down two", "b.xml")):
        errors = [line for line in (run.stdout + run.stderr).splitlines() if path in line]
        assert errors == [f"error: {name}: network error fetching http://127.0.0.1:1/{path}: "
                          "[Errno 111] Connection refused"], run.stdout + run.stderr
    if not flags:
        assert "Down one: 0 new, 0 updated, 0 unchanged, 0 skipped" in run.stdout.splitlines()
