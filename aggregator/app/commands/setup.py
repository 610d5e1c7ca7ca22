"""Before the first run and after an accident: init, check, recover."""

from __future__ import annotations

import os
from pathlib import Path

import click

from aggregator import app
from aggregator.app.cli_support import (EXIT_CONFIG, EXIT_FAILED, EXIT_STORAGE, EXIT_USAGE, Context, fail,
                                        pass_context)


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
def init(folder: Path) -> None:
    """Write a commented starter config.toml (and its articles/ folder) in FOLDER [default: here]."""
    try:
        config = app.starter.write_starter(folder)
    except app.starter.InitError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"{folder}: {exc.strerror or exc}", EXIT_FAILED)
    click.echo(f"wrote {config}; next: `aggregator -c {config} check`, then `aggregator -c {config} run --once`")


@click.command()
@pass_context
def check(ctx: Context) -> None:
    """Validate the config; exit status 78 on any error (a config without sources is one)."""
    config = ctx.load(require_sources=True)  # exits 78 with every problem listed
    problems = [f"{config.path}: sources ({source.name}).path: {source.path} does not exist"
                for source in config.sources if source.path is not None and not source.path.exists()]
    for line in problems:
        click.echo(f"error: {line}", err=True)
    if problems:
        raise SystemExit(EXIT_CONFIG)
    click.echo(f"{config.path}: ok: {len(config.sources)} sources, {len(config.topics)} topics")


@click.command()
@pass_context
def recover(ctx: Context) -> None:
    """Save what a corrupt database still holds into a new one; the damaged file is kept.

    Every readable row is copied into a fresh database that takes the old
    one's place; the old file is kept as <database>.corrupt. Local files and
    feeds whose articles were lost are read again at the next run. Stop the
    daemon first.
    """
    from aggregator.app.instance import AlreadyRunning, InstanceLock
    from aggregator.storage.faults import storage_fault
    from aggregator.storage.store import quick_check, salvage

    database = ctx.config.storage.database
    if not database.is_file():
        fail(f"{database}: no such database; nothing to recover", EXIT_FAILED)
    lock = InstanceLock(database)
    try:
        lock.acquire()  # the daemon must not write to the file while it is replaced
    except AlreadyRunning as exc:
        fail(str(exc), EXIT_FAILED)
    try:
        try:
            found = quick_check(database)
        except Exception as exc:  # corrupt beyond a check: salvage what can be read; not a database: no
            fault = storage_fault(exc, database)
            if fault is None:
                raise
            if fault.kind != "corrupt":
                fail(str(fault), EXIT_STORAGE)
            found = str(exc)
        if found == "ok":
            click.echo(f"{database}: no damage found (quick_check: ok); nothing to recover")
            return
        saved, corrupt = _replace_with_salvage(database, salvage)
    finally:
        lock.release()
    skipped = sum(saved.unreadable.values())
    click.echo(f"{database}: saved {saved.articles} articles ({sum(saved.rows.values())} rows in all); "
               f"{skipped} unreadable {'stretch' if skipped == 1 else 'stretches'} skipped; "
               f"the damaged file is kept as {corrupt}; "
               "the next run reads again what was lost from your sources")


def _replace_with_salvage(database: Path, salvage) -> tuple[object, Path]:
    """Copy what can be read into a new file, keep the damaged one (and its WAL) as .corrupt, swap them."""
    recovered = database.with_name(f"{database.stem}.recovered{database.suffix}")
    for stale in (recovered, Path(f"{recovered}-wal"), Path(f"{recovered}-shm")):
        stale.unlink(missing_ok=True)
    try:
        saved = salvage(database, recovered)
    except Exception as exc:
        fail(f"{database}: nothing could be read from it ({type(exc).__name__}: {exc}); "
             "restore a backup, or move it away to start a new database", EXIT_STORAGE)
    corrupt = Path(f"{database}.corrupt")
    os.replace(database, corrupt)  # kept as it was, with its WAL: nothing is thrown away
    for suffix in ("-wal", "-shm"):
        if Path(f"{database}{suffix}").exists():
            os.replace(f"{database}{suffix}", f"{corrupt}{suffix}")
    os.replace(recovered, database)
    return saved, corrupt
