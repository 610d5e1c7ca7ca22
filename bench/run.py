"""The side-by-side benchmark: `reader` against `aggregator run --once`, the transport floor and the parse floor.

    .venv/bin/python bench/run.py --feeds 200 --entries 50 [--hosts 10] [--rounds 2] [--latency-ms 0]
                                  [--profile] [--skip reader|aggregator|transport|floor] [--results PATH]

One corpus (bench/corpus.py) spread over --hosts loopback hosts (127.0.0.1
to 127.0.0.N, one bench/server.py server each, in threads of this process),
and each contender run as a whole command in a subprocess, the way a user
runs it:

* reader: a small script that opens a reader database, adds the feeds and
  calls update_feeds(workers=4, scheduled=False);
* aggregator: `aggregator -c <generated config> -q run --once` (ingest,
  dedup, tagging, storage and publishing) with the default settings, every
  feed a `url` source (loopback needs `allow_private_network`).

A round gives each side a fresh database: the first full ingest, then
REFRESH_RUNS unchanged refreshes (all 304). Rounds alternate which side goes
first, so a machine that slows down during the run slows both; figures are
medians over rounds. Each round ends with the transport floor (bench/transport.py).
The parse floor (bench/floor.py) runs once, in this process, at the end.

Writes every measure, the machine and the workload to bench/results/run-<feeds>x<entries>.json
(or --results) and prints the table that bench/report.py puts in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod  # noqa: E402  (bench/ is not a package)
from floor import floor  # noqa: E402
from measure import (AGGREGATOR, PYTHON, Run, byte_compile_aggregator, count_rows, db_files,  # noqa: E402
                     files_digest, fresh, git_commit, machine, median_run, run_command, startup_seconds,
                     versions)
from report import render  # noqa: E402
from server import HostedCorpus  # noqa: E402
from transport import Transport, measure_transport  # noqa: E402

BENCH = Path(__file__).resolve().parent
REFRESH_RUNS = 3

READER_SCRIPT = """\
import sys
from reader import make_reader

db, urls = sys.argv[1], sys.argv[2]
reader = make_reader(db)
for url in open(urls).read().split():
    reader.add_feed(url, exist_ok=True)
reader.update_feeds(workers=4, scheduled=False)
reader.close()
"""


@dataclass
class Round:
    """One side's fresh database in one round: the first ingest and the unchanged refreshes after it."""

    first: Run
    refreshes: list[Run]
    refresh_wrote_db: bool
    stored: int | None
    clusters: int | None = None


@dataclass
class Side:
    name: str
    rounds: list[Round] = field(default_factory=list)
    startup: float | None = None  # best of 3: `import reader` / `aggregator --help`
    note: str = ""


# --- the contenders ---


def reader_round(side: Side, folder: Path, urls: list[str], server: HostedCorpus) -> None:
    script, urls_file, db = folder / "update.py", folder / "urls.txt", folder / "reader.sqlite"
    script.write_text(READER_SCRIPT)
    urls_file.write_text("\n".join(urls) + "\n")
    cmd = [PYTHON, str(script), str(db), str(urls_file)]
    if side.startup is None:
        side.startup = startup_seconds([PYTHON, "-c", "import reader"])
    first = run_command(cmd, folder / "first.log", server)
    refreshes, wrote = refresh_runs(cmd, folder, db, server)
    side.rounds.append(Round(first, refreshes, wrote, count_rows(db, "SELECT COUNT(*) FROM entries")))


def aggregator_round(side: Side, folder: Path, feeds: list[tuple[str, str]], server: HostedCorpus,
                     per_host: int | None) -> None:
    config = aggregator_config(folder, feeds, per_host=per_host)
    db = folder / "aggregator.db"
    cmd = [AGGREGATOR, "-c", str(config), "-q", "run", "--once"]
    if side.startup is None:
        side.startup = startup_seconds([AGGREGATOR, "--help"])
    first = run_command(cmd, folder / "first.log", server)
    if first.returncode != 0:
        side.note = f"exit {first.returncode}: {first.stderr_tail.splitlines()[-1:]}"
    refreshes, wrote = refresh_runs(cmd, folder, db, server)
    side.rounds.append(Round(first, refreshes, wrote, count_rows(db, "SELECT COUNT(*) FROM articles"),
                             count_rows(db, "SELECT COUNT(DISTINCT cluster_id) FROM articles")))


