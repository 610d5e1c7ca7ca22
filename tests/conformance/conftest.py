"""Prints the conformance table (tests/conformance/report.py) after the tests that fill it."""

from __future__ import annotations

from .report import ROWS, table


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest's hook signature
    if not ROWS:
        return
    terminalreporter.section("feed conformance: feedparser's entries against the articles we store")
    for line in table(ROWS):
        terminalreporter.write_line(line)
