"""Ingesting one local file peaks under 20 times its size plus a fixed base, for every kind of file.

Each case writes a realistic 9.8 MB file (just under the 10 MB default
`ingest.max_file_size`) and a 3 kB one of the same kind, runs the real
`aggregator ingest` on each in a subprocess, and reads each process's peak
resident memory from the kernel (wait4's ru_maxrss). The small file's peak
is the base: the interpreter and the libraries that kind of file needs.
Before the bound, a 9.8 MB article peaked at 1.4-1.8 GB (MinHash over all
its shingles at once, then every word of it as an object, three times over).
"""

from __future__ import annotations

import html
import json
import random
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from helpers.command import PYTHON, ROOT, _env, desk_config

BIG = 9_800_000
SMALL = 3_000
FACTOR = 20


def vocabulary() -> list[str]:
    """The words of the bundled sample articles (typographic quotes and all): news-like text."""
    text = " ".join(p.read_bytes().decode("utf-8", "replace") for p in (ROOT / "samples" / "articles").glob("*.txt"))
    return sorted(set(text.split()))


WORDS = vocabulary()


def paragraphs(size: int, seed: int = 1) -> list[str]:
    """Paragraphs of 40-120 random words, about `size` characters in all."""
    rng = random.Random(seed)
    found, total = [], 0
    while total < size:
        paragraph = " ".join(rng.choices(WORDS, k=rng.randint(40, 120))).capitalize() + "."
        found.append(paragraph)
        total += len(paragraph) + 2
    return found


def plaintext(size: int) -> str:
    body = "\n\n".join(paragraphs(size - 300))
    return ("Harbour Times\nMiddle EastWorld\n\nCouncil report on the harbour\n\nFILE PHOTO: the harbour\n\n"
            f"{body}\n\nFollow the Harbour Times on Google News\n\nRelated Posts\n\nOther story\n\nA. Writer\n")


def html_page(size: int) -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(size - 700))
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Council report</title>'
            '<meta property="og:site_name" content="Harbour Times">'
            '<link rel="canonical" href="https://harbour.example/council-report"></head><body>'
            '<nav><a href="/">Home</a> <a href="/world">World</a></nav><main><article>'
            f"<h1>Council report</h1>\n{body}\n</article></main><footer>Harbour Times</footer></body></html>")


def markdown(size: int) -> str:
    body = "\n\n".join(("## " + p[:60]) if n % 20 == 19 else p for n, p in enumerate(paragraphs(size - 100)))
    return f"---\ntitle: Council report\ndate: 2024-05-01\ntags: [world]\n---\n\n{body}\n"


def json_article(size: int) -> str:
    return json.dumps({"title": "Council report", "url": "https://harbour.example/report",
                       "content_text": "\n\n".join(paragraphs(size - 200))})


def json_list(size: int) -> str:
    """A CMS export: many articles of a few paragraphs each."""
    texts = paragraphs(size - 200)
    return json.dumps([{"id": f"a{n}", "title": f"Council story {n}", "url": f"https://harbour.example/{n}",
                        "content_text": "\n\n".join(texts[n:n + 5])} for n in range(0, len(texts), 5)])


def feed_file(size: int) -> str:
    """A saved RSS feed of many entries."""
    texts = paragraphs(size - 300)
    items = "".join(
        f"<item><title>Council story {n}</title><link>https://harbour.example/{n}</link>"
        f"<guid>https://harbour.example/{n}</guid><pubDate>Wed, 01 May 2024 10:00:00 +0000</pubDate>"
        f"<description>{html.escape(''.join(f'<p>{p}</p>' for p in texts[n:n + 5]))}</description></item>"
        for n in range(0, len(texts), 5))
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Harbour Times</title>'
            f"<link>https://harbour.example/</link><description>News</description>{items}</channel></rss>")


def feed_one_entry(size: int) -> str:
    """A saved feed whose one entry is the whole size."""
    body = html.escape("".join(f"<p>{p}</p>" for p in paragraphs(size - 400)))
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Harbour Times</title>'
            "<link>https://harbour.example/</link><item><title>Council report</title>"
            f"<link>https://harbour.example/report</link><description>{body}</description></item></channel></rss>")


KINDS: dict[str, tuple[str, Callable[[int], str]]] = {
    "plain text": ("report.txt", plaintext),
    "HTML page": ("report.html", html_page),
    "Markdown": ("report.md", markdown),
    "JSON article": ("report.json", json_article),
    "JSON list": ("export.json", json_list),
    "feed file": ("saved.rss", feed_file),
    "feed of one entry": ("long.rss", feed_one_entry),
}


def fitted(make: Callable[[int], str], size: int) -> str:
    """make(n) for the n that makes its UTF-8 just under `size` bytes (quotes and markup take more bytes)."""
    text = make(size)
    actual = len(text.encode("utf-8"))
    return text if actual <= size else make(int(size * size / actual * 0.99))


# Reports the peak of the command it runs. A process's peak as the kernel counts it starts from
# the memory of the process that spawned it (it is folded in at exec), so the command is spawned
# by this small interpreter, not by the test process, which holds the 10 MB texts and more.
LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_of_ingest(project: Path, name: str, text: str) -> tuple[int, int]:
    """(peak resident bytes of `aggregator ingest` on the file, the file's size)."""
    (project / "articles").mkdir(parents=True)
    (project / "config.toml").write_text(desk_config(), "utf-8")
    path = project / "articles" / name
    path.write_text(text, "utf-8")
    run = subprocess.run([PYTHON, "-c", LAUNCHER, PYTHON, "-m", "aggregator", "-c", str(project / "config.toml"),
                          "ingest", str(path)], cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
    status, peak_kib = map(int, run.stdout.split())
    assert status == 0, run.stderr
    assert "skipped" not in run.stderr, run.stderr
    return peak_kib * 1024, path.stat().st_size


@pytest.mark.parametrize("kind", KINDS)
def test_peak_memory_of_one_file_is_bounded_by_its_size(tmp_path: Path, kind: str) -> None:
    name, make = KINDS[kind]
    base, _ = peak_of_ingest(tmp_path / "small", name, fitted(make, SMALL))
    peak, size = peak_of_ingest(tmp_path / "big", name, fitted(make, BIG))
    assert 9_000_000 < size < 10 * 1024 * 1024
    mb = 1024 * 1024
    assert peak <= FACTOR * size + base, (
        f"{kind}: {size / mb:.1f} MB peaked at {peak / mb:.0f} MB, over {FACTOR} x its size "
        f"+ the {base / mb:.0f} MB base ({(peak - base) / size:.1f} x)")
