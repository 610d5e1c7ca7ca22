"""Shared fixtures: a project folder in tmp_path with its own config, samples and database."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from helpers.files import BASIC_CONFIG, SAMPLES


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with config.toml and a copy of the bundled sample articles."""
    shutil.copytree(SAMPLES, tmp_path / "articles")
    (tmp_path / "config.toml").write_text(textwrap.dedent(BASIC_CONFIG), encoding="utf-8")
    return tmp_path
