"""CLI conventions, run as a user runs them: each failing source named once, on stderr, whatever
the log level (stdout keeps the counts); the options every command takes before or after its name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.command import desk_config

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




@pytest.mark.parametrize("args", [
    ["check", "-c", "{config}"],
    ["check", "--config={config}"],
    ["-c", "{config}", "check"],
    ["check", "--log-level", "info", "-c", "{config}", "-q"],
])
def test_the_options_every_command_takes_may_follow_the_subcommand(tmp_path: Path, args: list[str]) -> None:
    """`aggregator check -c config.toml` works as the README says, not only `aggregator -c config.toml check`."""
    (tmp_path / "articles").mkdir()
    (tmp_path / "config.toml").write_text(desk_config(), "utf-8")
    filled = [a.format(config=tmp_path / "config.toml") for a in args]
    run = subprocess.run([sys.executable, "-m", "aggregator", *filled], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path.parent)  # not the config's folder: -c must be read
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{tmp_path / 'config.toml'}: ok: 1 sources, 1 topics"


def test_a_log_level_after_the_subcommand_takes_effect(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, "utf-8")
    run = subprocess.run([sys.executable, "-m", "aggregator", "run", "--once", "--log-level", "info",
                          "-c", str(tmp_path / "config.toml")], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert run.returncode == 2
    assert any(line.startswith("INFO Down one: no response") for line in run.stderr.splitlines()), run.stderr
