"""File attacks on local sources: each bad file is one skipped line, never a crash or a hang."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from aggregator.pipeline import store_results
from aggregator.ingest.local import ParseOptions, read_local_source
from aggregator.storage.store import Store
from aggregator.enrich.topics import TopicRules

from .hostile_support import run_isolated

GOOD = "Test Site\nWorld\n\nA good world title\n\nA body paragraph about the world.\n"
LIMIT = 10 * 1024 * 1024


def ingest(folder: Path, db: Path, max_size: int = LIMIT):
    store = Store(db)
    try:
        report = store_results(store, "drop", read_local_source(folder, "drop", ParseOptions(), max_size),
                               TopicRules(()))
        return report, store.count(), store.integrity_ok()
    finally:
        store.close()


def reasons(report) -> dict[str, str]:
    return {Path(s.origin).name: s.reason for s in report.skipped}


def test_empty_binary_undecodable_and_huge_files_are_skipped(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "good.txt").write_text(GOOD)
    (drop / "empty.txt").write_bytes(b"")
    (drop / "blank.txt").write_bytes(b" \n\t\r\n")
    (drop / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (drop / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4096))
    (drop / "bad_bom.txt").write_bytes(b"\xff\xfe" + b"\xd8\x00" * 50)  # UTF-16 BOM, lone surrogates
    with open(drop / "sparse.txt", "wb") as handle:  # 100 MB without writing 100 MB
        handle.truncate(100 * 1024 * 1024)
    start = time.monotonic()
    report, count, ok = ingest(drop, tmp_path / "db.sqlite")
    elapsed = time.monotonic() - start
    skipped = reasons(report)
    assert count == 1 and ok and report.error is None
    assert set(skipped) == {"empty.txt", "blank.txt", "binary.txt", "image.png", "bad_bom.txt", "sparse.txt"}
    assert "limit" in skipped["sparse.txt"]
    assert "empty" in skipped["empty.txt"]
    assert elapsed < 5, f"a 100 MB file must be refused by its size, not read ({elapsed:.1f}s)"


def test_file_that_grows_past_the_limit_while_read_is_refused(tmp_path: Path) -> None:
    """The size check is repeated on the bytes read, not only on stat()."""
    from aggregator.ingest.local import read_file

    path = tmp_path / "grow.txt"
    path.write_text(GOOD * 10)
    result = read_file(path, tmp_path, max_size=50)
    assert not hasattr(result, "data") and "limit" in result.reason


def test_symlinks_leading_outside_the_source_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwords.txt").write_text("Secret Site\nWorld\n\nSECRET TITLE\n\nSECRET BODY.\n")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "good.txt").write_text(GOOD)
    (drop / "inside.txt").symlink_to(drop / "good.txt")
    (drop / "passwd.txt").symlink_to("/etc/passwd")
    (drop / "secret.txt").symlink_to(secret / "passwords.txt")
    (drop / "relative.txt").symlink_to(Path("..") / "secret" / "passwords.txt")
    (drop / "dir_link").symlink_to(secret, target_is_directory=True)
    (drop / "loop.txt").symlink_to(drop / "loop.txt")
    (drop / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    store = Store(tmp_path / "db.sqlite")
    store_results(store, "drop", read_local_source(drop, "drop", ParseOptions(), LIMIT), TopicRules(()))
    titles = [a.title for a in store.articles()]
    texts = " ".join(a.text for a in store.articles())
    store.close()
    assert "SECRET" not in " ".join(titles) + texts
    assert "root:" not in texts
    assert sorted(titles) == ["A good world title", "A good world title"]


def test_file_names_that_are_not_utf8_are_stored_and_shown_escaped(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for raw in (b"caf\xe9.txt", b"\xff\xfe.txt", b"ok\x1b[31m.txt"):
        (drop / os.fsdecode(raw)).write_text(GOOD)
    report, count, ok = ingest(drop, tmp_path / "db.sqlite")
    assert count == 3 and ok and not report.skipped
    store = Store(tmp_path / "db.sqlite")
    origins = sorted(a.origin for a in store.articles())
    store.close()
    assert any(o.endswith("caf\\xe9.txt") for o in origins)
    # Re-ingest: same ids, so nothing is duplicated.
    again, count, _ = ingest(drop, tmp_path / "db.sqlite")
    assert count == 3 and again.new == 0


def test_fifo_in_the_folder_does_not_block_ingest(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: a child with a timeout shows it."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "good.txt").write_text(GOOD)
    os.mkfifo(drop / "pipe.txt")
    result = run_isolated(f"""
        from pathlib import Path
        from aggregator.ingest.local import ParseOptions, read_local_source
        results = list(read_local_source(Path({str(drop)!r}), "drop", ParseOptions(), 10_000_000))
        print(sum(len(r.articles) for r in results), [s.reason for r in results for s in r.skipped])
    """, timeout=30)
    assert not result.timed_out, "reading a FIFO blocked ingest"
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 ") and "regular file" in result.stdout


@pytest.fixture
def fast_folder(tmp_path: Path):
    """tmpfs when there is one: creating 100,000 files on a disk-backed /tmp alone took 18 s here."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="hostile-", dir=shm))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path


def test_folder_of_100000_files(fast_folder: Path, tmp_path: Path) -> None:
    """100,000 empty files: every one skipped, with no per-file crash and a bounded log."""
    drop = fast_folder / "drop"
    drop.mkdir()
    start = time.monotonic()
    for index in range(100_000):
        os.close(os.open(drop / f"f{index:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    (drop / "zz_good.txt").write_text(GOOD)
    created = time.monotonic() - start
    start = time.monotonic()
    report, count, ok = ingest(drop, tmp_path / "db.sqlite")
    elapsed = time.monotonic() - start
    print(f"created 100,000 files in {created:.1f}s; ingested in {elapsed:.1f}s")
    assert count == 1 and ok
    assert len(report.skipped) == 100_000
    assert elapsed < 90  # measured 13-27 s on 2 loaded cores; a per-file hang or crash fails long before
