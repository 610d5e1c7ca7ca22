"""Precision and recall of related posts against labelled subjects.

Two labelled sets, each stored through the real pipeline (topic rules of
the bundled config.toml, dedup, store) into a temporary SQLite file:

- eval/related_articles.jsonl (eval/related_generate.py): 336 articles in
  16 subjects, a third of them traps;
- the bundled samples (samples/articles), labelled in eval/samples_subjects.json.

A link is right when the two articles share a labelled subject. Precision
is right links over links shown (the site's own picks included). Recall, per
article, is the same-subject stories found over the same-subject stories
there are, at most `limit` (a list cannot show more), averaged over articles
that have any; stories are counted once per duplicate cluster.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator import pipeline  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.enrich.text import content_hash, stable_id  # noqa: E402
from aggregator.models import Article, ParseResult  # noqa: E402
from aggregator.publish import related, related_explain  # noqa: E402
from aggregator.storage.store import Store  # noqa: E402

EVAL = ROOT / "eval"
GENERATED = EVAL / "related_articles.jsonl"
SAMPLE_SUBJECTS = EVAL / "samples_subjects.json"
LIMIT = 5


@dataclass
class Wrong:
    """A link between articles of different subjects, with what made them look alike."""

    article: str
    other: str
    subjects: tuple[str, str]
    similarity: float
    why: str


@dataclass
class Scores:
    name: str
    articles: int
    links: int
    right: int
    recall: float
    short_lists: int  # lists with fewer links than same-subject stories allowed
    site_links: int = 0  # the site's own "Related Posts" among the links, and how many of them are right
    site_right: int = 0
    wrong: list[Wrong] = field(default_factory=list)
    missed: Counter = field(default_factory=Counter)  # subject -> same-subject stories not found

    @property
    def precision(self) -> float:
        return self.right / self.links if self.links else 1.0

    @property
    def our_links(self) -> int:
        return self.links - self.site_links

    @property
    def our_precision(self) -> float:
        return (self.right - self.site_right) / self.our_links if self.our_links else 1.0

    @property
    def site_precision(self) -> float:
        return self.site_right / self.site_links if self.site_links else 1.0


def generated_store(folder: Path) -> tuple[Store, dict[str, set[str]], dict[str, str]]:
    """The generated set stored one batch per site; labels and titles by stored id."""
    rows = [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines() if line.strip()]
    config = load_config(ROOT / "config.toml")
    rules = pipeline.topic_rules(config)
    store = Store(folder / "generated.db")
    by_site: dict[str, list[Article]] = {}
    for row in sorted(rows, key=lambda r: (r["published"], r["id"])):
        by_site.setdefault(row["source"], []).append(Article(
            id=stable_id("related-eval", row["id"]), source=row["source"], site=row["site"], title=row["title"],
            url=row["url"], guid=row["id"], published=datetime.fromisoformat(row["published"]),
            categories=list(row["categories"]), text=row["text"], summary=row["text"].split("\n\n")[0],
            content_hash=content_hash(row["title"], row["text"])))
    for site in sorted(by_site):
        pipeline.store_results(store, site, [ParseResult(articles=by_site[site])], rules,
                               dedup_threshold=config.dedup.threshold)
    labels = {stable_id("related-eval", r["id"]): {r["subject"]} for r in rows}
    names = {stable_id("related-eval", r["id"]): r["id"] for r in rows}
    return store, labels, names


def samples_store(folder: Path) -> tuple[Store, dict[str, set[str]], dict[str, str]]:
    """The bundled samples ingested as `run --once` does, with the bundled config's topics."""
    config = load_config(ROOT / "config.toml")
    config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, database=folder / "samples.db"),
                                 sources=tuple(dataclasses.replace(s, path=ROOT / "samples" / "articles")
                                               for s in config.sources if s.path is not None))
    store = Store(config.storage.database)
    pipeline.ingest_all(config, store)
    subjects = {name: set(labels) for name, labels in json.loads(SAMPLE_SUBJECTS.read_text()).items()
                if not name.startswith("_")}
    labels, names = {}, {}
    for article in store.iter_articles():
        name = Path(article.origin).name
        labels[article.id], names[article.id] = subjects[name], name.split("_")[0]
    return store, labels, names


def score(name: str, store: Store, labels: dict[str, set[str]], names: dict[str, str],
          limit: int = LIMIT) -> Scores:
    articles = sorted(store.iter_articles(), key=lambda a: a.id)
    lists = related.compute_related(store, articles, limit)
    clusters = {a.id: a.cluster_id or a.id for a in articles}
    result = Scores(name, len(articles), 0, 0, 0.0, 0)
    recalls = []
    for article in articles:
        picks = lists[article.id]
        own = labels[article.id]
        same = {clusters[i] for i, s in labels.items() if s & own and clusters[i] != clusters[article.id]}
        found = {p.cluster_id for p in picks if labels[p.id] & own}
        site = {c.id for c in related.site_choices(store, article)}
        result.links += len(picks)
        result.right += sum(1 for p in picks if labels[p.id] & own)
        result.site_links += sum(1 for p in picks if p.id in site)
        result.site_right += sum(1 for p in picks if p.id in site and labels[p.id] & own)
        if same:
            wanted = min(len(same), limit)
            recalls.append(min(len(found), wanted) / wanted)
            result.short_lists += len(picks) < wanted
            for subject in own:
                result.missed[subject] += max(0, wanted - len(found))
        for pick in picks:
            if not labels[pick.id] & own:
                reason = related_explain.why(store, article, [pick.id])[pick.id]
                result.wrong.append(Wrong(names[article.id], names[pick.id],
                                          ("/".join(sorted(own)), "/".join(sorted(labels[pick.id]))),
                                          reason.similarity, reason.summary()))
    result.recall = sum(recalls) / len(recalls) if recalls else 1.0
    return result


def evaluate(limit: int = LIMIT) -> list[Scores]:
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for name, build in (("generated", generated_store), ("samples", samples_store)):
            store, labels, names = build(Path(tmp))
            with store:
                results.append(score(name, store, labels, names, limit))
        return results
