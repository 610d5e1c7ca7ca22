"""config stage: config.toml in, a frozen, validated Config out.

    model.py        the Config dataclasses and every default (intervals too)
    checks.py       what each key accepts: raw TOML value -> typed value or the fix
    load.py         reading the file, collecting every problem into one ConfigError
    topic_regex.py  topic regex rules, compiled and judged by the `regex` engine
                    that runs them (loaded on first use)

Everything else in the tree imports its names from here.
"""

import importlib

from aggregator.config.checks import parse_duration, parse_size
from aggregator.config.load import ConfigError, config_path, load_config, parse_config, read_toml
from aggregator.config.model import (
    AUTO_DEFAULT, AUTO_MAX, AUTO_MIN, DEFAULT_CONFIG, FORMATS, LOCAL_INTERVAL, REMOTE_INTERVAL, Config,
    DedupConfig, FetchConfig, IngestConfig, PublishConfig, ServerConfig, SiteConfig, SourceConfig,
    StorageConfig, TopicConfig,
)

__all__ = [
    "AUTO_DEFAULT", "AUTO_MAX", "AUTO_MIN", "DEFAULT_CONFIG", "FORMATS", "LOCAL_INTERVAL", "REMOTE_INTERVAL",
    "Config", "ConfigError", "DedupConfig", "FetchConfig", "IngestConfig", "PublishConfig", "ServerConfig",
    "SiteConfig", "SourceConfig", "StorageConfig", "TopicConfig",
    "config_path", "load_config", "parse_config", "parse_duration", "parse_size", "read_toml",
]

_SUBMODULES = {"topic_regex"}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
