"""The scale curve: first ingest at 200, 500, 1,000 and 2,000 feeds, against the 200-feed run.

    .venv/bin/python bench/curve.py [--sizes 200,500,1000,2000] [--entries 50] [--hosts 10] [--rounds 2]
    .venv/bin/python bench/curve.py --print [RESULTS]      # the table of a results file

Each point is bench/run.py's aggregator side alone, as a whole command on a
fresh database (`run.py --feeds N --skip reader --skip transport --skip floor
--rounds 1`: the first ingest, then 3 unchanged refreshes). Rounds go up the
sizes and back down (200 ... 2,000, 2,000 ... 200), so a machine that slows
down during the curve slows both ends alike. Per size: the median wall and
CPU time of the first ingest (CPU summed over the process tree, the parse
workers included), the load average when each started, peak memory, the
refresh, and growth against the smallest size; the issue's bound is
2,000 feeds in at most 11x the time of 200 (linear, with 10% slack).

Writes bench/results/curve-<entries>.json; each point's own run.py results
stay in bench/.work/curve/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from measure import PYTHON, git_commit, machine, versions  # noqa: E402

LINEAR_SLACK = 1.1  # the bound: N times the feeds in at most 1.1 N times the time


def point(size: int, entries: int, hosts: int, round_number: int, work: Path) -> dict:
    """One run.py run of the aggregator side at `size` feeds; its results file, read back."""
    results = work / f"run-{size}x{entries}-{round_number}.json"
    command = [PYTHON, str(BENCH / "run.py"), "--feeds", str(size), "--entries", str(entries), "--hosts", str(hosts),
               "--rounds", "1", "--skip", "reader", "--skip", "transport", "--skip", "floor",
               "--work", str(work / f"work-{size}"), "--results", str(results)]
    print(f"{size} feeds, round {round_number} (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(results.read_text("utf-8"))


def summary(size: int, runs: list[dict]) -> dict:
    sides = [run["aggregator"] for run in runs]
    return {
        "feeds": size, "entries": runs[0]["workload"]["entries"], "corpus_mb": runs[0]["workload"]["corpus_mb"],
        "first_s": statistics.median(s["first_s"] for s in sides),
        "first_s_every_round": [s["first_s"] for s in sides],
        "first_cpu_s": statistics.median(s["first_cpu_s"] for s in sides),
        "first_cpu_s_every_round": [s["first_cpu_s"] for s in sides],
        "load_every_round": [s["first_load_every_round"][0] for s in sides],
        "refresh_s": statistics.median(s["refresh_s"] for s in sides),
        "refresh_cpu_s": statistics.median(s["refresh_cpu_s"] for s in sides),
        "largest_rss_mb": max(s["first_largest_rss_mb"] for s in sides),
        "tree_rss_mb": max(s["first_tree_rss_mb"] for s in sides),
        "stored": sides[-1]["stored"], "clusters": sides[-1]["clusters"],
        "exit_codes": sorted({code for s in sides for code in s["exit_codes"]}),
        "notes": [s["note"] for s in sides if s.get("note")],
    }


def render(found: dict) -> str:
    points = found["points"]
    base = points[0]
    lines = [
        f"First ingest against size ({found['workload']['entries_per_feed']} entries per feed, "
        f"{found['workload']['hosts']} loopback hosts, default config, 8 topics): `aggregator run --once` on a fresh "
        f"database, {found['workload']['rounds']} rounds up and down the sizes, medians.  ",
        f"Run {found['date']} at {found['commit']} ({found['seconds']:.0f} s), load average "
        f"{found['load_at_start']:.2f} at start, {found['load_at_end']:.2f} at end. Machine: {found['machine']}.",
        "",
        f"| feeds | entries | MB | first ingest, s (every round) | CPU, s, process tree (every round) "
        f"| load at each start | x {base['feeds']} feeds, wall / CPU | linear bound | refresh, s | "
        f"largest process / tree, MB | stored / clusters |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        scale = p["feeds"] / base["feeds"]
        lines.append(
            f"| {p['feeds']:,} | {p['entries']:,} | {p['corpus_mb']} | {p['first_s']:.1f} "
            f"({' / '.join(f'{s:.1f}' for s in p['first_s_every_round'])}) | {p['first_cpu_s']:.1f} "
            f"({' / '.join(f'{s:.1f}' for s in p['first_cpu_s_every_round'])}) | "
            f"{' / '.join(f'{v:.2f}' for v in p['load_every_round'])} | {p['first_s'] / base['first_s']:.2f}x / "
            f"{p['first_cpu_s'] / base['first_cpu_s']:.2f}x | <= {scale * LINEAR_SLACK:.1f}x | {p['refresh_s']:.2f} | "
            f"{p['largest_rss_mb']:.0f} / {p['tree_rss_mb']:.0f} | {p['stored']} / {p['clusters']} |")
    for p in points:
        if p["exit_codes"] != [0] or p["notes"]:
            lines.append(f"\nNote ({p['feeds']} feeds): exit statuses {p['exit_codes']} {p['notes']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", help="with --print: the file to render")
    parser.add_argument("--sizes", default="200,500,1000,2000", help="feed counts, comma-separated, smallest first")
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="up the sizes, then down, and so on")
    parser.add_argument("--work", type=Path, default=BENCH / ".work" / "curve")
    parser.add_argument("--print", action="store_true", help="only render a results file")
    args = parser.parse_args()
    default = BENCH / "results" / f"curve-{args.entries}.json"
    if args.print:
        print(render(json.loads((args.results or default).read_text("utf-8"))))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    started, load = datetime.now(timezone.utc), os.getloadavg()[0]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[int, list[dict]] = {size: [] for size in sizes}
    for n in range(1, args.rounds + 1):
        for size in (sizes if n % 2 else sizes[::-1]):
            runs[size].append(point(size, args.entries, args.hosts, n, work))
    found = {
        "benchmark": "bench/curve.py", "command": "bench/curve.py " + " ".join(sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"), "seconds": round(time.time() - started.timestamp(), 1),
        "commit": git_commit(), "machine": machine(), "versions": versions(),
        "load_at_start": load, "load_at_end": os.getloadavg()[0],
        "workload": {"entries_per_feed": args.entries, "hosts": args.hosts, "rounds": args.rounds, "sizes": sizes},
        "linear_slack": LINEAR_SLACK,
        "points": [summary(size, runs[size]) for size in sizes],
    }
    base, top = found["points"][0], found["points"][-1]
    bound = top["feeds"] / base["feeds"] * LINEAR_SLACK
    found["largest_vs_smallest"] = {"wall": top["first_s"] / base["first_s"], "cpu": top["first_cpu_s"] / base["first_cpu_s"],
                                    "bound": bound, "wall_within": top["first_s"] / base["first_s"] <= bound,
                                    "cpu_within": top["first_cpu_s"] / base["first_cpu_s"] <= bound}
    path = default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found, indent=1) + "\n", "utf-8")
    print(render(found))
    print(f"\nresults: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
