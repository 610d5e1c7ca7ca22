"""The labelled evaluation (eval/run.py) runs, meets its targets, and its set is what the generator writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "eval"))
sys.path.insert(0, str(ROOT))

import related_generate  # noqa: E402
from related_eval import GENERATED, evaluate  # noqa: E402

_spec = importlib.util.spec_from_file_location("eval_run", ROOT / "eval" / "run.py")
eval_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eval_run)


def test_the_generated_set_is_the_generators_output_and_has_what_the_issue_asks() -> None:
    rows = [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines()]
    assert rows == json.loads(json.dumps(related_generate.build()))
    assert len(rows) >= 300 and len({r["subject"] for r in rows}) >= 12
    traps = {r["trap"] for r in rows if r["trap"]}
    assert {"strike", "rates", "chips"} <= traps


def test_related_and_duplicate_targets_are_met() -> None:
    from bench import eval_quality

    result = eval_run.report(evaluate(), eval_quality.evaluate())
    assert all(target["met"] for target in result["targets"].values()), result["targets"]
    samples = result["related"]["samples"]
    assert samples["our_precision"] >= 0.9  # the site's own picks keep priority and are counted apart
