"""`aggregator sources`: list them, add or remove one, import and export OPML.

Listing reads the database read-only. Every edit goes through
app/config_edit.py: comments and layout kept, the result checked whole,
written atomically; a refused edit changes nothing and exits 78.
"""

from __future__ import annotations

from pathlib import Path

import click

from aggregator import app
from aggregator.app.cli_support import EXIT_CONFIG, Context, clip, fail, json_line, pass_context, terminal_safe
from aggregator.ingest.source_status import source_rows
from aggregator.redact import redact


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def sources(click_ctx: click.Context, as_json: bool) -> None:
    """Each source: kind, URL or path, status, last fetch, last error, next due, articles.

    Status is ok, error, backing off (failing repeatedly, or the server asked
    us to wait) or gone (HTTP 410: not fetched until its config changes). A
    warning says what the last feed read was read in spite of (entries past
    [ingest] max_entries, ill-formed XML recovered).
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(Context)
    with ctx.store(read_only=True) as store:
        rows = source_rows(ctx.config, store)
    for row in rows:
        if as_json:
            click.echo(json_line(row))
            continue
        click.echo(f"{clip(row['name'], 24):24} {row['kind']:6} {row['status']:11} "
                   f"{row['articles']:6d} articles  last {row['last_fetch'] or '-':25} next {row['next_due'] or '-'}")
        click.echo(f"{'':24} {terminal_safe(row['location'])}")
        if row["last_error"]:
            click.echo(f"{'':24} error: {clip(row['last_error'], 200)}")
        if row["warning"]:
            click.echo(f"{'':24} warning: {clip(row['warning'], 200)}")


@sources.command("add")
@click.argument("url")
@click.option("--name", metavar="NAME", help="How logs and `sources` call it [default: the URL's host].")
@click.option("--topics", metavar="A,B", default="", help="Topics every article of this source gets.")
@pass_context
def sources_add(ctx: Context, url: str, name: str | None, topics: str) -> None:
    """Add a feed URL to config.toml as a [[sources]] entry (comments and layout kept)."""
    ctx.config  # the config must be valid before we edit it
    chosen = tuple(t.strip() for t in topics.split(",") if t.strip())
    try:
        added = app.config_edit.add_source(ctx.config_file, url, name, chosen)
    except app.config_edit.EditError as exc:
        fail(str(exc), EXIT_CONFIG)
    click.echo(f"{ctx.config_file}: added {added!r} ({redact(url)}); `aggregator run --once --source "
               f"{added!r}` fetches it now")


@sources.command("remove")
@click.argument("name")
@pass_context
def sources_remove(ctx: Context, name: str) -> None:
    """Remove a source from config.toml by name (its stored articles stay until retention removes them)."""
    ctx.config
    try:
        app.config_edit.remove_source(ctx.config_file, name)
    except app.config_edit.EditError as exc:
        fail(str(exc), EXIT_CONFIG)
    click.echo(f"{ctx.config_file}: removed {name!r}")


@sources.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def sources_import(ctx: Context, opml_file: Path) -> None:
    """Add the feeds of an OPML file to config.toml as [[sources]]; its folders become topics."""
    ctx.config
    try:
        report = app.opml.import_opml(ctx.config_file, opml_file)
    except app.config_edit.EditError as exc:  # an unusable OPML file, or a config the import would break
        fail(str(exc), EXIT_CONFIG)
    for feed, reason in report.refused:
        click.echo(f"skipped {terminal_safe(redact(feed.url))}: {reason}", err=True)
    click.echo(f"{ctx.config_file}: added {len(report.added)} sources, {len(report.present)} already present")


@sources.command("export")
@pass_context
def sources_export(ctx: Context) -> None:
    """Print the configured feed sources as OPML 2.0, one folder per topic."""
    click.echo(app.opml.export_opml(ctx.config), nl=False)
