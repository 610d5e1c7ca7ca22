"""publish stage: stored articles in, the files under feeds/ out.

    last_publish.py  whether anything changed since the last publish (no feedgen,
                     no lxml: an unchanged refresh stops here)
    render.py        the publish itself: every topic's feeds, pages, index, OPML
    entries.py       stored articles -> entries, and the ones left out
    atom_rss.py      entries -> Atom and RSS (feedgen)
    json_feed.py     entries -> JSON Feed 1.1
    pages.py         the index page, local articles' pages, topics.opml
    files.py         atomic writes of changed files; stale files removed
    names.py         feed file names and URLs, entry ids, article links
    related.py       related posts per article (numpy), kept in the store
    related_similarity.py  how alike two profiles are, and what they share
    related_explain.py     why a related post is related (`explain ID`)
    status_page.py   feeds/status.html: how every source and topic is doing
    websub.py        tells a WebSub hub which feeds changed
"""

import importlib

_SUBMODULES = {"atom_rss", "entries", "files", "json_feed", "last_publish", "names", "pages", "related",
               "related_explain", "related_similarity", "render", "status_page", "websub"}


def __getattr__(name: str):  # PEP 562: a submodule loads on first use, so start-up stays small
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
