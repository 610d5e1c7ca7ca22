"""What every command shares: exit statuses, the config and store on demand, safe output.

Exit statuses are the same for every command (README, "Exit status"), and
follow sysexits.h where one fits, so a service manager can tell a mistake
that a restart cannot fix (64, 78) from a crash (1) or a passing fault.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click

from aggregator.config import Config, ConfigError, load_config
from aggregator.config.checks import listen_address
from aggregator.redact import redact

if TYPE_CHECKING:
    from aggregator.models import IngestReport
    from aggregator.storage.store import Store

EXIT_OK = 0
EXIT_FAILED = 1  # the command could not do what was asked (no such article, another daemon runs, port taken)
EXIT_SOURCES = 2  # some sources (or paths given to ingest) failed; the others were stored and published
EXIT_STORAGE = 3  # the database or feeds/ cannot be used: disk full, read-only, corrupt, not a database, locked
EXIT_USAGE = 64  # EX_USAGE: the command line is wrong (an unknown option, a missing argument)
EXIT_CONFIG = 78  # EX_CONFIG: the config file is missing or wrong, or an edit would make it wrong


class Context:
    """The config file a command was given; the config and the store, opened when a command asks."""

    def __init__(self, config_file: Path, quiet: bool):
        self.config_file = config_file
        self.quiet = quiet
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The validated config; a user mistake ends the command with its message, no traceback."""
        if self._config is None:
            self._config = self.load()
        return self._config

    def load(self, require_sources: bool = False) -> Config:
        """Load and validate the config file, or exit 78 with one line per problem."""
        try:
            return load_config(self.config_file, require_sources=require_sources)
        except ConfigError as exc:
            for line in exc.problems:
                click.echo(f"error: {line}", err=True)
            sys.exit(EXIT_CONFIG)

    @contextmanager
    def store(self, read_only: bool = False) -> Iterator["Store"]:
        """The database, open for the block; a storage fault in it ends the command with one line, status 3.

        Disk full, read-only, corrupt, not a database, locked: the line names
        the file, the cause and the fix (storage/faults.py); the traceback
        goes to the debug log. What was committed before stays stored.
        """
        from aggregator.storage.faults import storage_fault
        from aggregator.storage.store import BUSY_TIMEOUT_MS, Store

        config = self.config
        try:
            store = Store(config.storage.database, read_only=read_only)
            try:
                yield store
            finally:
                store.close()
        except Exception as exc:
            fault = storage_fault(exc, config.storage.database, config.storage.feeds_dir, BUSY_TIMEOUT_MS / 1000)
            if fault is None:
                raise  # our bug: its traceback
            logging.getLogger("aggregator").debug("storage fault", exc_info=True)
            fail(str(fault), EXIT_STORAGE)


pass_context = click.make_pass_decorator(Context)


def fail(message: str, status: int) -> None:
    """One `error:` line on stderr, then the exit status that says what kind of failure it was."""
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def json_line(value: object) -> str:
    """JSON with readable text, but controls and bidi overrides escaped (\\u202e), not sent raw."""
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1]
                   for c in json.dumps(value, ensure_ascii=False))


def terminal_safe(text: str) -> str:
    """No escape sequences from a hostile title reach the terminal."""
    return "".join(c if c.isprintable() else " " for c in text)


def clip(text: str, width: int) -> str:
    text = terminal_safe(text)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def echo_report(ctx: Context, report: "IngestReport") -> None:
    # Skipped inputs were already logged, one line each, by the pipeline.
    if report.error:
        click.echo(f"error: {report.source}: {redact(report.error)}", err=True)
    if not ctx.quiet:
        click.echo(report.counts())  # the error, if any, is its own line on stderr


@contextmanager
def progress_bar(ctx: Context, length: int, label: str) -> Iterator:
    """A click progress bar on stderr, or a no-op with --quiet or when stderr is not a terminal."""
    if ctx.quiet or length < 2 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=clip(label, 30), file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        yield bar.update


def listen_option(function):
    """`--listen HOST:PORT`: where to serve feeds/ this time, instead of [server] listen."""
    return click.option("--listen", metavar="HOST:PORT", callback=_check_listen,
                        help="Serve on this address instead of [server] listen (e.g. 0.0.0.0:8080).")(function)


def _check_listen(click_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return listen_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def with_listen(config: Config, listen: str | None) -> Config:
    return config if listen is None else replace(config, server=replace(config.server, listen=listen))
