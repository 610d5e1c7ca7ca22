"""The quality evaluation in one command: related posts and duplicate detection against labels.

    .venv/bin/python eval/run.py [--json] [--wrong N]

Related posts (eval/related_eval.py): precision and recall of related links
on the generated set (eval/related_articles.jsonl) and on the bundled
samples, with the wrong links that remain and why they were made. Our own
links and the site's own picks (which keep priority, whatever their subject)
are counted apart and together. Duplicates (bench/eval_quality.py on
eval/articles.jsonl): pairwise precision and recall of stored clusters.

Exit status 0 when every target is met, 1 when one is not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from bench import eval_quality  # noqa: E402
from related_eval import Scores, evaluate  # noqa: E402

TARGETS = {"related_precision": 0.95, "related_recall": 0.8, "dup_precision": 0.98, "dup_recall": 0.95}


def report(related: list[Scores], duplicates: dict) -> dict:
    sets = {s.name: {"articles": s.articles, "links": s.links, "precision": round(s.precision, 3),
                     "our_links": s.our_links, "our_precision": round(s.our_precision, 3),
                     "site_links": s.site_links, "site_precision": round(s.site_precision, 3),
                     "recall": round(s.recall, 3), "short_lists": s.short_lists,
                     "wrong": [vars(w) for w in s.wrong]} for s in related}
    generated = next(s for s in related if s.name == "generated")
    measured = {"related_precision": generated.precision, "related_recall": generated.recall,
                "dup_precision": duplicates["dup_precision"], "dup_recall": duplicates["dup_recall"]}
    return {"related": sets, "duplicates": {k: duplicates[k] for k in (
                "articles", "stories", "threshold", "dup_precision", "dup_recall", "dup_pairs_predicted",
                "dup_pairs_true", "false_pairs", "missed_pairs")},
            "targets": {k: {"target": TARGETS[k], "measured": round(v, 3), "met": v >= TARGETS[k]}
                        for k, v in measured.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="the whole result as one JSON object")
    parser.add_argument("--wrong", type=int, default=12, metavar="N", help="wrong links listed per set")
    args = parser.parse_args()
    result = report(evaluate(), eval_quality.evaluate())
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
    else:
        for name, s in result["related"].items():
            print(f"related, {name}: {s['articles']} articles, {s['links']} links: precision {s['precision']:.3f}, "
                  f"recall {s['recall']:.3f}; ours {s['our_links']} at {s['our_precision']:.3f}, "
                  f"the site's own {s['site_links']} at {s['site_precision']:.3f}; "
                  f"{s['short_lists']} lists shorter than the same-subject stories allowed")
            ours_first = sorted(s["wrong"], key=lambda w: "the site's own pick" in w["why"])  # stable
            for wrong in ours_first[:args.wrong]:
                print(f"  {wrong['article']} -> {wrong['other']} ({' -> '.join(wrong['subjects'])}) {wrong['why']}")
        d = result["duplicates"]
        print(f"duplicates: {d['articles']} articles, {d['stories']} stories: precision {d['dup_precision']:.3f}, "
              f"recall {d['dup_recall']:.3f} ({d['dup_pairs_predicted']} predicted pairs, "
              f"{d['dup_pairs_true']} true)")
        for key, target in result["targets"].items():
            print(f"target {key} >= {target['target']}: {target['measured']:.3f} "
                  f"{'met' if target['met'] else 'NOT met'}")
    return 0 if all(t["met"] for t in result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
