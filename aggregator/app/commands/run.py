"""The commands that write: run (daemon or --once), ingest, publish, retag; and serve."""

from __future__ import annotations

import sys
from pathlib import Path

import click

import aggregator
from aggregator.app.cli_support import (EXIT_FAILED, EXIT_SOURCES, EXIT_USAGE, Context, echo_report, fail,
                                        listen_option, pass_context, progress_bar, with_listen)
from aggregator.models import IngestReport
from aggregator.redact import redact


@click.command()
@click.option("--once", is_flag=True, help="Ingest every source once, publish, and exit.")
@click.option("--source", "only", metavar="NAME", multiple=True,
              help="With --once: only this source (repeat for more); the feeds are published as usual.")
@listen_option
@pass_context
def run(ctx: Context, once: bool, only: tuple[str, ...], listen: str | None) -> None:
    """Run the daemon: fetch each source on its schedule, publish, serve feeds/.

    With --once: ingest every configured source (or each --source), publish
    all feeds and exit. The daemon stops cleanly on SIGTERM or Ctrl-C and
    reloads config.toml on SIGHUP.
    """
    config = with_listen(ctx.config, listen)
    if only and not once:
        fail("--source refreshes a source once: use it with --once", EXIT_USAGE)
    unknown = [name for name in only if name not in {s.name for s in config.sources}]
    if unknown:
        fail(f"no source named {unknown[0]!r}; `aggregator sources` lists them", EXIT_USAGE)
    if not once:
        from aggregator.app.daemon import run_daemon

        root = click.get_current_context().find_root()
        explicit = (root.get_parameter_source("log_level") is not click.core.ParameterSource.DEFAULT
                    or bool(root.params.get("verbose")))
        sys.exit(run_daemon(ctx.config_file, config, explicit_log_level=explicit))
    with ctx.store() as store:
        reports = aggregator.pipeline.ingest_all(config, store, only=set(only) or None)
        for report in reports:
            echo_report(ctx, report)
        published = aggregator.pipeline.publish(config, store)
    if not ctx.quiet:
        click.echo(published.summary() + f" in {config.storage.feeds_dir}")
    if any(r.error for r in reports):
        sys.exit(EXIT_SOURCES)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_context
def ingest(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Ingest local files or folders into the configured database.

    Files inside a configured source's folder are stored under that source,
    so running the source later does not add a second copy.
    """
    config = ctx.config
    rules = aggregator.pipeline.topic_rules(config)
    total = IngestReport(source="total")
    failed = False
    with ctx.store() as store:
        for path in paths:
            if not path.exists():
                click.echo(f"error: {path}: no such file or folder", err=True)
                failed = True
                continue
            with progress_bar(ctx, aggregator.pipeline.count_files(config, path), f"{path}") as advance:
                report = aggregator.pipeline.ingest_path(config, store, path, rules, progress=advance)
            if len(paths) > 1:
                echo_report(ctx, report)
            elif report.error:
                click.echo(f"error: {report.source}: {redact(report.error)}", err=True)
            total.new, total.updated = total.new + report.new, total.updated + report.updated
            total.unchanged += report.unchanged
            total.skipped += report.skipped
            failed = failed or bool(report.error)
    # The one line a user (or a script) reads: what this ingest did, in every mode.
    click.echo(total.summary().split(": ", 1)[1])
    if failed:
        sys.exit(EXIT_SOURCES)


@click.command()
@click.option("--force", is_flag=True, help="Rewrite every file, even those that look unchanged.")
@pass_context
def publish(ctx: Context, force: bool) -> None:
    """Write all feeds (Atom, RSS, JSON Feed), index.html, status.html and topics.opml from what is stored.

    Files missing, truncated or edited since the last publish are written
    again; article pages no feed links to any more are removed.
    """
    with ctx.store() as store:
        report = aggregator.pipeline.publish(ctx.config, store, force=force)
    if not ctx.quiet:
        click.echo(report.summary() + f" in {ctx.config.storage.feeds_dir}")


@click.command()
@listen_option
@pass_context
def serve(ctx: Context, listen: str | None) -> None:
    """Only serve feeds/ over HTTP ([server] listen, or --listen), without fetching; Ctrl-C stops it."""
    from aggregator.app.health import database_health
    from aggregator.app.server import make_server

    config = with_listen(ctx.config, listen)
    try:
        server = make_server(config.server.listen, config.storage.feeds_dir, lambda: database_health(config))
    except OSError as exc:
        fail(f"{config.server.listen}: {exc.strerror or exc}", EXIT_FAILED)
    click.echo(f"serving {config.storage.feeds_dir} at {server.url}")
    try:
        server.serve_forever(poll_interval=None)  # Ctrl-C ends the poll; an idle server does not wake
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command()
@click.option("--dry-run", is_flag=True, help="Only show how many articles each topic would gain and lose.")
@pass_context
def retag(ctx: Context, dry_run: bool) -> None:
    """Re-apply the topic rules to every stored article (after editing topics in the config)."""
    with ctx.store(read_only=dry_run) as store:
        changes = aggregator.pipeline.retag(ctx.config, store, dry_run=dry_run)
    verb = "would gain" if dry_run else "gained"
    for slug, (gained, lost) in changes.items():
        click.echo(f"{slug:20} {verb} {gained}, {'would lose' if dry_run else 'lost'} {lost}")
    if not changes:
        click.echo("no topic changes")
