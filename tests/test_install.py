"""`python3 -m venv v && v/bin/pip install .` with the pip Python bundles gives a working install.

The project's .venv is built with an upgraded pip, so the rest of the suite cannot see
what the bundled pip (23.2 with Python 3.11) resolves differently. It once skipped
justext's `lxml[html_clean]` extra (lxml spells it "html-clean") with only a warning,
and every HTML ingest then died with "ImportError: lxml.html.clean module is now a
separate project". This test installs a copy of the project's files into a fresh venv with
that pip, never upgraded, and ingests a news page with the installed console script.

It needs PyPI (pip's configured index): about 15 s here with pip's cache, longer without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement  # pytest depends on packaging
from packaging.utils import canonicalize_name

from helpers.files import FIXTURES, ROOT

PAGE = FIXTURES / "local" / "good" / "01_opengraph.html"
EXPECTED = FIXTURES / "local" / "expected" / "01_opengraph.html.json"

CONFIG = """\
[site]
title = "Install check"
base_url = "http://127.0.0.1:8080/"

[storage]
database = "install.db"
feeds_dir = "feeds"

[[sources]]
name = "Saved pages"
path = "pages"
"""


def base_python() -> str:
    """The interpreter this suite's venv was made from: its ensurepip is the bundled pip."""
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    assert base and Path(base).exists(), f"no base Python interpreter found (sys._base_executable={base!r})"
    return base


def clean_env() -> dict[str, str]:
    """os.environ without what would point the child at this suite's venv or sources.

    pip's own configuration (index, cache, certificates) is kept: it is how pip reaches PyPI here.
    """
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
                 "PIP_USER", "PIP_TARGET", "PIP_PREFIX", "AGGREGATOR_CONFIG"):
        env.pop(name, None)
    return env


def run(args: list[str], *, cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run([str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        output = ((exc.stdout or b"") + (exc.stderr or b"")).decode("utf-8", "replace")
        raise AssertionError(f"{what}: no answer after {timeout:.0f} s\n{tail(output)}") from None
    if done.returncode != 0:
        raise AssertionError(f"{what}: exit {done.returncode}\n{tail(done.stdout + done.stderr)}")
    return done


def tail(output: str, lines: int = 60) -> str:
    return "---- output (last lines) ----\n" + "\n".join(output.splitlines()[-lines:])


def copy_project_files(destination: Path) -> None:
    """The files git tracks (and new ones not ignored yet), as they are in the working tree.

    So no .venv, feeds, databases or build leftovers: what a fresh clone would hold.
    """
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        listed = subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise AssertionError(f"this test copies the files git tracks; `git ls-files` failed in {ROOT}: {exc}")
    names = [name for name in listed.stdout.decode().split("\0") if name]
    assert "pyproject.toml" in names, f"git ls-files in {ROOT} does not list pyproject.toml"
    for name in names:
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def unmet_requirements(site_packages: Path, root: str) -> list[str]:
    """Every requirement reachable from `root`, extras included, that the venv does not satisfy.

    Extra names are compared normalized (PEP 685), as a current pip does: `lxml[html_clean]`
    asks for lxml's "html-clean" extra.
    """
    dists = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site_packages)])}
    missing: list[str] = []
    seen: set[tuple[str, str]] = set()
    todo = [(canonicalize_name(root), "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        dist = dists.get(name)
        if dist is None:
            missing.append(f"{name}{f'[{extra}]' if extra else ''} is not installed")
            continue
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
                continue
            wanted = canonicalize_name(requirement.name)
            found = dists.get(wanted)
            if found is None or not requirement.specifier.contains(found.version, prereleases=True):
                have = f"{found.version} installed" if found else "not installed"
                missing.append(f"{dist.metadata['Name']}{f'[{extra}]' if extra else ''} requires {line} ({have})")
                continue
            todo.append((wanted, ""))
            todo.extend((wanted, canonicalize_name(e)) for e in requirement.extras)
    return missing


def test_install_with_bundled_pip_ingests_html(tmp_path: Path) -> None:
    base = base_python()
    bundled = run([base, "-c", "import ensurepip; print(ensurepip.version())"], cwd=tmp_path, timeout=60,
                  what="asking the base Python for its bundled pip version").stdout.strip()

    source = tmp_path / "src"
    copy_project_files(source)

    venv = tmp_path / "venv"
    run([base, "-m", "venv", venv], cwd=tmp_path, timeout=300, what=f"{base} -m venv (with ensurepip)")
    python = venv / "bin" / "python"
    version = run([python, "-m", "pip", "--version"], cwd=tmp_path, timeout=60, what="pip --version").stdout
    assert version.split()[:2] == ["pip", bundled], f"the venv's pip is not the bundled {bundled}: {version}"

    pip_flags = ["--disable-pip-version-check", "--no-input"]
    installed = run([python, "-m", "pip", "install", *pip_flags, source], cwd=tmp_path, timeout=1500,
                    what=f"pip {bundled} install of the project (it needs PyPI through pip's configured "
                         f"index: a connection error below means the index is unreachable)")
    # An extra the old pip cannot match is only a warning ("lxml 6.2.0 does not provide the
    # extra 'html_clean'", still printed for justext's request) and `pip check` 23.2 does not see it.
    warnings = [line for line in (installed.stdout + installed.stderr).splitlines() if "provide the extra" in line]
    site_packages = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path,
                        timeout=60, what="finding the venv's site-packages").stdout.strip()
    missing = unmet_requirements(Path(site_packages), "aggregator")
    assert not missing, "installed without what these ask for:\n" + "\n".join(missing + warnings)
    run([python, "-m", "pip", "check", *pip_flags], cwd=tmp_path, timeout=120, what="pip check")

    # The installed pip is still the bundled one (nothing in the install upgraded it).
    version = run([python, "-m", "pip", "--version"], cwd=tmp_path, timeout=60, what="pip --version").stdout
    assert version.split()[:2] == ["pip", bundled], f"pip changed during the install: {version}"

    work = tmp_path / "work"
    (work / "pages").mkdir(parents=True)
    shutil.copy2(PAGE, work / "pages" / PAGE.name)
    (work / "config.toml").write_text(CONFIG, encoding="utf-8")

    where = run([python, "-c", "import aggregator; print(aggregator.__file__)"], cwd=work, timeout=60,
                what="importing the installed package").stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), f"aggregator imported from {where}, not the venv"

    aggregator = venv / "bin" / "aggregator"
    run([aggregator, "-c", "config.toml", "ingest", "pages"], cwd=work, timeout=300,
        what="aggregator ingest of an HTML page")
    listed = run([aggregator, "-c", "config.toml", "articles", "--json"], cwd=work, timeout=120,
                 what="aggregator articles --json").stdout
    articles = [json.loads(line) for line in listed.splitlines() if line.strip()]

    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))[0]
    assert len(articles) == 1, f"expected one stored article, got {len(articles)}: {listed}"
    article = articles[0]
    assert article["title"] == expected["title"]
    assert article["text"] == expected["text"]
    assert article["site"] == expected["site"]
    assert article["url"] == expected["url"]
