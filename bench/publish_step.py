"""The publish step of a first ingest, alone: its wall and CPU time, stage by stage, and its exact output.

    .venv/bin/python bench/publish_step.py [--feeds 200] [--entries 50] [--runs 5] [--reuse]
                                           [--keep DIR] [--compare DIR] [--results PATH]

1. A snapshot: run.py's corpus and config (fresh database), ingested by
   `pipeline.ingest_all` in a subprocess, without the publish: the store as
   `aggregator run --once` holds it when its publish begins (no related
   lists kept, no publish recorded). `--reuse` keeps an earlier snapshot of
   the same size (bench/.work/publish-step/).
2. --runs times: a copy of the snapshot, and a fresh process that loads
   what `run --once` has loaded before its publish (the pipeline, the
   store, the config), then times `pipeline.publish(config, store)`:
   wall time, CPU time of the process (every thread) plus its waited
   children (worker processes), and main-thread wall time per stage
   (plain timers around each stage's entry point; stages nest).
3. Every run's feeds/ must be byte-identical to the first run's; `--keep DIR`
   copies them out, `--compare DIR` diffs them against a kept copy (say, from
   another commit: `PYTHONPATH=/tmp/bench-src` measures a clone). status.html
   shows today's date, so compare runs of the same day.

On a shared machine other work moves wall time most and CPU time too (two
busy hyperthreads slow each other), so the trees alternate and the figures
to compare are the medians of one run. `--renders N` then renders every feed
N more times in each process with the related lists kept: our own rendering's
CPU, with less noise. Writes bench/results/publish-<feeds>x<entries>.json.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import corpus as corpus_mod  # noqa: E402  (bench/ is not a package)
from measure import PYTHON, byte_compile_aggregator, fresh, git_commit, machine, versions  # noqa: E402

INGEST_SCRIPT = """\
import sys
from pathlib import Path
from aggregator import pipeline
from aggregator.config import load_config
from aggregator.gcpolicy import fewer_passes
from aggregator.storage.store import Store

fewer_passes()  # as the command's main() does
config = load_config(Path(sys.argv[1]))
store = Store(config.storage.database)
try:
    pipeline.ingest_all(config, store)
finally:
    store.close()
"""

# (module, attribute, label): each stage's entry point; indented labels are part of the row above.
# A name the code no longer has is left out with a line, so the table follows the code.
STAGES = [
    ("aggregator.publish.last_publish", "unchanged_report", "the stamp, and whether the last publish stands"),
    ("aggregator.publish.render", "render_feeds", "render every topic's feeds"),
    ("aggregator.publish.render", "topic_views", "  read each topic's articles, collapse clusters"),
    ("aggregator.publish.render", "related_for_many", "  related posts"),
    ("aggregator.publish.render", "prepared_entries", "  entries (ids, links, sanitized bodies)"),
    ("aggregator.publish.render", "prepared_entry", "  entries (ids, links, sanitized bodies)"),
    ("aggregator.publish.render", "render_xml", "  Atom and RSS (feedgen)"),
    ("aggregator.publish.render", "render_json", "  JSON Feed"),
    ("aggregator.publish.render", "render_article_pages", "article pages"),
    ("aggregator.publish.render", "render_index", "index.html"),
    ("aggregator.publish.render", "write_files", "write the files (atomic, fsync)"),
    ("aggregator.publish.render", "write_if_changed", "write a file (atomic, fsync)"),
    ("aggregator.publish.render", "remember", "record each file's SHA-256"),
    ("aggregator.publish.websub", "announce", "WebSub announce (none configured)"),
    ("aggregator.publish.status_page", "write_status_page", "status.html"),
]

CHILD_SCRIPT = """\
import functools, importlib, json, resource, sys, threading, time
from pathlib import Path

STAGES = json.loads(sys.argv[2])
spent, missing = {}, []

def timed(owner, name, label):
    function = getattr(owner, name)
    main = threading.main_thread().ident
    spent.setdefault(label, 0.0)
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            if threading.get_ident() == main:
                spent[label] += time.perf_counter() - started
    setattr(owner, name, wrapper)

from aggregator import pipeline
from aggregator.config import load_config
from aggregator.gcpolicy import fewer_passes
from aggregator.storage.store import Store

fewer_passes()
config = load_config(Path(sys.argv[1]))
store = Store(config.storage.database)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
imports = {}
for module_name, name, label in STAGES:  # loading render.py loads feedgen and lxml: counted apart
    started = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        missing.append(f"{module_name}.{name}")
        continue
    imports[module_name] = imports.get(module_name, 0.0) + time.perf_counter() - started
    if hasattr(module, name):
        timed(module, name, label)
    else:
        missing.append(f"{module_name}.{name}")
