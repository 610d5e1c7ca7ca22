"""Local files and folders -> Articles.

Walking a folder, reading bounded bytes, skipping unchanged files, decoding
and recognising a file's kind happen here once, for every kind of file.
Each kind's own module (plaintext, html, markdown, jsonfile, feed) only
turns text into fields; ids, dates and the origin are set here.

A kind is recognised by content first (a JSON document, an RSS/Atom root,
an HTML document, front matter), then by extension, and anything else is
tried as the plain-text article format.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from stat import S_ISREG
from typing import Iterator

from aggregator import ingest
from aggregator.config import IngestConfig
from aggregator.enrich.text import clean_text, content_hash, paragraphs_to_html, stable_id, summarize
from aggregator.ingest.encoding import UndecodableError, decode_text, declared_charset
from aggregator.ingest.front_matter import has_front_matter
from aggregator.ingest.plaintext import NotAnArticle, parse_plaintext
from aggregator.models import Article, FileState, LocalFile, ParseResult, Skipped

log = logging.getLogger("aggregator")
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
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        return False


def display_path(path: Path) -> str:
    """A path safe to print: undecodable bytes in file names shown escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_file(path: Path, root: Path, max_size: int) -> LocalFile | Skipped:
    """The file's bytes, or why we will not read them."""
    shown = display_path(path)
    try:
        info = path.stat()
        if not S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            return Skipped(shown, "not a regular file")
        size = info.st_size
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
    # A file name that is not UTF-8 holds surrogates that neither hashing nor SQLite accept.
    relative = relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return LocalFile(path=path, data=data, relative=relative)


class ParseOptions:
    """What parsers need from the config, without handing them the whole Config."""

    def __init__(self, known_categories: tuple[str, ...] = (), max_entries: int = IngestConfig.max_entries):
        self.known_categories = known_categories
        self.max_entries = max_entries  # entries read from one feed file or JSON list

    def fingerprint(self) -> str:
        """Part of every file hash: a config change that alters parsing re-parses the files.

        The entry cap counts only when it is not the default, so a file read with
        the default cap keeps the hash it had without one.
        """
        cap = [] if self.max_entries == IngestConfig.max_entries else [f"max_entries={self.max_entries}"]
        return f"v{PARSER_VERSION}\x1f" + "\x1f".join([*self.known_categories, *cap])


PARSER_VERSION = 1  # bump when a parser changes its output, so stored files are re-parsed
RACY_WINDOW_NS = 2_000_000_000  # a file this fresh may still change within its mtime tick
HTML_START = re.compile(r"\A\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html|<head|<body|<meta|<title|<article)", re.I | re.S)
XML_FEED_ROOT = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*|<\?xml-stylesheet[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*)*"
                           r"<(rss|feed|rdf:RDF)\b", re.I | re.S)
XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
XML_DECLARED_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
EXTENSION_KINDS = {".html": "html", ".htm": "html", ".xhtml": "html", ".md": "markdown",
                   ".markdown": "markdown", ".mdown": "markdown", ".json": "json",
                   ".rss": "feed", ".atom": "feed", ".xml": "feed"}


def detect_kind(text: str, path: Path) -> str:
    """'json', 'feed', 'html', 'markdown' or 'plaintext': content first, then extension."""
    head = text[:4096].lstrip("\ufeff")
    stripped = head.lstrip()
    if stripped[:1] in ("{", "[") and path.suffix.lower() not in (".md", ".markdown", ".txt"):
        return "json"
    if XML_FEED_ROOT.match(head):
        return "feed"
    if HTML_START.match(head):
        return "html"
    if has_front_matter(head):
        return "markdown"
    return EXTENSION_KINDS.get(path.suffix.lower(), "plaintext")


