"""Helpers for the hostile-input suite: isolated runs, a tiny project, and safety checks.

`assert_html_safe` looks at published HTML the way a careless feed reader
would render it: any script, event handler, frame, plugin, stylesheet or
non-http(s) link in the DOM is a failure, however it was spelled in the input.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import lxml.html
from lxml import etree

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"
ROOT = HERE.parent.parent

DANGEROUS_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "style",
                  "link", "meta", "base", "form", "math", "svg", "noscript", "template", "xml",
                  "maction", "input", "button", "textarea", "select"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "background", "poster", "cite",
                  "codebase", "srcset", "longdesc", "usemap", "dynsrc", "lowsrc", "xlink:href", "url"}
_STRIP = re.compile(r"[\x00-\x20\x7f]+")


@dataclass
class Isolated:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def run_isolated(code: str, *, timeout: float, memory_mb: int = 1024) -> Isolated:
    """Run Python code in a child with an address-space limit and a wall-clock timeout.

    A protection that is removed shows up here as a MemoryError, a kill or a
    timeout instead of taking the test run (or the machine) down with it.
    """
    prelude = textwrap.dedent(f"""
        import resource
        limit = {memory_mb} * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE.parent)])}
    try:
        done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired as exc:
        return Isolated(-1, _text(exc.stdout), _text(exc.stderr), True)
    return Isolated(done.returncode, done.stdout, done.stderr, False)


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def safe_link(value: str) -> bool:
    """Would a browser treat this as an http(s) (or relative, same-site) link?"""
    cleaned = _STRIP.sub("", value).lower()
    scheme = re.match(r"^([a-z][a-z0-9+.\-]*):", cleaned)
    return scheme is None or scheme.group(1) in ("http", "https")


def html_problems(fragment: str, where: str) -> list[str]:
    """Everything in an HTML fragment that could run script or load active content."""
    if not fragment.strip():
        return []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return element_problems(root, where)


def element_problems(root: etree._Element, where: str, allowed_tags: set[str] = frozenset()) -> list[str]:
    problems = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in DANGEROUS_TAGS and tag not in allowed_tags:
            problems.append(f"{where}: <{tag}> element")
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                problems.append(f"{where}: event handler {name}={value!r} on <{tag}>")
            if local == "style" or "expression(" in value.lower().replace(" ", ""):
                problems.append(f"{where}: style/expression {name}={value!r} on <{tag}>")
            if "xlink" in name or local in URL_ATTRIBUTES:
                if not safe_link(value):
                    problems.append(f"{where}: unsafe URL {name}={value!r} on <{tag}>")
    return problems


def assert_html_safe(fragment: str, where: str) -> None:
    problems = html_problems(fragment, where)
    assert not problems, "\n".join(problems)


def write_config(folder: Path, body: str) -> Path:
    path = folder / "config.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


MINIMAL_CONFIG = """
[site]
title = "Hostile Test"
base_url = "http://127.0.0.1:8080/"

[storage]
database = "data/test.db"
feeds_dir = "feeds"

[[sources]]
name = "drop"
path = "drop"

[topics.world]
title = "World"
keywords = ["world", "alert", "evil"]
"""


def rss(items: str, channel_title: str = "Test feed") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{channel_title}</title>'
            f"<link>http://example.com/</link><description>d</description>{items}</channel></rss>\n").encode()