wall, cpu = time.perf_counter(), time.process_time()
report = pipeline.publish(config, store)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_CHILDREN)
workers = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
stages = dict(spent)  # the publish's own; the renders below add to the same timers
renders = []
if int(sys.argv[3]):  # the feeds rendered again and again, related lists kept: our rendering's own CPU
    from aggregator.publish import render, names
    kept = {}
    def related_once(store, articles, limit, original=render.related_for_many):
        return kept.setdefault(limit, original(store, articles, limit))
    render.related_for_many = related_once
    topics = [*config.topics, names.ALL_TOPIC]
    for _ in range(int(sys.argv[3]) + 1):
        started = time.process_time()
        render.render_feeds(config, store, topics)
        renders.append(time.process_time() - started)
    renders = renders[1:]  # the first computes the related lists
store.close()
print(json.dumps({"wall_s": wall, "cpu_s": cpu + workers, "worker_cpu_s": workers, "imports_s": imports,
                  "written": len(report.written), "stages": stages, "missing": missing, "render_cpu_s": renders}))
"""


def snapshot(args: argparse.Namespace, folder: Path) -> Path:
    """The store as a first ingest leaves it for its publish, built once (or kept with --reuse)."""
    from run import aggregator_config
    from server import HostedCorpus

    done = folder / "aggregator.db"
    if args.reuse and done.exists():
        return folder
    fresh(folder)
    corpus = corpus_mod.generate(args.feeds, args.entries, corpus_mod.DEFAULT_SEED)
    files = corpus_mod.write_corpus(corpus, folder / "corpus")
    with HostedCorpus(files, args.hosts) as server:
        config = aggregator_config(folder, [(f.title, server.url(f.path)) for f in corpus.feeds])
        subprocess.run([PYTHON, "-c", INGEST_SCRIPT, str(config)], check=True, cwd=folder)
    shutil.rmtree(folder / "corpus")
    # One file: the checkpoint folds the WAL in, so a copy is the whole store.
    import sqlite3

    with sqlite3.connect(done) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder


def one_run(source: Path, folder: Path, tree: Path | None, renders: int = 0) -> dict:
    """One publish in a fresh process on a copy of the snapshot; `tree` is another checkout to import.

    The process starts in the run's folder: `python -c` puts the current folder
    first on sys.path, where this checkout would win over PYTHONPATH.
    """
    fresh(folder)
    for name in ("aggregator.db", "config.toml"):
        shutil.copy2(source / name, folder / name)
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([PYTHON, "-c", CHILD_SCRIPT, str(folder / "config.toml"), json.dumps(STAGES), str(renders)],
                          capture_output=True, text=True, check=False, env=env, cwd=folder)
    if done.returncode != 0:
        raise SystemExit(f"publish run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_tree(a: Path, b: Path) -> list[str]:
    """Files that differ or exist on one side only (byte by byte), as paths relative to the roots."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: str) -> None:
        found.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        found.extend(prefix + n for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b), "")
    return sorted(found)


