"""app: what people run. The CLI, the daemon and the HTTP server, thin layers over pipeline.py.

    cli.py          the `aggregator` command group, its global options, logging set-up
    cli_support.py  exit statuses, the config and store on demand, safe terminal output
    commands/       the subcommands (run, ingest, publish, serve; articles, explain,
                    topics; sources; init, check, recover)
    config_edit.py  config.toml edited for the user, comments kept (sources add/remove, OPML)
    opml.py         OPML import (folders become topics) and export
    starter.py      the config `aggregator init` writes
    daemon.py       the long-running process: scheduler, signals, reload, publishing
    schedule.py, source_jobs.py, debounce.py, thread_stores.py, instance.py
                    the daemon's parts: due times, one job per source, publish
                    debouncing, a store per thread, the single-instance lock
    health.py       /healthz; metrics.py /metrics (Prometheus)
    server.py       feeds/ over HTTP with ETag, 304, gzip
    logs.py, daemon_logging.py, systemd.py
                    log line formats (journald, JSON), repeats filtered, sd_notify
"""

import importlib

_SUBMODULES = {"config_edit", "daemon", "health", "metrics", "opml", "server", "starter", "systemd"}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
