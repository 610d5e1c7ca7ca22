"""Watched folders through the real pipeline and a real SQLite file.

Recursion, include/exclude, hidden and temp files, bad files next to good
ones, incremental re-reads (unchanged, touched, edited, deleted files) and
the `aggregator ingest` summary line and progress bar.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.app.cli import cli
from aggregator.config import SourceConfig, load_config
from aggregator.ingest.local import file_key, local_article_id
from aggregator.ingest.source_status import status_after_read
from aggregator.models import IngestReport
from aggregator.pipeline import ingest_path, ingest_source
from aggregator.storage.store import Store
from helpers.files import FIXTURES

LOCAL = FIXTURES / "local"
GOOD_ARTICLES = 17  # 14 files; the JSON list, the JSON Feed and the RSS file hold two each
AGED = 1_700_000_000 * 10**9  # an mtime well outside the racy window


def write_config(folder: Path, extra: str = "", ingest: str = "") -> Path:
    config = folder / "config.toml"
    config.write_text(textwrap.dedent(f"""
        [storage]
        database = "data/test.db"
        feeds_dir = "feeds"

        [ingest]
        max_file_size = "64KiB"
        {ingest}

        [[sources]]
        name = "drop"
        path = "drop"
        {extra}
    """), encoding="utf-8")
    return config


def age(path: Path) -> None:
    os.utime(path, ns=(AGED, AGED))


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """A project whose `drop` folder holds every good fixture, in two levels of folders."""
    folder = tmp_path / "drop"
    shutil.copytree(LOCAL / "good", folder / "kinds")
    for path in (folder / "kinds").iterdir():
        age(path)
    write_config(tmp_path)
    return tmp_path


def run_source(project: Path):
    config = load_config(project / "config.toml")
    with Store(config.storage.database) as store:
        return ingest_source(config, store, config.sources[0]), store.count()


def test_folder_of_every_kind_lands_with_bad_files_skipped_one_line_each(drop: Path, caplog) -> None:
    bad = drop / "drop" / "bad"
    shutil.copytree(LOCAL / "bad", bad)
    (bad / "oversized.txt").write_bytes(b"Site\nWorld\n\nTitle\n\n" + b"word " * 20_000)
    report, count = run_source(drop)
    assert (report.new, report.updated, report.unchanged) == (GOOD_ARTICLES, 0, 0)
    assert count == GOOD_ARTICLES
    assert sorted(Path(s.origin).name for s in report.skipped) == sorted(
        [p.name for p in (LOCAL / "bad").iterdir()] + ["oversized.txt"])
    for skipped in report.skipped:
        lines = [r.getMessage() for r in caplog.records if Path(skipped.origin).name in r.getMessage()]
        assert lines == [f"drop: skipped {skipped.origin}: {skipped.reason}"]


def test_hidden_temp_and_excluded_files_are_ignored_and_include_selects(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    (folder / ".git").mkdir(parents=True)
    for name in ("06_yaml_front.md", "08_single.json", "13_plaintext_latin1.txt"):
        shutil.copyfile(LOCAL / "good" / name, folder / name)
    for name in (".hidden.md", "draft.md~", ".#lock.md", "notes.md.swp", "~$report.md"):
        shutil.copyfile(LOCAL / "good" / "06_yaml_front.md", folder / name)
    shutil.copyfile(LOCAL / "good" / "06_yaml_front.md", folder / ".git" / "inside.md")
    write_config(tmp_path, 'include = ["*.md", "*.txt"]\nexclude = ["13_*"]')
    report, count = run_source(tmp_path)
    assert (report.new, report.skipped, count) == (1, [], 1)


def test_unchanged_folder_is_skipped_without_parsing_then_edits_update_in_place(drop: Path, monkeypatch) -> None:
    first, _ = run_source(drop)
    assert first.new == GOOD_ARTICLES

    from aggregator.ingest import local

    calls: list[str] = []
    real = local.parse_file
    monkeypatch.setattr(local, "parse_file", lambda file, *a: calls.append(file.relative) or real(file, *a))
    again, count = run_source(drop)
    assert (again.new, again.updated, again.unchanged, count, calls) == (0, 0, GOOD_ARTICLES, GOOD_ARTICLES, [])

    md = drop / "drop" / "kinds" / "06_yaml_front.md"
    os.utime(md, ns=(AGED + 10**9, AGED + 10**9))  # touched, same bytes: hashed, not parsed
    touched, _ = run_source(drop)
    assert (touched.new, touched.updated, touched.unchanged, calls) == (0, 0, GOOD_ARTICLES, [])

    md.write_text(md.read_text(encoding="utf-8").replace("Rail strike called off", "Rail strike cancelled"),
                  encoding="utf-8")
    age(md)
    os.utime(md, ns=(AGED + 2 * 10**9, AGED + 2 * 10**9))
    edited, count = run_source(drop)
    assert calls == ["kinds/06_yaml_front.md"]
    assert (edited.new, edited.updated, edited.unchanged, count) == (0, 1, GOOD_ARTICLES - 1, GOOD_ARTICLES)
    config = load_config(drop / "config.toml")
    with Store(config.storage.database) as store:
        article = store.get(local_article_id("drop", "kinds/06_yaml_front.md"))
        assert article.title == "Rail strike cancelled after late-night talks"
        assert store.file_states("drop")[file_key(md.resolve())].article_ids == [article.id]


def test_deleted_file_leaves_its_article_and_new_bad_file_loses_nothing(drop: Path) -> None:
    run_source(drop)
    (drop / "drop" / "kinds" / "01_opengraph.html").unlink()
    (drop / "drop" / "kinds" / "99_broken.json").write_text("{not json", encoding="utf-8")
    report, count = run_source(drop)
    assert count == GOOD_ARTICLES and report.unchanged == GOOD_ARTICLES - 1
    assert [s.reason.split(" (")[0] for s in report.skipped] == ["not an article: not valid JSON"]
    config = load_config(drop / "config.toml")
    with Store(config.storage.database) as store:
        assert store.get(local_article_id("drop", "kinds/01_opengraph.html")).title == "Harbour reopens after storm"


def test_freshly_written_file_is_hashed_next_time_not_trusted_by_mtime(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    post = folder / "post.md"
    post.write_text("---\ntitle: First\n---\n\nSome body text here.\n", encoding="utf-8")
    write_config(tmp_path)
    run_source(tmp_path)
    config = load_config(tmp_path / "config.toml")
    with Store(config.storage.database) as store:
        assert store.file_states("drop")[file_key(post.resolve())].mtime_ns is None
    stat = post.stat()
    post.write_text("---\ntitle: Other\n---\n\nSome body text here.\n", encoding="utf-8")  # same size
    os.utime(post, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime tick
    report, _ = run_source(tmp_path)
    assert report.updated == 1


def test_ad_hoc_ingest_of_a_file_in_a_source_uses_the_source_ids(drop: Path) -> None:
    run_source(drop)
    config = load_config(drop / "config.toml")
    with Store(config.storage.database) as store:
        report = ingest_path(config, store, drop / "drop" / "kinds" / "10_jsonfeed.json")
        assert (report.source, report.new, report.unchanged, store.count()) == ("drop", 0, 2, GOOD_ARTICLES)


def test_ad_hoc_ingest_of_a_whole_source_records_its_row_and_of_a_part_leaves_it(drop: Path) -> None:
    config = load_config(drop / "config.toml")
    with Store(config.storage.database) as store:
        ingest_path(config, store, drop / "drop" / "kinds" / "10_jsonfeed.json")
        assert store.source_state("drop") == {}  # a part says nothing about the rest of the folder
        ingest_path(config, store, drop / "drop")
        row = store.source_state("drop")
    assert (row["status"], row["error_count"], row["last_error"]) == ("ok", 0, None)
    assert row["last_fetch"] == row["last_success"] and row["kind"] == "local"


def test_a_read_decides_the_source_row_as_a_value() -> None:
    """status_after_read touches nothing: the same report and previous row give the same fields."""
    source = SourceConfig(name="Desk", path=Path("/news/desk"))
    when = "2026-01-02T03:04:05+00:00"
    read = status_after_read(source, IngestReport("Desk", warnings=["a.json: capped"]), {"error_count": 3}, when)
    assert read == {"kind": "local", "location": source.location, "last_fetch": when, "warning": "a.json: capped",
                    "status": "ok", "last_success": when, "last_error": None, "error_count": 0}
    failed = status_after_read(source, IngestReport("Desk", error="boom"), {"error_count": 3}, when)
    assert (failed["status"], failed["last_error"], failed["error_count"]) == ("error", "boom", 4)
    assert "last_success" not in failed and failed["warning"] is None  # the last success stays as stored
    assert status_after_read(source, IngestReport("Desk", error="boom"), {}, when)["error_count"] == 1


def invoke(project: Path, *args: str):
    return CliRunner().invoke(cli, ["-c", str(project / "config.toml"), *args], catch_exceptions=False)


def test_cli_ingest_ends_with_one_summary_line_and_no_bar_off_a_terminal(drop: Path) -> None:
    shutil.copyfile(LOCAL / "bad" / "not_article.txt", drop / "drop" / "note.txt")
    first = invoke(drop, "ingest", str(drop / "drop"))
    assert first.exit_code == 0
    assert first.stdout.splitlines() == [f"{GOOD_ARTICLES} new, 0 updated, 0 unchanged, 1 skipped"]
    assert "%" not in first.stderr and "█" not in first.stderr and "#" not in first.stderr
    quiet = invoke(drop, "-q", "ingest", str(drop / "drop"))
    assert quiet.stdout.splitlines() == [f"0 new, 0 updated, {GOOD_ARTICLES} unchanged, 1 skipped"]


def test_cli_shows_a_progress_bar_on_a_terminal_unless_quiet(drop: Path) -> None:
    import pty
    import subprocess
    import sys

    def run(*flags: str) -> str:
        leader, follower = pty.openpty()
        process = subprocess.run(
            [sys.executable, "-m", "aggregator", "-c", str(drop / "config.toml"), *flags, "ingest",
             str(drop / "drop")], stdout=subprocess.PIPE, stderr=follower, timeout=120)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert process.returncode == 0
        return process.stdout.decode() + "\n--stderr--\n" + b"".join(chunks).decode(errors="replace")

    shown = run()
    assert "14/14" in shown
    assert shown.splitlines()[0] == f"{GOOD_ARTICLES} new, 0 updated, 0 unchanged, 0 skipped"
    hidden = run("--quiet")
    assert "14/14" not in hidden and hidden.split("\n--stderr--\n")[1].strip() == ""
