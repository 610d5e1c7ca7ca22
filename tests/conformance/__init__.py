"""Feeds from other projects' published test suites, read through our pipeline and compared with feedparser."""
