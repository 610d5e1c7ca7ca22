"""The `aggregator` command: thin click wrappers around pipeline functions.

Each command parses its options, calls the pipeline and prints. Heavy
libraries are imported inside commands so `aggregator --help` and an
unchanged refresh start fast.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click

from aggregator import __version__
from aggregator.config import Config, ConfigError, config_path, load_config
from aggregator.redact import RedactingFilter, redact

if TYPE_CHECKING:
    from aggregator.storage.store import Store

# Exit statuses, the same for every command (README, "Exit status").
EXIT_OK = 0
EXIT_CONFIG = 1  # the config or the command line is wrong; or another daemon runs, or the port is taken
EXIT_SOURCES = 2  # some sources (or paths given to ingest) failed; the others were stored and published
EXIT_STORAGE = 3  # the database or feeds/ cannot be used: disk full, read-only, corrupt, not a database, locked


class Context:
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
        """Load and validate the config file, or exit 1 with one line per problem."""
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
        the file, the cause and the fix (storage_faults.py); the traceback
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
            click.echo(f"error: {fault}", err=True)
            sys.exit(EXIT_STORAGE)


GLOBAL_FLAGS = ("-q", "--quiet")
GLOBAL_VALUES = ("-c", "--config", "--log-level")


def hoist_global_options(args: list[str]) -> list[str]:
    """`aggregator check -c F -q` read as `aggregator -c F -q check`: the options every command
    takes may come before or after the subcommand, as people type them. `--` ends the hoisting."""
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
    """The command group: a mistake on the command line exits 1, as a mistake in the config does.

    (click's own status for it, 2, is this command's "some sources failed".) The options every
    command takes are accepted after the subcommand too (hoist_global_options).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_CONFIG
            raise

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_CONFIG
            raise


pass_context = click.make_pass_decorator(Context)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="AGGREGATOR_CONFIG", default=None, show_envvar=True,
              help="Config file [default: ./config.toml]. Paths inside it are relative to it.")
@click.option("-q", "--quiet", is_flag=True, help="Only print errors and results; no progress.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              default="warning", help="How much to log to stderr [default: warning; info for the daemon, "
                                      "`run` without --once].")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, quiet: bool, log_level: str) -> None:
    """Turn many news sources into a few clean, per-topic feeds.

    Sources and topics live in config.toml. Typical use:

    \b
      aggregator check          is the config right?
      aggregator run --once     ingest every source, then publish the feeds
      aggregator articles       what is stored
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # a login in a source URL never reaches a log line
    ctx.obj = Context(config_path(config_file), quiet)


@cli.command()
@click.option("--once", is_flag=True, help="Ingest every source once, publish, and exit.")
@pass_context
def run(ctx: Context, once: bool) -> None:
    """Run the daemon: fetch each source on its schedule, publish, serve feeds/.

    With --once: ingest every configured source, publish all feeds and exit.
    The daemon stops cleanly on SIGTERM or Ctrl-C and reloads config.toml on SIGHUP.
    """
    from aggregator import pipeline

    config = ctx.config
    if not once:
        from aggregator.app.daemon import run_daemon

        explicit = click.get_current_context().find_root().get_parameter_source("log_level")
        sys.exit(run_daemon(ctx.config_file, config,
                            explicit_log_level=explicit is not click.core.ParameterSource.DEFAULT))
    with ctx.store() as store:
        reports = pipeline.ingest_all(config, store)
        for report in reports:
            _echo_report(ctx, report)
        published = pipeline.publish(config, store)
    if not ctx.quiet:
        click.echo(published.summary() + f" in {config.storage.feeds_dir}")
    if any(r.error for r in reports):
        sys.exit(EXIT_SOURCES)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_context
def ingest(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Ingest local files or folders into the configured database.

    Files inside a configured source's folder are stored under that source,
    so running the source later does not add a second copy.
    """
    from aggregator import pipeline
    from aggregator.models import IngestReport

    config = ctx.config
    rules = pipeline.topic_rules(config)
    total = IngestReport(source="total")
    failed = False
    with ctx.store() as store:
        for path in paths:
            if not path.exists():
                click.echo(f"error: {path}: no such file or folder", err=True)
                failed = True
                continue
            with _progress_bar(ctx, pipeline.count_files(config, path), f"{path}") as advance:
                report = pipeline.ingest_path(config, store, path, rules, progress=advance)
            if len(paths) > 1:
                _echo_report(ctx, report)
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