def refresh_runs(cmd: list[str], folder: Path, db: Path, server: HostedCorpus) -> tuple[list[Run], bool]:
    """REFRESH_RUNS unchanged refreshes, and whether any of them changed the database files."""
    before = files_digest(*db_files(db))
    runs = [run_command(cmd, folder / f"refresh-{n}.log", server) for n in range(1, REFRESH_RUNS + 1)]
    return runs, files_digest(*db_files(db)) != before


def aggregator_config(folder: Path, urls: list[tuple[str, str]], topics: int = 8, per_host: int | None = None) -> Path:
    """A config with every corpus feed as a `url` source and topics from the corpus vocabulary.

    Fetch settings stay at their defaults but for loopback, which the default refuses;
    per_host is set only when asked (one host: 4 matches reader's workers=4 toward it).
    """
    lines = [
        "[site]", 'title = "Bench digest"', 'base_url = "http://127.0.0.1:8080/"', "",
        "[storage]", 'database = "aggregator.db"', 'feeds_dir = "feeds"', "",
        "[fetch]", "allow_private_network = true", *([f"per_host = {per_host}"] if per_host else []), "",
    ]
    for name, url in urls:
        lines += ["[[sources]]", f"name = {json.dumps(name)}", f"url = {json.dumps(url)}", ""]
    lines += topics_toml(topics)
    path = folder / "config.toml"
    path.write_text("\n".join(lines), "utf-8")
    return path


def topics_toml(count: int) -> list[str]:
    """The corpus' 8 subject topics, then one topic per place (local news pages), up to count."""
    lines = []
    for slug, title, keywords, categories in corpus_mod.topic_specs(count):
        lines += [f"[topics.{slug}]", f"title = {json.dumps(title)}",
                  f"keywords = {json.dumps(keywords, ensure_ascii=False)}",
                  f"categories = {json.dumps(categories, ensure_ascii=False)}", ""]
    return lines


def profile_aggregator(work: Path, feeds: list[tuple[str, str]], per_host: int | None, top: int = 25,
                       rate: int = 250) -> str:
    """py-spy over a first ingest on a fresh database, every thread and subprocess: the hot functions.

    py-spy rather than pyinstrument because fetching and parsing run on worker
    threads, which pyinstrument does not sample. Idle (waiting) samples are left out.
    """
    spy = Path(PYTHON).with_name("py-spy")
    if not spy.exists():
        return "py-spy is not installed: pip install -e '.[bench]'"
    folder = fresh(work / "profile")
    config = aggregator_config(folder, feeds, per_host=per_host)
    raw = folder / "stacks.txt"
    done = subprocess.run([str(spy), "record", "--rate", str(rate), "--subprocesses", "--format", "raw",
                           "--output", str(raw), "--", AGGREGATOR, "-c", str(config), "-q", "run", "--once"],
                          capture_output=True, text=True, check=False, cwd=folder)
    if not raw.exists():
        return f"py-spy failed: {done.stderr.strip()[-300:]}"
    summary = summarize_stacks(raw.read_text("utf-8", "replace"), top)
    (folder / "summary.txt").write_text(summary)
    return summary


def summarize_stacks(collapsed: str, top: int) -> str:
    """Collapsed stacks ("a (file:1);b (file:2) 7") -> top functions by self and by total samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if frames:
            own[frames[-1]] += n
        for name in set(frames):
            total[name] += n
    if not samples:
        return "no samples"
    lines = [f"{samples} samples (busy threads only)", "", "self %   function (file)"]
    lines += [f"{100 * n / samples:5.1f}   {name}" for name, n in own.most_common(top)]
    lines += ["", "total %  function (file), our code only"]
    ours = [(name, n) for name, n in total.most_common() if "aggregator/" in name]
    lines += [f"{100 * n / samples:5.1f}   {name}" for name, n in ours[:top]]
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """'fold (aggregator/enrich/normalize.py:151)' -> 'fold (aggregator/enrich/normalize.py)': per function, not line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# --- the results file ---


