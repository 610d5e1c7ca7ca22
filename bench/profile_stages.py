"""Where a first ingest's CPU goes, by stage: py-spy samples of every thread and process, sorted into stages.

    .venv/bin/python bench/profile_stages.py [--feeds 200] [--entries 50] [--hosts 10] [--rate 100]
    .venv/bin/python bench/profile_stages.py --stacks FILE      # sort an existing raw py-spy file

Runs `aggregator run --once` on run.py's corpus and config (fresh database)
under `py-spy record --subprocesses --format raw` (run.py's --profile), so
the parse workers are sampled too. Only busy samples count (py-spy leaves
out threads that wait), so shares are of CPU, not of wall time.

Each sample goes to the stage of the outermost stage package on its stack
(a publish that reads the store is publishing; a dedup lookup that queries
SQLite is dedup), with ingest split into fetch (HTTP) and parse, and a
parse-worker sample that is inside enrich/ or dedup/ counted there (topic
tagging and salient words are enrich, the MinHash fingerprint is dedup).
Samples under no stage package are start-up (imports), the command's own
code (app/, pipeline, config) or other (the interpreter, threads' plumbing).

Writes bench/results/profile-<feeds>x<entries>.json: samples per stage,
per process, and the hottest functions of each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

STAGE_PACKAGES = ("publish", "storage", "dedup", "enrich", "ingest")
FETCH_MODULES = ("http", "transport", "netguard", "remote", "wire_host", "tls", "concurrency", "source_status")
STAGES = ("fetch", "parse", "enrich", "dedup", "storage", "publish", "start-up (imports)",
          "command (app, pipeline, config)", "other")
FRAME = re.compile(r"^(?P<name>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
PROCESS = re.compile(r'process \d+:".*?"(?:;|$)')  # a command line may hold ";" (python -c "a; b")
# A busy-looking sample whose innermost Python frame is one of these is a thread waiting in C
# (a lock, a queue, a pipe, a socket): py-spy cannot always tell, so they are counted apart.
WAITS = {("wait", "threading.py"), ("_wait_for_tstate_lock", "threading.py"), ("join", "threading.py"),
         ("select", "selectors.py"), ("_worker", "concurrent/futures/thread.py"), ("get", "queue.py"),
         ("recv", "multiprocessing/connection.py"), ("_recv", "multiprocessing/connection.py"),
         ("_recv_bytes", "multiprocessing/connection.py"), ("poll", "multiprocessing/connection.py"),
         ("_poll", "multiprocessing/connection.py"), ("wait", "multiprocessing/connection.py"),
         ("readinto", "socket.py"), ("accept", "socket.py"), ("main", "multiprocessing/forkserver.py"),
         ("sleep", "time")}


def frame_path(frame: str) -> tuple[str, str]:
    """'parse (aggregator/ingest/feed.py:12)' -> ('parse', 'aggregator/ingest/feed.py')."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    return match.group("name"), match.group("path")


def stage_of(frames: list[tuple[str, str]]) -> str:
    """The stage a stack (root first) belongs to; see the module's docstring for the rules."""
    packages = [_package(path) for _, path in frames]
    outer = next((i for i, p in enumerate(packages) if p in STAGE_PACKAGES), None)
    if outer is None:
        if any("importlib" in path or name.startswith("_find_and_load") for name, path in frames):
            return "start-up (imports)"
        if any(p in ("app", "pipeline", "config", "aggregator") for p in packages):
            return "command (app, pipeline, config)"
        return "other"
    stage = packages[outer]
    if stage != "ingest":
        return stage
    deeper = [p for p in packages[outer:] if p in ("enrich", "dedup")]
    if deeper:
        return deeper[0]
    ingest_modules = {Path(path).stem for _, path in frames[outer:] if _package(path) == "ingest"}
    return "fetch" if ingest_modules <= set(FETCH_MODULES) else "parse"


def _package(path: str) -> str:
    """'aggregator/ingest/feed.py' -> 'ingest'; 'aggregator/pipeline.py' -> 'pipeline'; else ''."""
    if "aggregator/" not in path or "site-packages/" in path and "aggregator/" not in path.split("site-packages/")[0]:
        return ""
    parts = path.split("aggregator/", 1)[1].split("/")
    return parts[0].removesuffix(".py") if parts else ""


def parse_line(line: str) -> tuple[list[str], list[tuple[str, str]], int]:
    """One raw py-spy line -> (its process chain, outermost first; its frames, root first; its samples)."""
    stack, _, count = line.rpartition(" ")
    if not stack or not count.isdigit():
        return [], [], 0
    processes = []
    while (match := PROCESS.match(stack)):
        processes.append(match.group(0).rstrip(";"))
        stack = stack[match.end():]
    frames = [frame_path(p) for p in stack.split(";") if p and not p.startswith("thread ")]
    return processes, frames, int(count)


