"""A news feed aggregator and publisher: many sources in, a few clean per-topic feeds out."""

__version__ = "0.1.0"
