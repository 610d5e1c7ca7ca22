"""The plain-text article format: a news page saved as text.

    Site name
    CategoriesRunTogether
    <blank>
    Title
    <blank>
    image alt text / FILE PHOTO: caption lines
    <blank>
    body paragraphs, separated by blank lines
    Follow the Site on Google News          (boilerplate, dropped)
    Related Posts
    title / author pairs                    (kept as site_related, never body)

This module only turns text into a `PlainTextArticle`; ids, dates and
sanitizing happen in ingest/local.py so every file kind shares them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aggregator.models import SiteRelated

DEFAULT_CATEGORIES = (
    "Middle East", "USA", "US", "UK", "EU", "UN", "AI", "World", "Europe", "Asia", "Africa",
    "Americas", "Politics", "Business", "Economy", "Technology", "Tech", "Science", "Health",
    "Climate", "Environment", "Sport", "Sports", "Culture", "Opinion", "Analysis", "News",
    "Local", "Cyprus", "Greece", "Latin America", "North America", "Asia Pacific",
)
RELATED_HEADERS = re.compile(r"^(related posts|related articles|related stories|related news|"
                             r"you may also like|more stories|read more)\s*:?$", re.I)
BOILERPLATE = re.compile(
    r"^(follow (the |us )?.{0,60}\bon (google news|twitter|x|facebook|instagram|telegram|whatsapp)\b.*"
    r"|sign up (for|to) .{0,80}|subscribe (to|for) .{0,80}"
    r"|share (this|on) .{0,40}|click here .{0,80}|advertisement|read more:?.{0,80}"
    r"|(download|get) (the|our) .{0,30}app.*|copyright .{0,80}|©.{0,80}"
    r"|all rights reserved.{0,40}|join (the conversation|our .{0,30} channel).*)$",
    re.I,
)
CAPTION = re.compile(r"^(file photo|photo|picture|image|pictured|credit|illustration)\b.*|.*\((photo|image|credit)[^)]*\)$", re.I)
SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$|[\"\u201d]$")


class NotAnArticle(ValueError):
    """The text does not have the shape of a saved article."""


@dataclass
class PlainTextArticle:
    site: str
    categories: list[str]
    title: str
    captions: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    site_related: list[SiteRelated] = field(default_factory=list)


def parse_plaintext(text: str, known_categories: tuple[str, ...] = ()) -> PlainTextArticle:
    """Split a saved article into its parts, or raise NotAnArticle saying what is missing."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")]
    head, position = _head(lines)
    site, categories_line, title = head
    blocks = _blocks(lines[position:])
    blocks, related_lines = _split_related(blocks)
    captions, paragraphs = _captions_and_body(blocks)
    paragraphs = [p for p in paragraphs if not BOILERPLATE.match(p.strip())]
    if not paragraphs:
        raise NotAnArticle("no body paragraphs after the title")
    return PlainTextArticle(
        site=site,
        categories=split_categories(categories_line, known_categories),
        title=title,
        captions=captions,
        paragraphs=paragraphs,
        site_related=_pairs(related_lines),
    )


def _head(lines: list[str]) -> tuple[tuple[str, str, str], int]:
    """Site, categories line (may be empty) and title, plus where the rest starts."""
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines):
        raise NotAnArticle("the file is empty")
    site = lines[index].strip()
    categories = ""
    index += 1
    if index < len(lines) and lines[index].strip():
        categories = lines[index].strip()
        index += 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines):
        raise NotAnArticle("no title line after the site and categories lines")
    title = lines[index].strip()
    if len(site) > 120 or len(categories) > 300 or len(title) > 500:
        raise NotAnArticle("the first lines are too long to be a site name, categories and title")
    return (site, categories, title), index + 1


def _blocks(lines: list[str]) -> list[list[str]]:
    """Groups of consecutive non-blank lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _split_related(blocks: list[list[str]]) -> tuple[list[list[str]], list[str]]:
    for index, block in enumerate(blocks):
        if RELATED_HEADERS.match(block[0]):
            related = block[1:] + [line for later in blocks[index + 1:] for line in later]
            return blocks[:index], related
    return blocks, []


def _captions_and_body(blocks: list[list[str]]) -> tuple[list[str], list[str]]:
    """Caption lines sit between the title and the first real paragraph.

    A line is a caption when it says so (FILE PHOTO:, Image:), starts in
    lowercase like generated alt text, or does not end like a sentence.
    Body paragraphs are one line each; a multi-line block is kept joined.
    """
    captions: list[str] = []
    index = 0
    while index < len(blocks):
        block = blocks[index]
        if len(block) == 1 and _is_sentence(block[0]) and not CAPTION.match(block[0]):
            break
        if all(_is_caption(line) for line in block):
            captions.extend(block)
            index += 1
            continue
        break
    paragraphs = [" ".join(block) for block in blocks[index:]]
    return captions, paragraphs


def _is_sentence(line: str) -> bool:
    return bool(SENTENCE_END.search(line)) and not line[:1].islower()


def _is_caption(line: str) -> bool:
    return bool(CAPTION.match(line)) or line[:1].islower() or not _is_sentence(line)


def _pairs(lines: list[str]) -> list[SiteRelated]:
    pairs = []
    for index in range(0, len(lines), 2):
        title = lines[index]
        author = lines[index + 1] if index + 1 < len(lines) else ""
        if BOILERPLATE.match(title):
            continue
        pairs.append(SiteRelated(title=title, author=author))
    return pairs


# --- categories run together: "Middle EastUSAWorld" -> Middle East, USA, World ---

_WORD_BOUNDARY = re.compile(
    r"(?<=[a-z\u00e0-\u00ff])(?=[A-Z\u00c0-\u00de])"   # lower -> Upper: "EastUSA"
    r"|(?<=[A-Z\u00c0-\u00de])(?=[A-Z\u00c0-\u00de][a-z\u00e0-\u00ff])"  # acronym -> Word: "USAWorld"
    r"|(?<=[a-z\u00e0-\u00ff)])(?=\d)|(?<=\d)(?=[A-Z])"
)


def split_categories(run: str, known: tuple[str, ...] = ()) -> list[str]:
    """Split a run of categories using case transitions, preferring known names.

    Case alone cannot split every run ("USAI" could be USA+I or US+AI), so a
    dynamic programme picks the segmentation that covers the most text with
    known categories (config first, then a built-in list) and falls back to
    case transitions for the rest.
    """
    run = run.strip()
    if not run:
        return []
    if any(sep in run for sep in ("|", ",", ";", "\u2022", " / ")):
        parts = re.split(r"\s*(?:\||,|;|\u2022| / )\s*", run)
        return _unique([p for p in parts if p])
    names = {k.lower(): k for k in (*DEFAULT_CATEGORIES, *known)}
    cuts = {0, len(run)} | {m.start() for m in _WORD_BOUNDARY.finditer(run)}
    best: list[tuple[int, int, list[str]] | None] = [None] * (len(run) + 1)
    best[0] = (0, 0, [])
    for start in range(len(run)):
        if best[start] is None:
            continue
        unknown, count, parts = best[start]
        for end in range(start + 1, len(run) + 1):
            piece = run[start:end]
            if piece.strip().lower() in names:
                candidate = (unknown, count + 1, parts + [piece.strip()])
            elif end in cuts and not any(start < cut < end for cut in cuts):
                candidate = (unknown + len(piece), count + 1, parts + [piece.strip()])
            else:
                continue
            if best[end] is None or candidate[:2] < best[end][:2]:
                best[end] = candidate
    result = best[len(run)]
    return _unique([p for p in (result[2] if result else [run]) if p])


def _unique(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out
