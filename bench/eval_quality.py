"""Precision and recall of duplicate detection and topic tagging on eval/articles.jsonl.

Runs the real pipeline stages (tag, dedup, store) into a temporary SQLite
file, one batch per site as ingest would, then compares with the labels:

- duplicates, pairwise: a pair of articles is "predicted" when they share a
  stored cluster and "true" when they share a labeled story;
- topics, per (article, topic) assignment;
- related posts: whether each follow-up and its original story list each
  other, and how many picks share a labeled topic with the article.

    .venv/bin/python bench/eval_quality.py [--threshold 0.6]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config import load_config  # noqa: E402
from aggregator.models import Article, ParseResult  # noqa: E402
from aggregator.enrich.text import content_hash, stable_id  # noqa: E402
from aggregator.pipeline import store_results, topic_rules  # noqa: E402
from aggregator.publish.related import compute_related  # noqa: E402
from aggregator.storage.store import Store  # noqa: E402

EVAL = ROOT / "eval"


def load_labeled(path: Path = EVAL / "articles.jsonl") -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def to_article(row: dict) -> Article:
    return Article(id=stable_id("eval", row["id"]), source=row["source"], site=row["site"], title=row["title"],
                   url=row["url"], guid=row["id"], published=datetime.fromisoformat(row["published"]),
                   categories=list(row["categories"]), text=row["text"], summary=row["text"].split("\n\n")[0],
                   content_hash=content_hash(row["title"], row["text"]))


def pairs(groups: dict[str, str]) -> set[tuple[str, str]]:
    by: dict[str, list[str]] = {}
    for item, group in groups.items():
        by.setdefault(group, []).append(item)
    return {tuple(sorted(p)) for members in by.values() for p in itertools.combinations(members, 2)}


def ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def evaluate(threshold: float | None = None) -> dict:
    rows = load_labeled()
    config = load_config(EVAL / "topics.toml")
    threshold = threshold if threshold is not None else config.dedup.threshold
    rules = topic_rules(config)
    ids = {stable_id("eval", r["id"]): r for r in rows}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "eval.db") as store:
        by_site: dict[str, list[Article]] = {}
        for row in sorted(rows, key=lambda r: r["published"]):
            by_site.setdefault(row["source"], []).append(to_article(row))
        for site, articles in by_site.items():
            store_results(store, site, [ParseResult(articles=articles)], rules, dedup_threshold=threshold)
        stored = {a.id: a for a in store.iter_articles()}
        related = related_quality(store, list(stored.values()), ids)
    predicted = pairs({i: a.cluster_id for i, a in stored.items()})
    truth = pairs({i: r["cluster"] for i, r in ids.items()})
    hit = len(predicted & truth)
    tag_pred = {(i, t) for i, a in stored.items() for t in a.topics}
    tag_true = {(i, t) for i, r in ids.items() for t in r["topics"]}
    tag_hit = len(tag_pred & tag_true)
    false_pairs = sorted(predicted - truth)
    missed = sorted(truth - predicted)
    return {
        "articles": len(rows), "stories": len({r["cluster"] for r in rows}), "threshold": threshold,
        "dup_pairs_true": len(truth), "dup_pairs_predicted": len(predicted),
        "dup_precision": ratio(hit, len(predicted)), "dup_recall": ratio(hit, len(truth)),
        "topic_precision": ratio(tag_hit, len(tag_pred)), "topic_recall": ratio(tag_hit, len(tag_true)),
        "false_pairs": [(ids[a]["id"], ids[b]["id"]) for a, b in false_pairs[:10]],
        "missed_pairs": [(ids[a]["id"], ids[b]["id"]) for a, b in missed[:10]],
        "wrong_tags": sorted({(ids[i]["id"], t) for i, t in tag_pred ^ tag_true})[:10],
        **related,
    }


def related_quality(store: Store, articles: list[Article], labels: dict[str, dict]) -> dict:
    """Related posts (5 per article): does a follow-up list its original story and the original
    its follow-up, and how many picks share a labeled topic with the article."""
    computed = compute_related(store, articles, 5)
    lists = {a.id: [labels[p.id] for p in computed[a.id]] for a in articles}
    clusters = {row["cluster"] for row in labels.values()}
    found = pairs_seen = agree = picks = 0
    for article_id, chosen in lists.items():
        label = labels[article_id]
        partner = ("s" if label["cluster"].startswith("f") else "f") + label["cluster"][1:]
        picks += len(chosen)
        agree += sum(1 for p in chosen if set(p["topics"]) & set(label["topics"]))
        if partner in clusters:
            pairs_seen += 1
            found += any(p["cluster"] == partner for p in chosen)
    return {"related_follow_up_hits": found, "related_follow_up_lists": pairs_seen,
            "related_topic_agreement": ratio(agree, picks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    result = evaluate(args.threshold)
    print(f"eval set: {result['articles']} articles, {result['stories']} labeled stories, "
          f"threshold {result['threshold']}")
    print(f"duplicates: precision {result['dup_precision']:.3f}  recall {result['dup_recall']:.3f}  "
          f"({result['dup_pairs_predicted']} predicted pairs, {result['dup_pairs_true']} true pairs)")
    print(f"topics:     precision {result['topic_precision']:.3f}  recall {result['topic_recall']:.3f}")
    print(f"related:    follow-up and original find each other in {result['related_follow_up_hits']} of "
          f"{result['related_follow_up_lists']} lists; picks sharing a topic {result['related_topic_agreement']:.3f}")
    for key in ("false_pairs", "missed_pairs", "wrong_tags"):
        if result[key]:
            print(f"  {key} (first 10): {result[key]}")


if __name__ == "__main__":
    main()