@contextmanager
def _progress_bar(ctx: Context, length: int, label: str) -> Iterator:
    """A click progress bar on stderr, or a no-op with --quiet or when stderr is not a terminal."""
    if ctx.quiet or length < 2 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=_clip(label, 30), file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        yield bar.update


def _echo_report(ctx: Context, report) -> None:
    # Skipped inputs were already logged, one line each, by the pipeline.
    if report.error:
        click.echo(f"error: {report.source}: {redact(report.error)}", err=True)
    if not ctx.quiet:
        click.echo(report.counts())  # the error, if any, is its own line on stderr


@cli.command()
@pass_context
def serve(ctx: Context) -> None:
    """Only serve feeds/ over HTTP ([server] listen), without fetching; Ctrl-C stops it."""
    from aggregator.app.health import database_health
    from aggregator.app.server import make_server

    config = ctx.config
    try:
        server = make_server(config.server.listen, config.storage.feeds_dir, lambda: database_health(config))
    except OSError as exc:
        click.echo(f"error: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(f"serving {config.storage.feeds_dir} at {server.url}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command()
@click.option("--force", is_flag=True, help="Rewrite every file, even those that look unchanged.")
@pass_context
def publish(ctx: Context, force: bool) -> None:
    """Write all feeds (Atom, RSS, JSON Feed), index.html and topics.opml from what is stored.

    Files missing, truncated or edited since the last publish are written
    again; article pages no feed links to any more are removed.
    """
    from aggregator import pipeline

    with ctx.store() as store:
        report = pipeline.publish(ctx.config, store, force=force)
    if not ctx.quiet:
        click.echo(report.summary() + f" in {ctx.config.storage.feeds_dir}")


@cli.command()
@click.option("--topic", metavar="SLUG", help="Only articles in this topic.")
@click.option("--search", metavar="TEXT", help="Full-text search in titles and text.")
@click.option("--source", metavar="NAME", help="Only articles from this source.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_context
def articles(ctx: Context, topic: str | None, search: str | None, source: str | None,
             limit: int, as_json: bool) -> None:
    """List stored articles, newest first."""
    from aggregator.publish.names import article_link
    from aggregator.publish.related import related_for_many

    config = ctx.config
    if topic and topic != "all" and topic not in {t.slug for t in config.topics}:
        raise click.BadParameter(f"no topic {topic!r}; see `aggregator topics`", param_hint="--topic")
    with ctx.store(read_only=True) as store:
        found = store.articles(topic=None if topic == "all" else topic, search=search,
                               limit=limit, source=source)
        duplicates = store.duplicate_ids([a.id for a in found]) if as_json else {}
        related_lists = related_for_many(store, found, config.publish.related_posts) if as_json else {}
        for article in found:
            if not as_json:
                date = article.published.strftime("%Y-%m-%d %H:%M") if article.published else "-"
                topics = ",".join(article.topics) or "-"
                click.echo(f"{article.id}  {date}  {_clip(article.site, 18):18}  {_clip(topics, 24):24}  "
                           f"{_terminal_safe(article.title)}")
                continue
            base = config.site.base_url
            related = related_lists[article.id]
            click.echo(_json_line({
                "id": article.id, "title": article.title,
                "url": article_link(base, article.id, article.url),
                "site": article.site, "source": article.source,
                "categories": article.categories, "topics": article.topics,
                "published": article.published.isoformat() if article.published else None,
                "updated": article.updated.isoformat() if article.updated else None,
                "summary": article.summary, "text": article.text,
                "site_related": [{"title": r.title, "author": r.author} for r in article.site_related],
                "related": [{"id": r.id, "title": r.title, "url": article_link(base, r.id, r.url)}
                            for r in related],
                "cluster": article.cluster_id or article.id,
                "duplicates": duplicates.get(article.id, []),
            }))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only show how many articles each topic would gain and lose.")
@pass_context
def retag(ctx: Context, dry_run: bool) -> None:
    """Re-apply the topic rules to every stored article (after editing topics in the config)."""
    from aggregator import pipeline

    with ctx.store() as store:
        changes = pipeline.retag(ctx.config, store, dry_run=dry_run)
    verb = "would gain" if dry_run else "gained"
    for slug, (gained, lost) in changes.items():
        click.echo(f"{slug:20} {verb} {gained}, {'would lose' if dry_run else 'lost'} {lost}")
    if not changes:
        click.echo("no topic changes")


@cli.command()
@click.argument("article_id")
@pass_context
def explain(ctx: Context, article_id: str) -> None:
    """Why an article is (or is not) in each topic, and which copies it is clustered with."""
    from aggregator import pipeline

    with ctx.store(read_only=True) as store:
        article = store.get(article_id)
        if article is None:
            click.echo(f"error: no article {article_id!r}; see `aggregator articles`", err=True)
            sys.exit(EXIT_CONFIG)
        copies = store.duplicate_ids([article.id])[article.id]
    click.echo(f"{article.id}  {_terminal_safe(article.title)}")
    for match in pipeline.topic_rules(ctx.config).explain(article):
        state = "match" if match.matched else "no"
        reasons = "; ".join(match.reasons) or "no rule matched"
        click.echo(f"  {match.slug:20} {state:5} score {match.score:g}: {_terminal_safe(reasons)}")
    cluster = article.cluster_id or article.id
    role = "representative" if cluster == article.id else f"copy of {cluster}"
    click.echo(f"  cluster {cluster} ({role}); other copies: {', '.join(copies) or 'none'}")


def _json_line(value: object) -> str:
    """JSON with readable text, but controls and bidi overrides escaped (\\u202e), not sent raw."""
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1]
                   for c in json.dumps(value, ensure_ascii=False))


