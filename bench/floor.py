"""The parsing and storage floor: what one core costs per entry for the parts alone, in this process.

On the same bytes as the contenders: feedparser alone (as shipped, and with
sanitizing and URL resolution off), an lxml parse alone, our own parse_feed,
and SQLite inserts alone (rows shaped like ours, WAL, one transaction per
feed; then with an FTS5 index like ours). No process pool, no fetching: the
figures bound what any design built on these parts can reach per entry.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import corpus as corpus_mod
from measure import db_files


@dataclass
class Floor:
    stage: str
    seconds: float
    entries: int

    @property
    def us_per_entry(self) -> float:
        return self.seconds / self.entries * 1e6


def floor(corpus: corpus_mod.Corpus, files: dict[str, bytes], work: Path) -> list[Floor]:
    entries = len(corpus.entries())
    results = []
    import feedparser
    from lxml import etree

    data = [files[f.path] for f in corpus.feeds]
    results.append(Floor("feedparser.parse (defaults)", _timed(lambda: [feedparser.parse(d) for d in data]), entries))
    results.append(Floor("feedparser.parse (no sanitize, no URL resolving)", _timed(lambda: [
        feedparser.parse(d, sanitize_html=False, resolve_relative_uris=False) for d in data]), entries))
    results.append(Floor("lxml.etree.fromstring", _timed(lambda: [etree.fromstring(d) for d in data]), entries))
    try:
        from aggregator.ingest.feed import parse_feed

        results.append(Floor("aggregator parse_feed (feedparser-rs, feedparser fallback, nh3, normalize)", _timed(lambda: [
            parse_feed(d, source=f.title, url=f.site_url) for d, f in zip(data, corpus.feeds)]), entries))
    except ImportError:
        pass
    results.append(Floor("SQLite insert, plain rows (1 tx per feed)", _sqlite_floor(corpus, work, fts=False), entries))
    results.append(Floor("SQLite insert, rows + FTS5 (1 tx per feed)", _sqlite_floor(corpus, work, fts=True), entries))
    return results


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _sqlite_floor(corpus: corpus_mod.Corpus, work: Path, fts: bool) -> float:
    """Rows shaped like ours, WAL + synchronous=NORMAL like our store, one transaction per feed."""
    db = work / ("floor-fts.db" if fts else "floor.db")
    for path in db_files(db):
        path.unlink(missing_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE articles (id TEXT PRIMARY KEY, source TEXT, title TEXT, url TEXT, guid TEXT, "
                 "published TEXT, authors TEXT, categories TEXT, summary TEXT, text TEXT, content_html TEXT)")
    if fts:
        conn.execute("CREATE VIRTUAL TABLE articles_fts USING fts5 (title, text, content=articles, "
                     "content_rowid=rowid, tokenize='porter unicode61 remove_diacritics 2')")
        conn.execute("CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN INSERT INTO articles_fts "
                     "(rowid, title, text) VALUES (new.rowid, new.title, new.text); END")
    batches = [[(hashlib.sha256(f"{f.path}{e.guid}".encode()).hexdigest()[:16], f.title, e.title, e.link, e.guid,
                 e.published.isoformat(), json.dumps([e.author]), json.dumps(e.categories), e.summary,
                 "\n\n".join(e.paragraphs), e.html) for e in f.entries] for f in corpus.feeds]
    start = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return seconds