def waiting(frames: list[tuple[str, str]]) -> bool:
    name, path = frames[-1]
    method = name.rsplit(".", 1)[-1]  # py-spy names methods Class.method
    return any(method == wait_name and path.endswith(wait_path) for wait_name, wait_path in WAITS)


def classify(collapsed: str, top: int = 8) -> dict:
    """Samples per stage and per process, and each stage's hottest functions (self samples)."""
    per_stage: Counter[str] = Counter()
    per_process: Counter[str] = Counter()
    process_stage: dict[str, Counter[str]] = defaultdict(Counter)
    hot: dict[str, Counter[str]] = defaultdict(Counter)
    waits: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        processes, frames, n = parse_line(line)
        if not frames:
            continue
        name, path = frames[-1]
        if waiting(frames):
            waits[f"{name} ({_short(path)})"] += n
            continue
        stage = stage_of(frames)
        total += n
        per_stage[stage] += n
        kind = "parse workers (forkserver children)" if len(processes) > 1 else "the command's process"
        per_process[kind] += n
        process_stage[kind][stage] += n
        hot[stage][f"{name} ({_short(path)})"] += n
    return {
        "samples": total,
        "waiting_samples_left_out": sum(waits.values()),
        "waiting": [[name, n] for name, n in waits.most_common(top)],
        "stages": {s: {"samples": per_stage[s], "share": round(per_stage[s] / total, 4) if total else 0.0}
                   for s in STAGES},
        "processes": dict(per_process.most_common()),
        "process_stages": {kind: dict(stages.most_common()) for kind, stages in process_stage.items()},
        "hottest": {s: [[name, n] for name, n in hot[s].most_common(top)] for s in STAGES if hot[s]},
    }


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/aggregator/"):
        if marker in path:
            return ("aggregator/" if marker == "/aggregator/" else "") + path.split(marker, 1)[1]
    return path


def render(found: dict) -> str:
    result = found["profile"]
    lines = [f"Profile of one first ingest ({found['workload']['feeds']} feeds x {found['workload']['entries_per_feed']}"
             f" entries, {found['workload']['hosts']} hosts; py-spy {found['rate']} Hz, every thread and process, busy "
             f"samples only) at {found['commit']}, load average {found['load_at_start']:.2f} at start: "
             f"{result['samples']:,} samples, wall {found['seconds']:.1f} s under the profiler.",
             "", "| stage | share of CPU samples | hottest functions (self samples) |", "|---|---|---|"]
    for stage, figures in result["stages"].items():
        hottest = ", ".join(f"{name} {n}" for name, n in result["hottest"].get(stage, [])[:4])
        lines.append(f"| {stage} | {figures['share']:.1%} | {hottest} |")
    lines.append("\nBusy samples by process: " + "; ".join(
        f"{k} {v:,} ({', '.join(f'{stage} {n / v:.0%}' for stage, n in result.get('process_stages', {}).get(k, {}).items() if n / v >= 0.01)})"
        for k, v in result["processes"].items())
                 + f". Left out as waiting (a thread blocked in C on a lock, queue, pipe or socket): "
                 f"{result['waiting_samples_left_out']:,} samples.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100, help="samples per second per thread")
    parser.add_argument("--stacks", type=Path, help="classify this raw py-spy file instead of running")
    parser.add_argument("--work", type=Path, default=BENCH / ".work")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    import time

    from measure import byte_compile_aggregator, git_commit, machine, versions

    started, load = datetime.now(timezone.utc), os.getloadavg()[0]
    began = time.perf_counter()
    if args.stacks:
        raw = args.stacks
    else:
        import corpus as corpus_mod
        import run
        from server import HostedCorpus

        byte_compile_aggregator()
        run_corpus = corpus_mod.generate(args.feeds, args.entries, corpus_mod.DEFAULT_SEED)
        files = corpus_mod.write_corpus(run_corpus, run.fresh(args.work.resolve() / "corpus"))
        with HostedCorpus(files, args.hosts) as server:
            began = time.perf_counter()
            run.profile_aggregator(args.work.resolve(), [(f.title, server.url(f.path)) for f in run_corpus.feeds],
                                   None, rate=args.rate)
        raw = args.work.resolve() / "profile" / "stacks.txt"
    found = {
        "benchmark": "bench/profile_stages.py", "command": "bench/profile_stages.py " + " ".join(sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"), "seconds": round(time.perf_counter() - began, 1),
        "commit": git_commit(), "machine": machine(), "versions": versions(), "load_at_start": load,
        "load_at_end": os.getloadavg()[0], "rate": args.rate,
        "workload": {"feeds": args.feeds, "entries_per_feed": args.entries, "hosts": args.hosts},
        "profile": classify(raw.read_text("utf-8", "replace")),
    }
    path = args.results or BENCH / "results" / f"profile-{args.feeds}x{args.entries}.json"
    path.write_text(json.dumps(found, indent=1) + "\n", "utf-8")
    print(render(found))
    print(f"\nresults: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
