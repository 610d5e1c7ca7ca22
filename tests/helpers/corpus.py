"""A small published world for feed tests: the bundled samples plus hand-made hard cases.

The hard cases are written straight into the store (as an older version or
a hostile feed might have left them): raw scripts, handlers and data: URLs
in content, markup in a title, a remote article with an image and a source
feed, and a near-duplicate copy of it in the same cluster.
"""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from datetime import datetime, timezone
from pathlib import Path

from aggregator import pipeline
from aggregator.config import Config, load_config
from aggregator.models import Article, SiteRelated
from aggregator.enrich.text import content_hash
from aggregator.storage.store import Store
from .files import BASIC_CONFIG, SAMPLES

HOSTILE_HTML = (
    '<p onclick="steal()">Ministers met in <b>Brussels</b> to discuss the european union budget.</p>'
    '<script>alert("x")</script><iframe src="https://evil.example/"></iframe>'
    '<p style="color:red">Styled text about Brussels.</p>'
    '<a href="javascript:alert(1)">click</a> <a href="https://example.org/ok">fine link</a>'
    '<img src="data:image/png;base64,AAAA" onerror="steal()"><style>body{display:none}</style>'
)
REMOTE_ID = "remote-brussels-budget"
COPY_ID = "remote-brussels-budget-copy"
ODD_TITLE_ID = "odd-title"


def make_config(tmp_path: Path, base_url: str = "http://127.0.0.1:8080/", **publish: object) -> Config:
    """BASIC_CONFIG over a copy of the samples, with [publish] overrides."""
    if not (tmp_path / "articles").exists():
        shutil.copytree(SAMPLES, tmp_path / "articles")
    (tmp_path / "config.toml").write_text(textwrap.dedent(BASIC_CONFIG), encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    site = dataclasses.replace(config.site, base_url=base_url)
    return dataclasses.replace(config, site=site, publish=dataclasses.replace(config.publish, **publish))


def hard_cases() -> list[Article]:
    when = datetime(2024, 3, 5, 9, 30, tzinfo=timezone.utc)
    remote = Article(
        id=REMOTE_ID, source="Remote wire", site="Example Wire", title="EU budget talks in Brussels",
        url="https://example.org/news/eu-budget", guid="https://example.org/news/eu-budget",
        published=when, updated=when, categories=["Europe", "Politics"],
        summary="Ministers met in Brussels to discuss the european union budget.",
        text="Ministers met in Brussels to discuss the european union budget. Styled text about Brussels.",
        content_html=HOSTILE_HTML, image="https://example.org/img/budget.jpg",
        origin="https://example.org/feed.xml", topics=["europe"],
        site_related=[SiteRelated("Ministers in Brussels agree on EU budget talks")])
    copy = dataclasses.replace(remote, id=COPY_ID, source="Other wire", site="Copy Wire",
                               url="https://copy.example/eu-budget", guid=None, cluster_id=REMOTE_ID,
                               title="Ministers in Brussels agree on EU budget talks",
                               site_related=[], origin="https://copy.example/rss")
    odd = Article(
        id=ODD_TITLE_ID, source="Local newsroom", site="Odd & Co <Press>",
        title='<script>alert("t")</script> Germany & France "agree" on Brussels rules',
        published=when, summary="Germany and France agreed on new rules in Brussels.",
        text="Germany and France agreed on new rules in Brussels for the european union.",
        content_html='<p>Germany and France agreed <a href="vbscript:x">rules</a>.</p>', topics=["europe"])
    return [dataclasses.replace(article, content_hash=content_hash(article.title, article.text, article.content_html),
                                cluster_id=article.cluster_id or article.id) for article in (remote, copy, odd)]


def build_store(config: Config) -> Store:
    """Ingest the samples through the pipeline, then add the hard cases directly."""
    store = Store(config.storage.database)
    pipeline.ingest_all(config, store)
    cases = hard_cases()
    store.write_articles(cases, {a.id: a.topics for a in cases})
    return store


def published_corpus(folder: Path) -> Config:
    """Build the standard corpus under `folder` and publish it once; the config says where."""
    from aggregator.publish.render import publish

    config = make_config(folder)
    with build_store(config) as store:
        publish(config, store)
    return config
