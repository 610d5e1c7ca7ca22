"""The daemon's steady state: CPU per cycle over unchanged feeds, resident memory, and connection reuse.

    .venv/bin/python bench/daemon_cycle.py [--feeds 200] [--entries 50] [--hosts 10] [--interval 30]
                                           [--cycles 4] [--results PATH]

run.py's corpus and config (the default settings, every feed a `url`
source, 8 topics), served by run.py's servers on --hosts loopback hosts,
with one change: each source runs every --interval seconds instead of every
15 minutes, so a few minutes show several cycles. `aggregator run`, the real
daemon, ingests everything at start; after that every fetch answers 304.

After the first ingest and its publish, one interval passes (a warm-up
cycle), then --cycles intervals are measured:

* CPU: user + system time of the daemon's process tree (its own, that of the
  children it reaped, and that of every live child) at the window's ends,
  from psutil; divided by the cycles;
* requests and new TCP connections the servers saw in the window: a client
  that keeps its connections opens none after the first cycle, as long as
  the servers keep idle connections open (these do: they never time out);
* resident memory of the daemon and of its tree, sampled every second.

The load average is recorded at the start and end of the window. Other
work on the machine moves CPU time less than wall time, but it moves it
too (two busy hyperthreads slow each other): compare runs made one after
the other, not figures from different hours.
With --idle SECONDS, every source keeps the default 15 minutes and the
window is that many seconds right after the first ingest, when nothing is
due: the daemon's idle CPU and its memory (issue 22: 5,000 sources idle
under 1% of a core and 400 MB). Writes
bench/results/daemon-cycle-<feeds>x<entries>.json (daemon-idle-... with --idle).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import corpus as corpus_mod  # noqa: E402  (bench/ is not a package)
from measure import AGGREGATOR, byte_compile_aggregator, fresh, git_commit, machine, versions  # noqa: E402
from run import aggregator_config  # noqa: E402
from server import HostedCorpus  # noqa: E402

from aggregator.config.model import REMOTE_INTERVAL  # noqa: E402


def daemon_config(folder: Path, feeds: list[tuple[str, str]], interval: float, port: int) -> Path:
    """run.py's config, each source every `interval` seconds, and a listen address for /healthz."""
    path = aggregator_config(folder, feeds)
    lines = []
    for line in path.read_text("utf-8").splitlines():
        lines.append(line)
        if line.startswith("url = "):
            lines.append(f'interval = "{interval:g}s"')
    lines += ["", "[server]", f'listen = "127.0.0.1:{port}"', ""]
    path.write_text("\n".join(lines), "utf-8")
    return path


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def tree_cpu(pid: int) -> float:
    """User + system seconds of the process, of the children it reaped, and of every live descendant."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue  # it ended meanwhile: its parent's children_* has it once reaped
    return total


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(the daemon's RSS, the sum over its tree), MB."""
    import psutil

    root = psutil.Process(pid)
    sizes = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            sizes.append(proc.memory_info().rss / 2**20)
        except psutil.Error:
            continue
    return (sizes[0] if sizes else 0.0), sum(sizes)


def profile_cycle(pid: int, interval: float, folder: Path) -> dict:
    """One interval of the running daemon under py-spy (every thread and child), sorted by stage and function.

    It comes after the measured window: py-spy pauses the process for each sample.
    """
    from profile_stages import classify, parse_line, waiting

    spy = Path(sys.executable).with_name("py-spy")
    raw = folder / "cycle-stacks.txt"
    subprocess.run([str(spy), "record", "--pid", str(pid), "--duration", str(int(interval)), "--rate", "250",
                    "--subprocesses", "--format", "raw", "--output", str(raw)], capture_output=True, check=False)
    if not raw.exists():
        return {"error": "py-spy wrote nothing"}
    found = classify(raw.read_text("utf-8", "replace"), top=12)
    own = Counter()
    for line in raw.read_text("utf-8", "replace").splitlines():
        _, frames, n = parse_line(line)
        if frames and not waiting(frames):
            for name, path in {(name, path) for name, path in frames if "aggregator/" in path}:
                own[f"{name} ({path.split('aggregator/', 1)[1]})"] += n
    found["ours_inclusive"] = [[name, n] for name, n in own.most_common(20)]
    return found