def side_summary(side: Side) -> dict:
    """Medians over rounds for times, the largest figure over rounds for memory."""
    if not side.rounds:
        return {"note": side.note or "skipped"}
    firsts = [r.first for r in side.rounds]
    refreshes = [run for r in side.rounds for run in r.refreshes]
    last = side.rounds[-1]
    return {
        "first_s": statistics.median(r.seconds for r in firsts),
        "first_s_every_round": [r.seconds for r in firsts],
        "first_cpu_s": statistics.median(r.tree_cpu_s for r in firsts),
        "first_cpu_s_every_round": [r.tree_cpu_s for r in firsts],
        "first_wait4_cpu_s_every_round": [r.cpu_s for r in firsts],
        "first_load_every_round": [r.load for r in firsts],
        "refresh_s": statistics.median(r.seconds for r in refreshes),
        "refresh_s_every_run": [r.seconds for r in refreshes],
        "refresh_cpu_s": statistics.median(r.tree_cpu_s for r in refreshes),
        "refresh_cpu_s_every_run": [r.tree_cpu_s for r in refreshes],
        "refresh_load_every_run": [r.load for r in refreshes],
        "startup_s": side.startup,
        "first_largest_rss_mb": max(r.largest_rss_mb for r in firsts),
        "first_max_rss_mb": max(r.max_rss_mb for r in firsts),
        "first_tree_rss_mb": max(r.tree_rss_mb for r in firsts),
        "refresh_max_rss_mb": max(r.max_rss_mb for r in refreshes),
        "refresh_tree_rss_mb": max(r.tree_rss_mb for r in refreshes),
        "first_responses": median_run(firsts).responses,
        "refresh_responses": dict(sum((Counter(r.responses) for r in refreshes), Counter())),
        "refresh_wrote_db": any(r.refresh_wrote_db for r in side.rounds),
        "exit_codes": sorted({run.returncode for r in side.rounds for run in (r.first, *r.refreshes)}),
        "stored": last.stored,
        "clusters": last.clusters,
        "note": side.note,
    }


def transport_summary(transport: Transport) -> dict:
    return {
        "refresh_s": statistics.median(r.seconds for r in transport.runs),
        "refresh_s_every_run": [r.seconds for r in transport.runs],
        "refresh_cpu_s": statistics.median(r.tree_cpu_s for r in transport.runs),
        "refresh_responses": dict(sum((Counter(r.responses) for r in transport.runs), Counter())),
        "exit_codes": sorted({r.returncode for r in transport.runs}),
        "largest_rss_mb": max(r.largest_rss_mb for r in transport.runs),
    }


def results(args: argparse.Namespace, corpus_bytes: int, entries: int, sides: dict[str, Side],
            transports: dict[str, Transport], floors: list, profile: str) -> dict:
    return {
        "benchmark": "bench/run.py",
        "command": "bench/run.py " + " ".join(sys.argv[1:]),
        "date": args.started.isoformat(timespec="seconds"),
        "seconds": round(time.time() - args.started.timestamp(), 1),
        "commit": git_commit(),
        "machine": machine(),
        "load_at_start": args.load,
        "load_at_end": os.getloadavg()[0],
        "versions": versions(),
        "workload": {
            "feeds": args.feeds, "entries_per_feed": args.entries, "entries": entries,
            "corpus_mb": round(corpus_bytes / 1e6, 1), "near_copy_share": corpus_mod.NEAR_SHARE,
            "exact_repeat_share": corpus_mod.EXACT_SHARE, "seed": args.seed, "hosts": args.hosts,
            "rounds": args.rounds, "refreshes_per_round": REFRESH_RUNS, "latency_ms": args.latency_ms,
            "reader": "update_feeds(workers=4, scheduled=False)",
            "aggregator": "run --once, default config" + (" (per_host = 4)" if args.hosts == 1 else "")
                          + ", allow_private_network = true, 8 topics",
            "transport_threads": 4,
        },
        "reader": side_summary(sides["reader"]),
        "aggregator": side_summary(sides["aggregator"]),
        "transport": {client: transport_summary(t) for client, t in transports.items()},
        "floor": [{**asdict(f), "us_per_entry": f.us_per_entry} for f in floors],
        "rounds": {name: [asdict(r) for r in side.rounds] for name, side in sides.items()},
        "profile": profile,
    }