def side_summary(runs: list[dict]) -> dict:
    """Medians over the runs: times, each stage, each module's load."""
    def median(key: str, name: str) -> float:
        return statistics.median(r[key].get(name, 0.0) for r in runs)

    return {"wall_s": statistics.median(r["wall_s"] for r in runs), "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "stages_s": {label: median("stages", label) for label in runs[0]["stages"]},
            "imports_s": {name: median("imports_s", name) for name in runs[0]["imports_s"]},
            "render_cpu_s": statistics.median(t for r in runs for t in r.get("render_cpu_s", [])) if any(
                r.get("render_cpu_s") for r in runs) else None,
            "missing": runs[0]["missing"], "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path,
                        help="another checkout (say `git clone -q --shared . /tmp/base && git -C /tmp/base checkout "
                             "COMMIT`): its runs alternate with this tree's, and its output must be the same bytes")
    parser.add_argument("--reuse", action="store_true", help="keep a snapshot of the same size from an earlier run")
    parser.add_argument("--renders", type=int, default=0,
                        help="after the publish, render every feed again this many times in the same process, "
                             "related lists computed once: the CPU of our own rendering, with less noise")
    parser.add_argument("--keep", type=Path, help="copy the published feeds/ here")
    parser.add_argument("--compare", type=Path, help="a kept feeds/ that the output must equal byte for byte")
    parser.add_argument("--work", type=Path, default=BENCH / ".work" / "publish-step")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    started, load = datetime.now(timezone.utc), os.getloadavg()
    byte_compile_aggregator()
    if args.baseline:
        import compileall

        compileall.compile_dir(args.baseline.resolve() / "aggregator", quiet=1)
    work = args.work.resolve()
    source = snapshot(args, work / f"snapshot-{args.feeds}x{args.entries}")
    trees: dict[str, Path | None] = {"this tree": None}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    output = work / "this-tree-1" / "feeds"
    differ: list[str] = []
    for n in range(1, args.runs + 1):
        for name in (list(trees) if n % 2 else list(trees)[::-1]):  # alternate who goes first
            folder = work / f"{name.replace(' ', '-')}-{n}"
            runs[name].append(one_run(source, folder, trees[name], args.renders))
            print(f"{name}, run {n}: wall {runs[name][-1]['wall_s']:.3f} s, CPU {runs[name][-1]['cpu_s']:.3f} s",
                  file=sys.stderr)
            if folder / "feeds" != output and output.exists():
                differ += [f"{folder.name}/{f}" for f in same_tree(output, folder / "feeds")]
    against = same_tree(args.compare, output) if args.compare else None
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        shutil.copytree(output, args.keep)
    found = {
        "benchmark": "bench/publish_step.py", "command": "bench/publish_step.py " + " ".join(sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"), "commit": git_commit(), "machine": machine(),
        "versions": versions(), "load_at_start": load[0], "load_at_end": os.getloadavg()[0],
        "workload": {"feeds": args.feeds, "entries_per_feed": args.entries, "hosts": args.hosts, "topics": 8},
        "baseline": str(args.baseline) if args.baseline else None,
        "baseline_commit": _commit_of(args.baseline) if args.baseline else None,
        "files": sum(1 for p in output.rglob("*") if p.is_file()),
        "output_mb": round(sum(p.stat().st_size for p in output.rglob("*") if p.is_file()) / 1e6, 2),
        "identical": not differ, "differing": sorted(set(differ)),
        "compared_with": str(args.compare) if args.compare else None, "differs_from_compared": against,
        "sides": {name: side_summary(side_runs) for name, side_runs in runs.items()},
    }
    path = args.results or BENCH / "results" / f"publish-{args.feeds}x{args.entries}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found, indent=1) + "\n", "utf-8")
    print(render(found))
    print(f"\nresults: {path}", file=sys.stderr)
    if differ or against:
        sys.exit(f"output differs: {sorted(set(differ))[:10]} {(against or [])[:10]}")


def _commit_of(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def render(found: dict) -> str:
    """The publish step in a few lines and one table, a column per tree measured."""
    sides = found["sides"]
    names = list(sides)
    heads = [f"{name} ({found['commit'] if name == 'this tree' else found['baseline_commit']})" for name in names]
    runs = len(sides[names[0]]["runs"])
    lines = [f"Publish step of a first ingest: {found['workload']['feeds']} feeds x "
             f"{found['workload']['entries_per_feed']} entries, 8 topics + all, {found['files']} files, "
             f"{found['output_mb']} MB. Medians of {runs} fresh processes per tree"
             + (", the trees alternating" if len(names) > 1 else "")
             + f"; load average {found['load_at_start']:.2f} at start, {found['load_at_end']:.2f} at end. "
             f"Output byte-identical over every run{' of both trees' if len(names) > 1 else ''}: "
             f"{'yes' if found['identical'] else 'NO'}"
             + ("" if found["compared_with"] is None else
                f"; to {found['compared_with']}: {'yes' if not found['differs_from_compared'] else 'NO'}") + ".",
             "", f"| publish step | {' | '.join(heads)} |", f"|---|{'---|' * len(names)}",
             f"| CPU, s (process and workers) | {' | '.join(format(sides[n]['cpu_s'], '.3f') for n in names)} |",
             f"| every run's CPU, s | {' | '.join(' / '.join(format(r['cpu_s'], '.3f') for r in sides[n]['runs']) for n in names)} |",
             f"| wall, s | {' | '.join(format(sides[n]['wall_s'], '.3f') for n in names)} |"]
    if all(sides[n].get("render_cpu_s") for n in names):
        count = sum(len(r["render_cpu_s"]) for r in sides[names[0]]["runs"])
        lines.append(f"| every feed rendered again, related lists kept: CPU, s (median of {count}) | "
                     + " | ".join(format(sides[n]["render_cpu_s"], ".4f") for n in names) + " |")
    labels = list(dict.fromkeys(label for n in names for label in sides[n]["stages_s"]))
    for label in labels:
        cells = [format(sides[n]["stages_s"][label], ".3f") if label in sides[n]["stages_s"] else "-" for n in names]
        lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} (wall) | {' | '.join(cells)} |")
    modules = list(dict.fromkeys(m for n in names for m in sides[n]["imports_s"]))
    for module in modules:
        if any(sides[n]["imports_s"].get(module, 0) >= 0.0005 for n in names):
            cells = [format(sides[n]["imports_s"].get(module, 0.0), ".3f") for n in names]
            lines.append(f"| loading {module}, before the step (wall) | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
