"""A real headless browser (Debian's chromium) for pages we publish.

String matching proves the bytes; a browser proves the page: that it
parses, that the plots render, that nothing overflows a phone's width.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed; run scripts/install-test-tools.sh")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(page: Path, width: int = 1280, height: int = 900) -> str:
    """The DOM after the browser parsed and laid out the page (scripts, if any, have run)."""
    return _run([f"--window-size={width},{height}", "--virtual-time-budget=2000", "--dump-dom",
                 page.resolve().as_uri()]).stdout


def screenshot(page: Path, out: Path, width: int, height: int = 900) -> Path:
    _run([f"--window-size={width},{height}", f"--screenshot={out}", "--hide-scrollbars", page.resolve().as_uri()])
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def layout_width(page: Path, width: int) -> int:
    """The page's laid-out width in a viewport this wide: wider than the viewport means sideways scrolling.

    Headless chromium keeps its window at least 500 px wide, so a phone's
    400 px is an iframe of that width in a harness page; the harness (the
    page itself has no JavaScript) reports the framed document's scroll
    width into the DOM we dump.
    """
    harness = page.with_name(f".harness-{page.name}")
    harness.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="{page.name}" width="{width}" '
        'height="900" style="border:0"></iframe><script>document.getElementById("f").onload = () => '
        "document.body.setAttribute('data-scroll-width', document.getElementById('f').contentDocument"
        ".documentElement.scrollWidth);</script></body></html>", encoding="utf-8")
    try:
        dom = _run([f"--window-size={max(width, 500)},900", "--allow-file-access-from-files",
                    "--virtual-time-budget=3000", "--dump-dom", harness.resolve().as_uri()]).stdout
    finally:
        harness.unlink()
    marker = 'data-scroll-width="'
    start = dom.index(marker) + len(marker)
    return int(dom[start:dom.index('"', start)])