# --- the whole benchmark ---


def main() -> None:
    parser = argparse.ArgumentParser(description="reader vs aggregator on one local corpus, and the floors.")
    parser.add_argument("--feeds", type=int, default=200, help="2000 for the scale mode")
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10, help="loopback hosts the feeds are spread over (1-254)")
    parser.add_argument("--rounds", type=int, default=2, help="fresh databases per side, alternating who goes first")
    parser.add_argument("--seed", type=int, default=corpus_mod.DEFAULT_SEED)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="server delay before every response")
    parser.add_argument("--work", type=Path, default=BENCH / ".work", help="corpus, databases, logs")
    parser.add_argument("--results", type=Path, help="default: bench/results/run-<feeds>x<entries>.json")
    parser.add_argument("--skip", action="append", default=[], choices=["reader", "aggregator", "transport", "floor"])
    parser.add_argument("--profile", action="store_true", help="also profile `aggregator run --once` (py-spy)")
    args = parser.parse_args()
    if args.rounds < 1 or not 1 <= args.hosts <= 254:
        parser.error("--rounds must be at least 1 and --hosts 1-254")

    args.started = datetime.now(timezone.utc)
    args.load = os.getloadavg()[0]  # other work on the machine skews every figure; say how much
    byte_compile_aggregator()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = corpus_mod.generate(args.feeds, args.entries, args.seed)
    files = corpus_mod.write_corpus(corpus, fresh(work / "corpus"))
    per_host = 4 if args.hosts == 1 else None
    sides = {"reader": Side("reader"), "aggregator": Side("aggregator")}
    transports: dict[str, Transport] = {}
    try:
        import reader  # noqa: F401
    except ImportError:
        args.skip.append("reader")
        sides["reader"].note = "reader is not installed: pip install -e '.[bench]'"
    with HostedCorpus(files, args.hosts, args.latency_ms / 1000) as server:
        feeds = [(f.title, server.url(f.path)) for f in corpus.feeds]
        for n in range(1, args.rounds + 1):
            order = ["reader", "aggregator"] if n % 2 else ["aggregator", "reader"]
            for name in order:
                if name in args.skip:
                    continue
                folder = fresh(work / f"round-{n}" / name)
                print(f"round {n}: {name}", file=sys.stderr, flush=True)
                if name == "reader":
                    reader_round(sides[name], folder, [u for _, u in feeds], server)
                else:
                    aggregator_round(sides[name], folder, feeds, server, per_host)
            if "transport" not in args.skip:
                measure_transport(work / f"round-{n}" / "transport", server.validators(), server, REFRESH_RUNS,
                                  transports)
        profile = profile_aggregator(work, feeds, per_host) if args.profile else ""
    floors = [] if "floor" in args.skip else floor(corpus, files, work)
    found = results(args, sum(len(data) for data in files.values()), len(corpus.entries()), sides, transports,
                    floors, profile)
    path = args.results or BENCH / "results" / f"run-{args.feeds}x{args.entries}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found, indent=1, default=str) + "\n", "utf-8")
    print(render(found))
    if profile:
        print("\nProfile of `aggregator run --once` (first ingest; py-spy, all threads):\n")
        print(profile)
    print(f"\nresults: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