def wait_for_ingest(port: int, daemon: subprocess.Popen, feeds: int, timeout: float) -> dict:
    """Health once every source has been fetched, the article count holds still and a publish ran."""
    deadline, last, steady = time.monotonic() + timeout, None, 0
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with {daemon.returncode}")
        found = health(port)
        if found and found.get("sources") and all(s["last_fetch"] for s in found["sources"]) \
                and len(found["sources"]) == feeds and found.get("publishes"):
            steady = steady + 1 if found["articles"] == last else 0
            last = found["articles"]
            if steady >= 3:
                return found
        time.sleep(1)
    raise SystemExit("the first ingest did not finish in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between a source's fetches")
    parser.add_argument("--cycles", type=int, default=4, help="intervals measured after the warm-up one")
    parser.add_argument("--idle", type=float, metavar="SECONDS",
                        help="instead of cycles: every source at the default 15 minutes, and a window of this "
                             "many seconds after the first ingest, when nothing is due (idle CPU and memory)")
    parser.add_argument("--profile", action="store_true",
                        help="after the measured window, one more cycle under py-spy: where a cycle's CPU goes")
    parser.add_argument("--work", type=Path, default=BENCH / ".work" / "daemon-cycle")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    started = datetime.now(timezone.utc)
    byte_compile_aggregator()
    folder = fresh(args.work.resolve())
    corpus = corpus_mod.generate(args.feeds, args.entries, corpus_mod.DEFAULT_SEED)
    files = corpus_mod.write_corpus(corpus, folder / "corpus")
    from stages import free_port

    port = free_port()
    with HostedCorpus(files, args.hosts) as server:
        if args.idle:
            args.interval, args.cycles = REMOTE_INTERVAL, 0
        config = daemon_config(folder, [(f.title, server.url(f.path)) for f in corpus.feeds], args.interval, port)
        with open(folder / "daemon.log", "wb") as log:
            daemon = subprocess.Popen([AGGREGATOR, "-c", str(config), "run"], cwd=folder, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            ingest_started = time.monotonic()
            after_ingest = wait_for_ingest(port, daemon, args.feeds, timeout=1800)
            ingest_s = time.monotonic() - ingest_started
            rss_after_ingest = tree_rss_mb(daemon.pid)
            first_requests, first_connections = dict(server.take_counts()), server.take_connections()
            if not args.idle:
                time.sleep(args.interval)  # the warm-up cycle: every feed once more, all 304
            warm_requests, warm_connections = dict(server.take_counts()), server.take_connections()
            load_start, cpu_start, window_start = os.getloadavg()[0], tree_cpu(daemon.pid), time.monotonic()
            samples = []
            while time.monotonic() - window_start < (args.idle or args.cycles * args.interval):
                time.sleep(1)
                samples.append(tree_rss_mb(daemon.pid))
            cpu = tree_cpu(daemon.pid) - cpu_start
            window = time.monotonic() - window_start
            load_end = os.getloadavg()[0]
            requests, connections = dict(server.take_counts()), server.take_connections()
            final = health(port)
            profile = profile_cycle(daemon.pid, args.interval, folder) if args.profile else None
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    found = {
        "benchmark": "bench/daemon_cycle.py", "command": "bench/daemon_cycle.py " + " ".join(sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"), "commit": git_commit(), "machine": machine(),
        "versions": versions(),
        "workload": {"feeds": args.feeds, "entries_per_feed": args.entries, "hosts": args.hosts,
                     "interval_s": args.interval, "cycles": args.cycles, "topics": 8},
        "ingest_s": round(ingest_s, 1), "articles": after_ingest["articles"],
        "first_ingest_requests": first_requests, "first_ingest_connections": first_connections,
        "warmup_requests": warm_requests, "warmup_connections": warm_connections,
        "window_s": round(window, 1), "load_at_window_start": load_start, "load_at_window_end": load_end,
        "idle": bool(args.idle),
        "cpu_s": round(cpu, 3), "cpu_s_per_cycle": round(cpu / args.cycles, 3) if args.cycles else None,
        "cpu_share_of_one_core": round(cpu / window, 4),
        "requests": requests, "requests_per_cycle": sum(requests.values()) / args.cycles if args.cycles else None,
        "new_connections": connections,
        "new_connections_per_cycle": connections / args.cycles if args.cycles else None,
        "rss_after_ingest_mb": round(rss_after_ingest[0], 1), "tree_rss_after_ingest_mb": round(rss_after_ingest[1], 1),
        "rss_max_mb": round(max(s[0] for s in samples), 1), "rss_end_mb": round(samples[-1][0], 1),
        "tree_rss_max_mb": round(max(s[1] for s in samples), 1),
        "articles_at_end": (final or {}).get("articles"), "publishes_at_end": (final or {}).get("publishes"),
        "profile": profile,
    }
    kind = "daemon-idle" if args.idle else "daemon-cycle"
    path = args.results or BENCH / "results" / f"{kind}-{args.feeds}x{args.entries}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found, indent=1) + "\n", "utf-8")
    print(render(found))
    print(f"results: {path}", file=sys.stderr)


def render(found: dict) -> str:
    if found.get("idle"):
        return render_idle(found)
    load = found["workload"]
    requests = ", ".join(f"{n}x {status}" for status, n in sorted(found["requests"].items()))
    return "\n".join([
        f"`aggregator run` (the daemon) on {load['feeds']} feeds x {load['entries_per_feed']} entries from "
        f"{load['hosts']} loopback hosts, default config but every source every {load['interval_s']:g} s; "
        f"{load['cycles']} cycles measured after the first ingest ({found['articles']:,} articles in "
        f"{found['ingest_s']:.0f} s) and one warm-up cycle. Run {found['date']} at {found['commit']}, load average "
        f"{found['load_at_window_start']:.2f} / {found['load_at_window_end']:.2f} at the window's start / end.",
        "",
        "| measure | daemon | target |",
        "|---|---|---|",
        f"| CPU per cycle over {load['feeds']} unchanged feeds, s (process tree) | {found['cpu_s_per_cycle']:.3f} "
        f"| <= 0.3 |",
        f"| CPU share of one core over the window | {found['cpu_share_of_one_core']:.2%} |  |",
        f"| requests in the window | {requests} | all 304 |",
        f"| new TCP connections per cycle (first ingest; warm-up cycle) | {found['new_connections_per_cycle']:g} "
        f"({found['first_ingest_connections']}; {found['warmup_connections']}) | 0: reused |",
        f"| resident memory of the daemon after the first ingest / peak / end of window, MB | "
        f"{found['rss_after_ingest_mb']:.0f} / {found['rss_max_mb']:.0f} / {found['rss_end_mb']:.0f} |  |",
        f"| resident memory of the process tree, after the first ingest / peak, MB | "
        f"{found['tree_rss_after_ingest_mb']:.0f} / {found['tree_rss_max_mb']:.0f} |  |",
    ] + _profile_lines(found.get("profile")))


def render_idle(found: dict) -> str:
    load = found["workload"]
    return "\n".join([
        f"`aggregator run` (the daemon) on {load['feeds']:,} feeds x {load['entries_per_feed']} entries from "
        f"{load['hosts']} loopback hosts, default config (every source every {load['interval_s']:g} s); "
        f"{found['window_s']:.0f} s measured after the first ingest ({found['articles']:,} articles in "
        f"{found['ingest_s']:.0f} s), while nothing is due. Run {found['date']} at {found['commit']}, load "
        f"average {found['load_at_window_start']:.2f} / {found['load_at_window_end']:.2f} at the window's start / end.",
        "",
        "| measure | daemon | target |",
        "|---|---|---|",
        f"| CPU share of one core while idle (process tree) | {found['cpu_share_of_one_core']:.2%} | < 1% |",
        f"| requests in the window | {sum(found['requests'].values())} |  |",
        f"| resident memory of the daemon after the first ingest / peak / end of window, MB | "
        f"{found['rss_after_ingest_mb']:.0f} / {found['rss_max_mb']:.0f} / {found['rss_end_mb']:.0f} | < 400 |",
        f"| resident memory of the process tree, after the first ingest / peak, MB | "
        f"{found['tree_rss_after_ingest_mb']:.0f} / {found['tree_rss_max_mb']:.0f} |  |",
    ])


def _profile_lines(profile: dict | None) -> list[str]:
    if not profile or "samples" not in profile:
        return []
    stages = "; ".join(f"{stage} {figures['share']:.0%}" for stage, figures in profile["stages"].items()
                       if figures["samples"])
    ours = "; ".join(f"{name} {n}" for name, n in profile["ours_inclusive"][:10])
    return ["", f"One more cycle under py-spy (250 Hz, busy samples only, {profile['samples']:,} samples): {stages}. "
            f"Our functions by inclusive samples: {ours}."]


if __name__ == "__main__":
    main()