def parse_file(file: LocalFile, source: str, options: ParseOptions) -> ParseResult:
    """Decode, recognise and parse one file; failures become Skipped, never exceptions."""
    shown = display_path(file.path)
    try:
        document: str | bytes = decode_text(file.data, _declared_encoding(file.data))
    except UndecodableError as exc:
        return ParseResult(skipped=[Skipped(shown, f"{exc}; not an article file")])
    kind = detect_kind(document, file.path)
    if kind == "feed":  # parsed from bytes: the decoded text goes now, not after (20-40 MB of a 10 MB file)
        document = feed_bytes(document)
    try:
        return PARSERS[kind](file, document, source, options)
    except NotAnArticle as exc:
        return ParseResult(skipped=[Skipped(shown, f"not an article: {exc}")])
    except Exception as exc:  # noqa: BLE001 - a parser (ours or a library's) choked on this file's content
        # One file must not stop its folder: it is reported and skipped; the traceback is for --log-level debug.
        logging.getLogger("aggregator").debug("%s: %s raised while parsing", source, shown, exc_info=True)
        return ParseResult(skipped=[Skipped(shown, f"could not be parsed as {kind} ({type(exc).__name__}: "
                                                   f"{_one_line(exc)}); fix or remove the file")])


def _one_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _declared_encoding(data: bytes) -> str | None:
    """The encoding an XML declaration or a <meta charset> names, if any."""
    match = XML_DECLARED_ENCODING.match(data[:200])
    return match.group(1).decode("ascii") if match else declared_charset(data)


def parse_plaintext_file(file: LocalFile, text: str, source: str, options: ParseOptions) -> ParseResult:
    parsed = parse_plaintext(text, options.known_categories)
    body, content_html = _body_and_html(parsed.paragraphs)
    title = clean_text(parsed.title)
    return ParseResult(articles=[Article(
        id=local_article_id(source, file.relative),
        source=source,
        title=title,
        site=clean_text(parsed.site),
        published=_modified(file),
        categories=parsed.categories,
        summary=summarize(body),
        text=body,
        content_html=content_html,
        site_related=parsed.site_related,
        origin=display_path(file.path),
        content_hash=content_hash(title, body, parsed.site, ",".join(parsed.categories),
                                  repr(parsed.site_related)),
    )])


def _body_and_html(paragraphs: list[str]) -> tuple[str, str]:
    """The cleaned paragraphs as text (blank-line separated) and as HTML; the list of them goes here."""
    cleaned = [clean_text(p) for p in paragraphs]
    return "\n\n".join(cleaned), paragraphs_to_html(cleaned)


def parse_html_file(file: LocalFile, text: str, source: str, options: ParseOptions) -> ParseResult:
    page = ingest.html.parse_html_page(text)
    if page is None:
        raise NotAnArticle("an HTML page without article text")
    title = page.title or summarize(page.text, 80)
    categories = page.categories
    return ParseResult(articles=[Article(
        id=local_article_id(source, file.relative),
        source=source,
        title=title,
        site=page.site,
        url=page.url,
        published=page.published or _modified(file),
        updated=page.updated,
        authors=page.authors,
        categories=categories,
        summary=summarize(page.description) if page.description else summarize(page.text),
        text=page.text,
        content_html=page.content_html,
        image=page.image,
        origin=display_path(file.path),
        content_hash=content_hash(title, page.text, page.url or "", page.site, ",".join(categories)),
    )])


def parse_markdown_file(file: LocalFile, text: str, source: str, options: ParseOptions) -> ParseResult:
    parsed = ingest.markdown.parse_markdown(text)
    shown = display_path(file.path)
    return ParseResult(warnings=[f"{shown}: {warning}" for warning in parsed.warnings], articles=[Article(
        id=local_article_id(source, file.relative),
        source=source,
        title=parsed.title,
        site=parsed.site,
        url=parsed.url,
        published=parsed.published or _modified(file),
        updated=parsed.updated if parsed.updated and parsed.published and parsed.updated > parsed.published else None,
        authors=parsed.authors,
        categories=parsed.categories,
        summary=summarize(parsed.summary or parsed.text),
        text=parsed.text,
        content_html=parsed.content_html,
        image=parsed.image,
        origin=display_path(file.path),
        content_hash=content_hash(parsed.title, parsed.text, parsed.url or "", parsed.site,
                                  ",".join(parsed.categories)),
    )])


def parse_json_file(file: LocalFile, text: str, source: str, options: ParseOptions) -> ParseResult:
    def make_id(key: str | None) -> str:
        return local_article_id(source, file.relative if key is None else f"{file.relative}#{key}")

    return ingest.jsonfile.parse_json_file(text, source=source, origin=display_path(file.path), make_id=make_id,
                                           fallback_date=_modified(file), max_entries=options.max_entries)


