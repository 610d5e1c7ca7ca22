"""A news feed aggregator and publisher: many sources in, a few clean per-topic feeds out.

Read pipeline.py first: it names every stage and the package that does it.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"pipeline"}


def __getattr__(name: str):  # PEP 562: `aggregator.pipeline` loads on first use, so `--help` stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
