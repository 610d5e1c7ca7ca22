"""Local files and folders -> Articles.

Walking a folder, reading bounded bytes, decoding and recognising a file's
kind happen here once, for every kind of file. Each kind's own parser only
turns text into fields.
"""

from __future__ import annotations

import fnmatch
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from ..encoding import UndecodableError, decode_text
from ..models import Article, LocalFile, ParseResult, Skipped
from ..normalize import clean_text, content_hash, paragraphs_to_html, stable_id, summarize
from .plaintext import NotAnArticle, parse_plaintext

IGNORED_SUFFIXES = ("~", ".swp", ".swo", ".tmp", ".part", ".crdownload", ".bak", ".orig", ".DS_Store")
IGNORED_PREFIXES = (".", "~$", ".#", "#")


def iter_files(root: Path, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Iterator[Path]:
    """Every candidate file under root, sorted, without hidden or editor temp files.

    Symlinks are followed only while they stay inside root, so a link to
    /etc/passwd dropped into a watched folder is never read.
    """
    root_resolved = root.resolve()
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if _ignored(name) or not _selected(relative, include, exclude):
                continue
            if path.is_symlink() and not _inside(path, root_resolved):
                continue
            yield path


def _ignored(name: str) -> bool:
    return name.startswith(IGNORED_PREFIXES) or name.endswith(IGNORED_SUFFIXES)


def _selected(relative: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    name = relative.rsplit("/", 1)[-1]

    def matches(pattern: str) -> bool:
        return fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(name, pattern)

    if include and not any(matches(p) for p in include):
        return False
    return not any(matches(p) for p in exclude)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError):
        return False


def display_path(path: Path) -> str:
    """A path safe to print: undecodable bytes in file names shown escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_file(path: Path, root: Path, max_size: int) -> LocalFile | Skipped:
    """The file's bytes, or why we will not read them."""
    shown = display_path(path)
    try:
        size = path.stat().st_size
        if size > max_size:
            return Skipped(shown, f"larger than the {max_size:,}-byte limit ({size:,} bytes); "
                                  "raise [ingest] max_file_size to read it")
        with path.open("rb") as handle:
            data = handle.read(max_size + 1)
    except OSError as exc:
        return Skipped(shown, f"cannot read: {exc.strerror or exc}")
    if len(data) > max_size:
        return Skipped(shown, f"larger than the {max_size:,}-byte limit")
    if not data.strip():
        return Skipped(shown, "empty file")
    relative = path.name if path == root else path.relative_to(root).as_posix()
    return LocalFile(path=path, data=data, relative=relative)


FileParser = Callable[[LocalFile, str, str, "ParseOptions"], list[Article]]


class ParseOptions:
    """What parsers need from the config, without handing them the whole Config."""

    def __init__(self, known_categories: tuple[str, ...] = ()):
        self.known_categories = known_categories


def parse_file(file: LocalFile, source: str, options: ParseOptions) -> ParseResult:
    """Decode, recognise and parse one file; failures become Skipped, never exceptions."""
    shown = display_path(file.path)
    try:
        text = decode_text(file.data)
    except UndecodableError as exc:
        return ParseResult(skipped=[Skipped(shown, f"{exc}; not an article file")])
    try:
        articles = parse_plaintext_file(file, text, source, options)
    except NotAnArticle as exc:
        return ParseResult(skipped=[Skipped(shown, f"not an article: {exc}")])
    return ParseResult(articles=articles)


def parse_plaintext_file(file: LocalFile, text: str, source: str, options: ParseOptions) -> list[Article]:
    parsed = parse_plaintext(text, options.known_categories)
    paragraphs = [clean_text(p) for p in parsed.paragraphs]
    body = "\n\n".join(paragraphs)
    title = clean_text(parsed.title)
    modified = datetime.fromtimestamp(file.path.stat().st_mtime, tz=timezone.utc)
    return [Article(
        id=local_article_id(source, file.relative),
        source=source,
        title=title,
        site=clean_text(parsed.site),
        published=modified,
        categories=parsed.categories,
        summary=summarize(body),
        text=body,
        content_html=paragraphs_to_html(paragraphs),
        site_related=parsed.site_related,
        origin=str(file.path),
        content_hash=content_hash(title, body, parsed.site, ",".join(parsed.categories),
                                  repr(parsed.site_related)),
    )]


def local_article_id(source: str, relative: str) -> str:
    """Keyed by source and path, so an edited file updates its article."""
    return stable_id("local", source, relative)


def read_local_source(root: Path, source: str, options: ParseOptions, max_size: int,
                      include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Iterator[ParseResult]:
    """One ParseResult per file under root, in path order."""
    if not root.exists():
        yield ParseResult(skipped=[Skipped(display_path(root), "no such file or folder; fix the source's path")])
        return
    base = root if root.is_dir() else root.parent
    for path in iter_files(root, include, exclude):
        file = read_file(path, base, max_size)
        if isinstance(file, Skipped):
            yield ParseResult(skipped=[file])
        else:
            yield parse_file(file, source, options)
