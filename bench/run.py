"""The side-by-side benchmark: `reader` against `aggregator run --once`, and the floor.

    .venv/bin/python bench/run.py --feeds 200 --entries 50 [--latency-ms 0] [--profile]

One corpus (bench/corpus.py), one local server (bench/server.py, in a
thread of this process), and each contender run as a whole command in a
subprocess, the way a user runs it:

* reader: a small script that opens a reader database, adds the feeds and
  calls update_feeds(workers=4, scheduled=False);
* aggregator: `aggregator -c <generated config> -q run --once` (ingest and
  publish), with the corpus URLs as `url` sources.

Each runs on its own fresh database: the first full ingest, then
REFRESH_RUNS unchanged refreshes (the server answers 304 to every
conditional request); the table shows the median refresh and lists all.
Peak memory comes from os.wait4 (the largest process, as the kernel counts
it) and from sampling the process tree with psutil every 20 ms (the sum,
which matters once work is spread over a process pool).

The floor is measured in this process, one core, on the same bytes:
feedparser alone (as shipped, and with sanitizing and URL resolution off),
an lxml parse alone, SQLite inserts alone (plain rows, then rows with an
FTS5 index like ours), and our own parse_feed for reference.

Prints Markdown tables (paste them into bench/README.md) and writes
results.json into the work folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod  # noqa: E402  (bench/ is not a package)
from server import CorpusServer  # noqa: E402

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
AGGREGATOR = str(Path(PYTHON).with_name("aggregator"))
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


# --- running a command and measuring it ---


@dataclass
class Run:
    seconds: float
    max_rss_mb: float  # the largest single process (kernel's ru_maxrss, via wait4)
    tree_rss_mb: float  # the largest sampled sum over the process tree
    returncode: int
    responses: dict[int, int] = field(default_factory=dict)
    stderr_tail: str = ""


def run_command(cmd: list[str], log: Path, server: CorpusServer | None = None,
                env: dict[str, str] | None = None) -> Run:
    """Wall time, peak memory and HTTP responses of one whole command."""
    if server:
        server.take_counts()
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    sampler.stop()
    responses = dict(sorted(server.take_counts().items())) if server else {}
    tail = "\n".join(log.read_text("utf-8", "replace").strip().splitlines()[-5:])
    return Run(seconds, usage.ru_maxrss / 1024, sampler.peak / 2**20, proc.returncode, responses, tail)


class _TreeSampler(threading.Thread):
    """Peak of the summed RSS of a process and its descendants, sampled."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def files_digest(*paths: Path) -> str:
    """Whether a database changed: a hash of its file and WAL as they are on disk."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<absent>")
    return digest.hexdigest()


def db_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal")]


def count_rows(db: Path, sql: str) -> int | None:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return None


def startup_seconds(cmd: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - start)
    return best


# --- the contenders ---


@dataclass
class Side:
    name: str
    first: Run | None = None
    refresh: Run | None = None  # the median of REFRESH_RUNS unchanged refreshes
    refresh_samples: list[float] = field(default_factory=list)  # every refresh's seconds, in order
    stored: int | None = None
    clusters: int | None = None
    refresh_wrote_db: bool | None = None
    startup: float | None = None
    note: str = ""


def bench_reader(work: Path, urls: list[str], server: CorpusServer) -> Side:
    side = Side("reader")
    try:
        import reader  # noqa: F401
    except ImportError:
        side.note = "reader is not installed: pip install -e '.[bench]'"
        return side
    folder = _fresh(work / "reader")
    script, urls_file, db = folder / "update.py", folder / "urls.txt", folder / "reader.sqlite"
    script.write_text(READER_SCRIPT)
    urls_file.write_text("\n".join(urls) + "\n")
    cmd = [PYTHON, str(script), str(db), str(urls_file)]
    side.startup = startup_seconds([PYTHON, "-c", "import reader"])
    side.first = run_command(cmd, folder / "first.log", server)
    measure_refreshes(side, cmd, folder, db, server)
    side.stored = count_rows(db, "SELECT COUNT(*) FROM entries")
    return side


def measure_refreshes(side: Side, cmd: list[str], folder: Path, db: Path, server: CorpusServer) -> None:
    """REFRESH_RUNS unchanged refreshes; the median one is reported, all of them are kept.

    One refresh lasts about a second, so one sample moves by a third with the
    machine's load; the median of a few, taken the same way on both sides, moves less.
    """
    before = files_digest(*db_files(db))
    runs = [run_command(cmd, folder / f"refresh-{n}.log", server) for n in range(1, REFRESH_RUNS + 1)]
    side.refresh_wrote_db = files_digest(*db_files(db)) != before
    side.refresh_samples = [r.seconds for r in runs]
    side.refresh = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def aggregator_config(folder: Path, urls: list[tuple[str, str]], topics: int = 8) -> Path:
    """A config with every corpus feed as a `url` source and topics from the corpus vocabulary."""
    lines = [
        "[site]", 'title = "Bench digest"', 'base_url = "http://127.0.0.1:8080/"', "",
        "[storage]", 'database = "aggregator.db"', 'feeds_dir = "feeds"', "",
        # The corpus is served from one host: per_host = 4 matches reader's workers=4 toward it.
        "[fetch]", "allow_private_network = true", "per_host = 4", "",
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


def bench_aggregator(work: Path, feeds: list[tuple[str, str]], server: CorpusServer) -> Side:
    side = Side("aggregator")
    folder = _fresh(work / "aggregator")
    config = aggregator_config(folder, feeds)
    db = folder / "aggregator.db"
    cmd = [AGGREGATOR, "-c", str(config), "-q", "run", "--once"]
    side.startup = startup_seconds([AGGREGATOR, "--help"])
    side.first = run_command(cmd, folder / "first.log", server)
    measure_refreshes(side, cmd, folder, db, server)
    side.stored = count_rows(db, "SELECT COUNT(*) FROM articles")
    side.clusters = count_rows(db, "SELECT COUNT(DISTINCT cluster_id) FROM articles")
    if side.first.returncode != 0:
        side.note = f"exit {side.first.returncode}: {side.first.stderr_tail.splitlines()[-1:]}"
    return side


def profile_aggregator(work: Path, feeds: list[tuple[str, str]], top: int = 25) -> str:
    """py-spy over a first ingest on a fresh database, every thread and subprocess: the hot functions.

    py-spy rather than pyinstrument because fetching and parsing run on worker
    threads, which pyinstrument does not sample. Idle (waiting) samples are left out.
    """
    spy = Path(PYTHON).with_name("py-spy")
    if not spy.exists():
        return "py-spy is not installed: pip install -e '.[bench]'"
    folder = _fresh(work / "profile")
    config = aggregator_config(folder, feeds)
    raw = folder / "stacks.txt"
    done = subprocess.run([str(spy), "record", "--rate", "250", "--subprocesses", "--format", "raw",
                           "--output", str(raw), "--", AGGREGATOR, "-c", str(config), "-q", "run", "--once"],
                          capture_output=True, text=True, check=False)
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


# --- the floor, in this process ---


@dataclass
class Floor:
    stage: str
    seconds: float
    entries: int

    @property
    def us_per_entry(self) -> float:
        return self.seconds / self.entries * 1e6


def floor(corpus: corpus_mod.Corpus, files: dict[str, bytes], work: Path) -> list[Floor]:
    entries = len(corpus.entries())
    results = []
    import feedparser
    from lxml import etree

    data = [files[f.path] for f in corpus.feeds]
    results.append(Floor("feedparser.parse (defaults)", _timed(lambda: [feedparser.parse(d) for d in data]), entries))
    results.append(Floor("feedparser.parse (no sanitize, no URL resolving)", _timed(lambda: [
        feedparser.parse(d, sanitize_html=False, resolve_relative_uris=False) for d in data]), entries))
    results.append(Floor("lxml.etree.fromstring", _timed(lambda: [etree.fromstring(d) for d in data]), entries))
    try:
        from aggregator.ingest.feed import parse_feed

        results.append(Floor("aggregator parse_feed (feedparser-rs, feedparser fallback, nh3, normalize)", _timed(lambda: [
            parse_feed(d, source=f.title, url=f.site_url) for d, f in zip(data, corpus.feeds)]), entries))
    except ImportError:
        pass
    results.append(Floor("SQLite insert, plain rows (1 tx per feed)", _sqlite_floor(corpus, work, fts=False), entries))
    results.append(Floor("SQLite insert, rows + FTS5 (1 tx per feed)", _sqlite_floor(corpus, work, fts=True), entries))
    return results


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _sqlite_floor(corpus: corpus_mod.Corpus, work: Path, fts: bool) -> float:
    """Rows shaped like ours, WAL + synchronous=NORMAL like our store, one transaction per feed."""
    db = work / ("floor-fts.db" if fts else "floor.db")
    for path in db_files(db):
        path.unlink(missing_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE articles (id TEXT PRIMARY KEY, source TEXT, title TEXT, url TEXT, guid TEXT, "
                 "published TEXT, authors TEXT, categories TEXT, summary TEXT, text TEXT, content_html TEXT)")
    if fts:
        conn.execute("CREATE VIRTUAL TABLE articles_fts USING fts5 (title, text, content=articles, "
                     "content_rowid=rowid, tokenize='porter unicode61 remove_diacritics 2')")
        conn.execute("CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN INSERT INTO articles_fts "
                     "(rowid, title, text) VALUES (new.rowid, new.title, new.text); END")
    batches = [[(hashlib.sha256(f"{f.path}{e.guid}".encode()).hexdigest()[:16], f.title, e.title, e.link, e.guid,
                 e.published.isoformat(), json.dumps([e.author]), json.dumps(e.categories), e.summary,
                 "\n\n".join(e.paragraphs), e.html) for e in f.entries] for f in corpus.feeds]
    start = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


# --- the report ---


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {model}, Python {platform.python_version()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("aggregator", "reader", "feedparser", "lxml"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _s(run: Run | None) -> str:
    if run is None:
        return "-"
    return f"{run.seconds:.2f}" + ("" if run.returncode == 0 else f" (exit {run.returncode})")


def _samples(side: Side) -> str:
    return " / ".join(f"{s:.2f}" for s in side.refresh_samples) or "-"


def table(args: argparse.Namespace, reader: Side, agg: Side, floors: list[Floor], entries: int) -> str:
    rows = [
        ("first ingest, s", _s(reader.first), _s(agg.first),
         _ratio(reader.first and reader.first.seconds, agg.first and agg.first.seconds), ">= 5x"),
        ("first ingest, entries/s",
         f"{entries / reader.first.seconds:.0f}" if reader.first else "-",
         f"{entries / agg.first.seconds:.0f}" if agg.first else "-", "", ""),
        (f"unchanged refresh, s (median of {REFRESH_RUNS})", _s(reader.refresh), _s(agg.refresh),
         _ratio(reader.refresh and reader.refresh.seconds, agg.refresh and agg.refresh.seconds), ">= 3x"),
        ("every refresh, s, in order", _samples(reader), _samples(agg), "", ""),
        ("start-up (import / --help), s", _f(reader.startup), _f(agg.startup), "", ""),
        ("peak RSS, process tree, sampled, MB (first / refresh)", _mem(reader, "tree_rss_mb"), _mem(agg, "tree_rss_mb"), "", ""),
        ("ru_maxrss via wait4, MB (first / refresh; counts this process' pages at fork, so overstates)",
         _mem(reader, "max_rss_mb"), _mem(agg, "max_rss_mb"), "", ""),
        ("HTTP responses, first", _resp(reader.first), _resp(agg.first), "", ""),
        ("HTTP responses, refresh", _resp(reader.refresh), _resp(agg.refresh), "", "all 304"),
        ("database written by refresh", _yn(reader.refresh_wrote_db), _yn(agg.refresh_wrote_db), "", "no"),
        ("stored entries", _n(reader.stored), _n(agg.stored), "", ""),
        ("distinct clusters", "-", _n(agg.clusters), "", ""),
    ]
    out = [f"Corpus: {args.feeds} feeds x {args.entries} entries = {entries} entries, seed {args.seed}, "
           f"server latency {args.latency_ms:g} ms.  ", f"Machine: {machine()}; load average at start "
           f"{args.load:.2f}.  ", f"Versions: {versions()}.", "",
           "| measure | reader | aggregator | reader / aggregator | target |", "|---|---|---|---|---|"]
    out += [f"| {' | '.join(row)} |" for row in rows]
    for side in (reader, agg):
        if side.note:
            out.append(f"\nNote ({side.name}): {side.note}")
    if not floors:
        return "\n".join(out)
    out += ["", f"Floor (this process, one core, same {entries} entries):", "",
            "| stage | total s | us / entry | entries / s |", "|---|---|---|---|"]
    out += [f"| {f.stage} | {f.seconds:.2f} | {f.us_per_entry:.0f} | {f.entries / f.seconds:.0f} |" for f in floors]
    return "\n".join(out)


def _f(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _n(value: int | None) -> str:
    return str(value) if value is not None else "-"


def _yn(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _mem(side: Side, attr: str) -> str:
    if not side.first:
        return "-"
    return f"{getattr(side.first, attr):.0f} / {getattr(side.refresh, attr):.0f}" if side.refresh else "-"


def _resp(run: Run | None) -> str:
    return ", ".join(f"{n}x {status}" for status, n in run.responses.items()) if run and run.responses else "-"


def byte_compile_aggregator() -> None:
    """Bytecode for our package, as pip writes it for an installed one (reader's is in site-packages).

    The editable install imports from the source tree, and with PYTHONDONTWRITEBYTECODE
    set (as on this team's machines) every run would compile every module from source.
    """
    import compileall

    import aggregator

    compileall.compile_dir(Path(aggregator.__file__).parent, quiet=1)


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description="reader vs aggregator on one local corpus, and the floor.")
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=corpus_mod.DEFAULT_SEED)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="server delay before every response")
    parser.add_argument("--work", type=Path, default=BENCH / ".work", help="corpus, databases, logs, results")
    parser.add_argument("--skip", action="append", default=[], choices=["reader", "aggregator", "floor"])
    parser.add_argument("--profile", action="store_true", help="also profile `aggregator run --once` (py-spy)")
    args = parser.parse_args()

    args.load = os.getloadavg()[0]  # other work on the machine skews every figure; say how much
    byte_compile_aggregator()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = corpus_mod.generate(args.feeds, args.entries, args.seed)
    files = corpus_mod.write_corpus(corpus, _fresh(work / "corpus"))
    entries = len(corpus.entries())
    with CorpusServer(files, args.latency_ms / 1000) as server:
        feeds = [(f.title, server.url(f.path)) for f in corpus.feeds]
        reader = Side("reader", note="skipped") if "reader" in args.skip else bench_reader(work, [u for _, u in feeds], server)
        agg = Side("aggregator", note="skipped") if "aggregator" in args.skip else bench_aggregator(work, feeds, server)
        profile = profile_aggregator(work, feeds) if args.profile else ""
    floors = [] if "floor" in args.skip else floor(corpus, files, work)
    report = table(args, reader, agg, floors, entries)
    print(report)
    if args.profile:
        print("\nProfile of `aggregator run --once` (first ingest; py-spy, all threads):\n")
        print(profile)
    (work / "results.json").write_text(json.dumps({
        "args": {k: str(v) for k, v in vars(args).items()}, "machine": machine(), "versions": versions(),
        "entries": entries, "reader": asdict(reader), "aggregator": asdict(agg),
        "floor": [{**asdict(f), "us_per_entry": f.us_per_entry} for f in floors], "table": report,
        "profile": profile,
    }, indent=1, default=str))


if __name__ == "__main__":
    main()