def _terminal_safe(text: str) -> str:
    """No escape sequences from a hostile title reach the terminal."""
    return "".join(c if c.isprintable() else " " for c in text)


def _clip(text: str, width: int) -> str:
    text = _terminal_safe(text)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_context
def topics(ctx: Context, as_json: bool) -> None:
    """Each topic with its article count and feed files."""
    from aggregator.publish.names import ALL_TOPIC, feed_path, feed_url

    config = ctx.config
    with ctx.store(read_only=True) as store:
        counts = store.topic_counts()
        total = store.count()
    for topic in [*config.topics, ALL_TOPIC]:
        count = total if topic is ALL_TOPIC else counts.get(topic.slug, 0)
        paths = [str(feed_path(config.storage.feeds_dir, topic.slug, f)) for f in config.publish.formats]
        urls = [feed_url(config.site.base_url, topic.slug, f) for f in config.publish.formats]
        if as_json:
            click.echo(json.dumps({"slug": topic.slug, "title": topic.title, "articles": count,
                                   "feeds": paths, "urls": urls}, ensure_ascii=False))
        else:
            click.echo(f"{topic.slug:20} {count:6d} articles  {topic.title}")
            for path in paths:
                click.echo(f"{'':20} {path}")


@cli.group(invoke_without_command=True)
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
    from aggregator.ingest.source_status import source_rows

    ctx = click_ctx.find_object(Context)
    with ctx.store(read_only=True) as store:
        rows = source_rows(ctx.config, store)
    for row in rows:
        if as_json:
            click.echo(_json_line(row))
            continue
        click.echo(f"{_clip(row['name'], 24):24} {row['kind']:6} {row['status']:11} "
                   f"{row['articles']:6d} articles  last {row['last_fetch'] or '-':25} next {row['next_due'] or '-'}")
        click.echo(f"{'':24} {_terminal_safe(row['location'])}")
        if row["last_error"]:
            click.echo(f"{'':24} error: {_clip(row['last_error'], 200)}")
        if row["warning"]:
            click.echo(f"{'':24} warning: {_clip(row['warning'], 200)}")


