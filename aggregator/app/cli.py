"""The `aggregator` command: a click group, its global options, and the subcommands in commands/.

Each command parses its options, calls the pipeline (pipeline.py) and
prints; the work is in the library. The options every command takes
(-c, -q, --log-level, --log-format) may come before or after the
subcommand, as people type them.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from aggregator import __version__
from aggregator.app.cli_support import EXIT_USAGE, Context
from aggregator.app.logs import FORMATS, formatter
from aggregator.config import config_path
from aggregator.redact import RedactingFilter

# Each command's module is imported when the command runs (or when --help lists them all), so
# `run --once` never loads what only the read or setup commands need.
COMMANDS = {"init": "setup", "check": "setup", "recover": "setup", "run": "run", "ingest": "run",
            "publish": "run", "retag": "run", "serve": "run", "articles": "read", "explain": "read",
            "topics": "read", "sources": "sources"}
GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose", "-vv")
GLOBAL_VALUES = ("-c", "--config", "--log-level", "--log-format")


def hoist_global_options(args: list[str]) -> list[str]:
    """`aggregator check -c F -q` read as `aggregator -c F -q check`. `--` ends the hoisting."""
    moved: list[str] = []
    kept: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            kept += [arg, *rest]
            break
        if arg in GLOBAL_FLAGS:
            moved.append(arg)
        elif arg in GLOBAL_VALUES and rest:
            moved += [arg, rest.pop(0)]
        elif arg.startswith(tuple(f"{name}=" for name in GLOBAL_VALUES if name.startswith("--"))):
            moved.append(arg)
        else:
            kept.append(arg)
    return moved + kept


class Group(click.Group):
    """The command group: a mistake on the command line exits 64 (EX_USAGE).

    (click's own status for it, 2, is this command's "some sources failed".)
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return getattr(importlib.import_module(f"aggregator.app.commands.{COMMANDS[name]}"), name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="AGGREGATOR_CONFIG", default=None, show_envvar=True,
              help="Config file [default: ./config.toml]. Paths inside it are relative to it.")
@click.option("-q", "--quiet", is_flag=True, help="Only print errors and results; no progress.")
@click.option("-v", "--verbose", count=True, help="Log more: -v is --log-level info, -vv debug.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              default="warning", help="How much to log to stderr [default: warning; info for the daemon, "
                                      "`run` without --once].")
@click.option("--log-format", type=click.Choice(FORMATS), default="text",
              help="text (with journald priorities under systemd) or json, one object per line [default: text].")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, quiet: bool, verbose: int, log_level: str,
        log_format: str) -> None:
    """Turn many news sources into a few clean, per-topic feeds.

    Sources and topics live in config.toml. Typical use:

    \b
      aggregator init           write a starter config.toml here
      aggregator check          is the config right?
      aggregator run --once     ingest every source, then publish the feeds
      aggregator articles       what is stored
    """
    if verbose and ctx.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        log_level = "debug" if verbose > 1 else "info"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RedactingFilter())  # a login in a source URL never reaches a log line
    logging.basicConfig(level=log_level.upper(), handlers=[handler])
    ctx.obj = Context(config_path(config_file), quiet)


def main() -> None:
    from aggregator.gcpolicy import fewer_passes

    fewer_passes()
    cli(prog_name="aggregator")
