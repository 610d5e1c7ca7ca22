"""Damaged output is repaired: each publish checks its files against what it last wrote.

The faults are real: published files are truncated, emptied, edited in
place (same size, same mtime) or deleted, and stray article pages are left
in feeds/articles/, then the real `aggregator publish` command runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from helpers.daemon import query

from helpers.command import aggregator

BASE_URL = "http://127.0.0.1:8080/"  # tests/helpers/files.py's BASIC_CONFIG
CAUSE = "not what the last publish wrote (missing, truncated or edited)"


def snapshot(feeds: Path) -> dict[str, bytes]:
    return {p.relative_to(feeds).as_posix(): p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()}


def stored_articles(project: Path) -> int:
    return query(project / "data" / "test.db", "SELECT count(*) FROM articles")[0][0]


def published_once(project: Path) -> dict[str, bytes]:
    done = aggregator(project, "run", "--once")
    assert done.returncode == 0, done.stderr
    return snapshot(project / "feeds")


def test_truncated_emptied_edited_and_deleted_files_are_written_again(project: Path) -> None:
    good = published_once(project)
    articles = stored_articles(project)
    feeds = project / "feeds"
    atom = feeds / "all.atom"
    atom.write_bytes(good["all.atom"][: len(good["all.atom"]) // 2])  # a copy cut short
    (feeds / "all.rss").write_bytes(b"")
    index = feeds / "index.html"
    before = index.stat()
    index.write_bytes(good["index.html"].replace(b"<h1>", b"<h2>", 1))  # same size...
    os.utime(index, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and same mtime: only the bytes tell
    (feeds / "topics.opml").unlink()

    repaired = aggregator(project, "publish")

    assert repaired.returncode == 0
    warning, = repaired.stderr.splitlines()
    assert re.fullmatch(rf"WARNING {re.escape(str(feeds))}: 4 files are {re.escape(CAUSE)}; "
                        r"writing them again: [a-z.]+(, [a-z.]+){3}", warning)
    assert set(warning.rsplit(": ", 1)[1].split(", ")) == {"all.atom", "all.rss", "index.html", "topics.opml"}
    assert repaired.stdout == f"published: 4 written, {len(good) - 4} unchanged, 0 removed in {feeds}\n"
    assert snapshot(feeds) == good
    assert stored_articles(project) == articles

    again = aggregator(project, "publish")
    assert again.stderr == ""
    assert again.stdout == f"published: 0 written, {len(good)} unchanged, 0 removed in {feeds}\n"


def test_one_damaged_file_is_named_in_one_line(project: Path) -> None:
    good = published_once(project)
    feeds = project / "feeds"
    (feeds / "all.json").write_bytes(b"{")

    repaired = aggregator(project, "publish")

    assert repaired.stderr == f"WARNING {feeds / 'all.json'}: {CAUSE}; writing it again\n"
    assert repaired.stdout.startswith("published: 1 written, ")
    assert snapshot(feeds) == good


def test_article_pages_no_feed_links_to_are_removed(project: Path) -> None:
    published_once(project)
    feeds = project / "feeds"
    pages = feeds / "articles"
    assert len(list(pages.glob("*.html"))) > 10
    stray = pages / "left-by-an-older-version.html"
    stray.write_text("<!DOCTYPE html><title>gone</title>", encoding="utf-8")

    cleaned = aggregator(project, "publish")  # nothing stored changed: the check itself finds the stray page
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.endswith(" unchanged, 1 removed in " + str(feeds) + "\n")
    assert not stray.exists()

    config = project / "config.toml"
    config.write_text(config.read_text().replace("max_items = 50", "max_items = 3"), encoding="utf-8")
    shrunk = aggregator(project, "publish")
    assert shrunk.returncode == 0, shrunk.stderr
    removed = int(re.search(r"(\d+) removed", shrunk.stdout).group(1))
    assert removed > 0
    assert {p.name for p in pages.glob("*.html")} == linked_pages(feeds)


def test_publish_force_rewrites_every_file(project: Path) -> None:
    good = published_once(project)
    feeds = project / "feeds"
    inodes = {name: (feeds / name).stat().st_ino for name in good}

    forced = aggregator(project, "publish", "--force")

    assert forced.returncode == 0 and forced.stderr == ""
    assert forced.stdout == f"published: {len(good)} written, 0 unchanged, 0 removed in {feeds}\n"
    assert snapshot(feeds) == good  # the same bytes...
    assert all((feeds / name).stat().st_ino != inode for name, inode in inodes.items())  # ...in new files


def linked_pages(feeds: Path) -> set[str]:
    """Names of the article pages that the feeds, the index or another page link to."""
    link = re.compile(re.escape(BASE_URL) + r"articles/([A-Za-z0-9_.-]+\.html)")
    names: set[str] = set()
    for path in [*feeds.glob("*.*"), *feeds.glob("articles/*.html")]:
        names.update(link.findall(path.read_text(encoding="utf-8")))
    return names