@sources.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def sources_import(ctx: Context, opml_file: Path) -> None:
    """Add the feeds of an OPML file to config.toml as [[sources]] (comments and layout kept)."""
    from aggregator.app.config_edit import EditError
    from aggregator.app.opml import import_opml

    ctx.config  # the config must be valid before we edit it
    try:
        report = import_opml(ctx.config_file, opml_file)
    except EditError as exc:  # an unusable OPML file, or a config the import would break
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    for feed, reason in report.refused:
        click.echo(f"skipped {_terminal_safe(redact(feed.url))}: {reason}", err=True)
    click.echo(f"{ctx.config_file}: added {len(report.added)} sources, {len(report.present)} already present")


@sources.command("export")
@pass_context
def sources_export(ctx: Context) -> None:
    """Print the configured feed sources as OPML 2.0."""
    from aggregator.app.opml import export_opml

    click.echo(export_opml(ctx.config), nl=False)


@cli.command()
@pass_context
def recover(ctx: Context) -> None:
    """Save what a corrupt database still holds into a new one; the damaged file is kept.

    Every readable row is copied into a fresh database that takes the old
    one's place; the old file is kept as <database>.corrupt. Local files and
    feeds whose articles were lost are read again at the next run. Stop the
    daemon first.
    """
    import os

    from aggregator.app.instance import AlreadyRunning, InstanceLock
    from aggregator.storage.faults import storage_fault
    from aggregator.storage.store import quick_check, salvage

    database = ctx.config.storage.database
    if not database.is_file():
        click.echo(f"error: {database}: no such database; nothing to recover", err=True)
        sys.exit(EXIT_CONFIG)
    lock = InstanceLock(database)
    try:
        lock.acquire()  # the daemon must not write to the file while it is replaced
    except AlreadyRunning as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    try:
        try:
            found = quick_check(database)
        except Exception as exc:  # corrupt beyond a check: salvage what can be read; not a database: no
            fault = storage_fault(exc, database)
            if fault is None:
                raise
            if fault.kind != "corrupt":
                click.echo(f"error: {fault}", err=True)
                sys.exit(EXIT_STORAGE)
            found = str(exc)
        if found == "ok":
            click.echo(f"{database}: no damage found (quick_check: ok); nothing to recover")
            return
        recovered = database.with_name(f"{database.stem}.recovered{database.suffix}")
        for stale in (recovered, Path(f"{recovered}-wal"), Path(f"{recovered}-shm")):
            stale.unlink(missing_ok=True)
        try:
            saved = salvage(database, recovered)
        except Exception as exc:
            click.echo(f"error: {database}: nothing could be read from it ({type(exc).__name__}: {exc}); "
                       "restore a backup, or move it away to start a new database", err=True)
            sys.exit(EXIT_STORAGE)
        corrupt = Path(f"{database}.corrupt")
        os.replace(database, corrupt)  # kept as it was, with its WAL: nothing is thrown away
        for suffix in ("-wal", "-shm"):
            if Path(f"{database}{suffix}").exists():
                os.replace(f"{database}{suffix}", f"{corrupt}{suffix}")
        os.replace(recovered, database)
    finally:
        lock.release()
    skipped = sum(saved.unreadable.values())
    click.echo(f"{database}: saved {saved.articles} articles ({sum(saved.rows.values())} rows in all); "
               f"{skipped} unreadable {'stretch' if skipped == 1 else 'stretches'} skipped; "
               f"the damaged file is kept as {corrupt}; "
               "the next run reads again what was lost from your sources")


@cli.command()
@pass_context
def check(ctx: Context) -> None:
    """Validate the config; exit status 1 on any error (a config without sources is one)."""
    config = ctx.load(require_sources=True)  # exits 1 with every problem listed
    problems = []
    for source in config.sources:
        if source.path is not None and not source.path.exists():
            problems.append(f"{config.path}: sources ({source.name}).path: {source.path} does not exist")
    for line in problems:
        click.echo(f"error: {line}", err=True)
    if problems:
        sys.exit(EXIT_CONFIG)
    click.echo(f"{config.path}: ok: {len(config.sources)} sources, {len(config.topics)} topics")


def main() -> None:
    from aggregator.gcpolicy import fewer_passes

    fewer_passes()
    cli(prog_name="aggregator")