def parse_feed_file(file: LocalFile, data: bytes, source: str, options: ParseOptions) -> ParseResult:
    """A saved RSS/Atom file (`data`: feed_bytes): each entry an article, keyed by its guid like a fetched feed."""
    shown = display_path(file.path)
    parsed = ingest.feed.parse_feed(data, source=source, max_entries=options.max_entries)
    result = ingest.feed.skipped_for(shown, parsed)
    result.articles = [replace(article, origin=str(file.path)) for article in result.articles]
    if not result.articles and not result.skipped:
        raise NotAnArticle("a feed with no entries")
    return result


def feed_bytes(text: str) -> bytes:
    """A feed's text we decoded ourselves, as UTF-8 without its XML declaration, so the feed
    parser needs no guessing (and cannot trust a declared encoding that lies)."""
    return XML_DECLARATION.sub("", text, count=1).lstrip("\ufeff").encode("utf-8")


def _modified(file: LocalFile) -> datetime:
    return datetime.fromtimestamp(file.path.stat().st_mtime, tz=timezone.utc)


PARSERS = {"plaintext": parse_plaintext_file, "html": parse_html_file, "markdown": parse_markdown_file,
           "json": parse_json_file, "feed": parse_feed_file}


def local_article_id(source: str, relative: str) -> str:
    """Keyed by source and path, so an edited file updates its article."""
    return stable_id("local", source, relative)


def file_key(path: Path) -> str:
    """The `files` table key: the absolute path, as a string that survives odd bytes."""
    return display_path(path.absolute())


def read_local_source(root: Path, source: str, options: ParseOptions, max_size: int,
                      include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                      known: dict[str, FileState] | None = None,
                      base: Path | None = None) -> Iterator[ParseResult]:
    """One ParseResult per file under root, in path order.

    `known` is what the store remembers of this source's files: a file whose
    size and mtime (or, failing that, bytes) are unchanged is not parsed, and
    its result only counts its articles as unchanged. `base` is the folder ids
    are relative to (the configured source's root when ingesting a part of it).
    """
    if not root.exists():  # a typo, or a share not mounted: the source fails (its articles stay stored)
        yield ParseResult(error=f"{display_path(root)}: no such file or folder; fix the source's path")
        return
    root = root.resolve()  # ids and the files table need one spelling of every path
    base = base.resolve() if base else (root if root.is_dir() else root.parent)
    known = known or {}
    salt = options.fingerprint().encode("utf-8")
    for path in iter_files(root, include, exclude):
        yield read_one(path, base, source, options, max_size, known.get(file_key(path)), salt)


def read_one(path: Path, base: Path, source: str, options: ParseOptions, max_size: int,
             previous: FileState | None, salt: bytes) -> ParseResult:
    """One file: unchanged (by stat, then by hash), skipped, or parsed with its new state."""
    try:
        stat = path.stat()
    except OSError as exc:
        return ParseResult(skipped=[Skipped(display_path(path), f"cannot read: {exc.strerror or exc}")])
    if previous and previous.source == source and previous.mtime_ns == stat.st_mtime_ns \
            and previous.size == stat.st_size:
        return ParseResult(unchanged=len(previous.article_ids))
    file = read_file(path, base, max_size)
    if isinstance(file, Skipped):
        return ParseResult(skipped=[file])
    digest = hashlib.sha256(salt + b"\x00" + file.data).hexdigest()
    state = FileState(path=file_key(path), source=source, content_hash=digest, size=stat.st_size,
                      mtime_ns=_trusted_mtime(stat.st_mtime_ns))
    if previous and previous.source == source and previous.content_hash == digest:
        state.article_ids = previous.article_ids
        return ParseResult(unchanged=len(previous.article_ids), file=state)
    result = parse_file(file, source, options)
    if result.skipped and not result.articles:
        return result  # not remembered: a bad file is reported again until it is fixed
    state.article_ids = [a.id for a in result.articles]
    result.file = state
    return result


def _trusted_mtime(mtime_ns: int) -> int | None:
    """None for a file modified within the racy window: next time its bytes are hashed."""
    return None if time.time_ns() - mtime_ns < RACY_WINDOW_NS else mtime_ns
