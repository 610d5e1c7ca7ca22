"""Render bench results files as Markdown, and keep bench/README.md's result tables in step with them.

    .venv/bin/python bench/report.py                      # every README table from its bench/results/ file
    .venv/bin/python bench/report.py RESULTS --print      # any results file, to stdout
    .venv/bin/python bench/report.py --check              # exit 1 if a README table is not its file's

Each table sits between a pair of markers (`<!-- NAME: begin ... -->`,
`<!-- NAME: end -->`, one pair per entry of BLOCKS); everything else in the
README is written by hand. A table typed in by hand drifts from the run it
came from, so the only way in is this generator. Each results file names the
script that wrote it ("benchmark"), and that script renders it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_RESULTS = BENCH / "results" / "run-200x50.json"
README = BENCH / "README.md"
# README block -> the results file it shows
BLOCKS = {
    "results": DEFAULT_RESULTS,
    "curve": BENCH / "results" / "curve-50.json",
    "publish": BENCH / "results" / "publish-200x50.json",
    "daemon": BENCH / "results" / "daemon-cycle-200x50.json",
    "profile": BENCH / "results" / "profile-200x50.json",
}
# results file's "benchmark" -> the bench/ module whose render() draws it (run.py's is below)
RENDERERS = {"bench/curve.py": "curve", "bench/publish_step.py": "publish_step",
             "bench/daemon_cycle.py": "daemon_cycle", "bench/profile_stages.py": "profile_stages"}


def begin(name: str) -> str:
    return f"<!-- {name}: begin (bench/report.py writes this part from a results file; not edited by hand) -->"


def end(name: str) -> str:
    return f"<!-- {name}: end -->"


def render_any(found: dict) -> str:
    """A results file as Markdown, drawn by the script that wrote it."""
    module = RENDERERS.get(found.get("benchmark", "bench/run.py"))
    if module is None:
        return render(found)
    import importlib

    sys.path.insert(0, str(BENCH))
    return importlib.import_module(module).render(found)


def render(found: dict) -> str:
    """The workload and machine in a few lines, one table, and the parse floor in one line."""
    load = found["workload"]
    reader, ours, bare = found["reader"], found["aggregator"], found.get("transport", {})
    urllib3, client = bare.get("urllib3", {}), bare.get("http.client", {})
    refreshes = load["rounds"] * load["refreshes_per_round"]
    lines = [
        f"{load['feeds']} feeds x {load['entries_per_feed']} entries = {load['entries']:,} entries "
        f"({load['corpus_mb']} MB, {load['near_copy_share']:.0%} near-copies, {load['exact_repeat_share']:.0%} "
        f"exact repeats) on {load['hosts']} loopback host{'s' if load['hosts'] > 1 else ''}, "
        f"{load['latency_ms']:g} ms latency; {load['rounds']} rounds, {load['refreshes_per_round']} unchanged "
        f"refreshes per side per round. reader: {load['reader']}; aggregator: {load['aggregator']}.  ",
        f"Run {found['date']} at {found['commit']} (`{found['command']}`, {found['seconds']:.0f} s), "
        f"load average {found['load_at_start']:.2f} at start"
        + (f", {found['load_at_end']:.2f} at end" if "load_at_end" in found else "") + ".  ",
        f"Machine: {found['machine']}.  ",
        f"Versions: {found['versions']}.",
        "",
        "| measure | reader | aggregator | bare urllib3 | bare http.client | reader / aggregator | target |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        (f"first ingest, s (median of {load['rounds']})", _s(reader, "first_s"), _s(ours, "first_s"), "", "",
         _ratio(reader, ours, "first_s"), ">= 5x"),
        ("first ingest, every round, s", _each(reader, "first_s_every_round"), _each(ours, "first_s_every_round"),
         "", "", "", ""),
        ("first ingest, CPU s, process tree (median; every round)", _cpu(reader, "first"), _cpu(ours, "first"),
         "", "", _ratio(reader, ours, "first_cpu_s"), ""),
        ("load average at the start of each first ingest", _each(reader, "first_load_every_round"),
         _each(ours, "first_load_every_round"), "", "", "", ""),
        (f"unchanged refresh, s (median of {refreshes})", _s(reader, "refresh_s"), _s(ours, "refresh_s"),
         _s(urllib3, "refresh_s"), _s(client, "refresh_s"), _ratio(reader, ours, "refresh_s"), ">= 5x"),
        ("every refresh, s, in order", _each(reader, "refresh_s_every_run"), _each(ours, "refresh_s_every_run"),
         _each(urllib3, "refresh_s_every_run"), _each(client, "refresh_s_every_run"), "", ""),
        ("unchanged refresh, CPU s, process tree (median)", _s(reader, "refresh_cpu_s"), _s(ours, "refresh_cpu_s"),
         _s(urllib3, "refresh_cpu_s"), _s(client, "refresh_cpu_s"), _ratio(reader, ours, "refresh_cpu_s"), ""),
        ("peak RSS of the largest process (sampled), first ingest, MB", _mb(reader, "first_largest_rss_mb"),
         _mb(ours, "first_largest_rss_mb"), "", "", "", "<= 300"),
        ("peak RSS of the process tree (sampled sum), MB, first / refresh",
         _pair(reader, "first_tree_rss_mb", "refresh_tree_rss_mb"),
         _pair(ours, "first_tree_rss_mb", "refresh_tree_rss_mb"), "", "", "", ""),
        ("start-up, s (`import reader` / `aggregator --help`, best of 3)", _s(reader, "startup_s"),
         _s(ours, "startup_s"), "", "", "", ""),
        ("HTTP responses, first ingest", _responses(reader, "first_responses"),
         _responses(ours, "first_responses"), "", "", "", ""),
        ("HTTP responses, every refresh", _responses(reader, "refresh_responses"),
         _responses(ours, "refresh_responses"), _responses(urllib3, "refresh_responses"),
         _responses(client, "refresh_responses"), "", "all 304"),
        ("database written by a refresh", _yes_no(reader.get("refresh_wrote_db")),
         _yes_no(ours.get("refresh_wrote_db")), "", "", "", "no"),
        ("exit statuses", _each(reader, "exit_codes", "{}"), _each(ours, "exit_codes", "{}"),
         _each(urllib3, "exit_codes", "{}"), _each(client, "exit_codes", "{}"), "", "0"),
        ("stored entries / distinct clusters", _count(reader, "stored"),
         f"{_count(ours, 'stored')} / {_count(ours, 'clusters')}", "", "", "", ""),
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    for name, side in (("reader", reader), ("aggregator", ours)):
        if side.get("note"):
            lines.append(f"\nNote ({name}): {side['note']}")
    if found.get("floor"):
        parts = [f"{f['stage']} {f['us_per_entry']:,.0f}" for f in found["floor"]]
        lines += ["", "Parse and storage floor (bench/floor.py; one core, in the bench process, us per entry): "
                  + "; ".join(parts) + "."]
    return "\n".join(lines)


def _s(side: dict, key: str) -> str:
    value = side.get(key)
    return f"{value:.2f}" if isinstance(value, (int, float)) else "-"


def _cpu(side: dict, stage: str) -> str:
    if f"{stage}_cpu_s" not in side:
        return "-"
    return f"{side[f'{stage}_cpu_s']:.2f} ({_each(side, f'{stage}_cpu_s_every_round')})"


def _mb(side: dict, key: str) -> str:
    value = side.get(key)
    return f"{value:.0f}" if isinstance(value, (int, float)) else "-"


def _pair(side: dict, first: str, second: str) -> str:
    return f"{_mb(side, first)} / {_mb(side, second)}" if first in side else "-"


def _each(side: dict, key: str, form: str = "{:.2f}") -> str:
    values = side.get(key)
    return " / ".join(form.format(v) for v in values) if values else "-"


def _ratio(reader: dict, ours: dict, key: str) -> str:
    a, b = reader.get(key), ours.get(key)
    return f"{a / b:.2f}x" if a and b else "-"


def _responses(side: dict, key: str) -> str:
    counts = side.get(key)
    return ", ".join(f"{n}x {status}" for status, n in sorted(counts.items())) if counts else "-"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _count(side: dict, key: str) -> str:
    value = side.get(key)
    return str(value) if value is not None else "-"


def with_table(readme: str, name: str, table: str, source: Path) -> str:
    """The README text with the part between the block's markers replaced by the table."""
    if begin(name) not in readme or end(name) not in readme:
        raise SystemExit(f"error: {README} has no {name} markers ({begin(name)!r} ... {end(name)!r})")
    head, rest = readme.split(begin(name), 1)
    _, tail = rest.split(end(name), 1)
    shown = source.resolve().relative_to(BENCH.parent) if source.resolve().is_relative_to(BENCH.parent) else source
    return f"{head}{begin(name)}\n\nFrom `{shown}`:\n\n{table}\n\n{end(name)}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", help="with --print: the file to render")
    parser.add_argument("--print", action="store_true", help="print the table instead of writing the README")
    parser.add_argument("--check", action="store_true", help="exit 1 when a README table differs from its file")
    args = parser.parse_args()
    if args.print:
        print(render_any(json.loads((args.results or DEFAULT_RESULTS).read_text("utf-8"))))
        return
    current = README.read_text("utf-8")
    wanted = current
    blocks = {name: path for name, path in BLOCKS.items() if args.results is None or path == args.results}
    for name, path in blocks.items():
        if path.exists() and begin(name) in wanted:
            wanted = with_table(wanted, name, render_any(json.loads(path.read_text("utf-8"))), path)
    if args.check:
        if wanted != current:
            sys.exit(f"{README} is not rendered from bench/results/: run bench/report.py")
        return
    README.write_text(wanted, "utf-8")
    print(f"{README}: tables rendered from " + ", ".join(str(p) for n, p in blocks.items() if p.exists()
                                                          and begin(n) in wanted))


if __name__ == "__main__":
    main()
