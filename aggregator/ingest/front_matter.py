"""Where a Markdown file's front matter is: between YAML (---) or TOML (+++) fences at its start.

Apart from markdown.py, which reads what is inside, because local.py
recognises a file's kind by it for every file, and must not load
Python-Markdown and PyYAML to do so.
"""

from __future__ import annotations

import re

YAML_FENCE = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
TOML_FENCE = re.compile(r"\A\+\+\+[ \t]*\n(.*?)\n\+\+\+[ \t]*(?:\n|\Z)", re.S)


def has_front_matter(text: str) -> bool:
    """Whether the text starts with a fenced YAML or TOML block."""
    return bool(YAML_FENCE.match(text) or TOML_FENCE.match(text))
