"""feeds/status.html from a real run, checked in a real headless browser."""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import html as lxml_html

from aggregator.app.cli import cli
from aggregator.config import load_config
from aggregator.publish.status_page import DAYS, PLOT_HEIGHT, render_status_page, status_data
from aggregator.storage.store import Store
from helpers import browser

FAILING_SOURCE = """
[fetch]
allow_private_network = true
timeout = "2s"

[[sources]]
name = "Dead wire"
url = "http://127.0.0.1:9/feed.xml"
"""


@pytest.fixture
def ran(project: Path) -> Path:
    """The sample project plus one unreachable remote source, after one `run --once`."""
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    head, sep, rest = text.partition("[[sources]]")
    config.write_text(head + FAILING_SOURCE.replace("[[sources]]", "", 0) + sep + rest, encoding="utf-8")
    result = CliRunner().invoke(cli, ["-c", str(config), "run", "--once"])
    assert result.exit_code == 2, result.output  # a source failed; the rest ran
    return project


def _page(project: Path) -> tuple[Path, str]:
    config = load_config(project / "config.toml")
    with Store(config.storage.database) as store:
        page = render_status_page(status_data(config, store))
    path = project / "status.html"
    path.write_text(page, encoding="utf-8")
    return path, page


def test_counts_come_from_the_stored_articles(ran: Path) -> None:
    config = load_config(ran / "config.toml")
    with Store(config.storage.database) as store:
        data = status_data(config, store)
    db = sqlite3.connect(config.storage.database)
    stored_today = db.execute("SELECT count(*) FROM articles WHERE source = 'Local newsroom'").fetchone()[0]
    copies = db.execute("SELECT count(*) FROM articles WHERE cluster_id != id").fetchone()[0]
    by_name = {s.name: s for s in data.sources}
    assert by_name["Local newsroom"].per_day[-1] == stored_today == 36  # all stored today: the last bar
    assert sum(by_name["Local newsroom"].per_day) == 36 and len(by_name["Local newsroom"].per_day) == DAYS
    assert by_name["Dead wire"].status != "ok" and "127.0.0.1:9" in by_name["Dead wire"].last_error
    assert sum(by_name["Dead wire"].per_day) == 0
    topics = {t.slug: sum(t.per_day) for t in data.topics}
    tagged = dict(db.execute("SELECT topic, count(*) FROM article_topics GROUP BY topic").fetchall())
    assert topics == {slug: tagged.get(slug, 0) for slug in topics} and topics["middle-east"] > 0
    assert sum(data.merged_per_day) == copies
    assert data.first_day == datetime.now(timezone.utc).date() - (date(2000, 1, DAYS) - date(2000, 1, 1))


def test_the_browser_shows_every_source_with_its_plot(ran: Path) -> None:
    path, _ = _page(ran)
    tree = lxml_html.fromstring(browser.dump_dom(path))
    rows = tree.xpath("//table[1]/tbody/tr")
    names = [row.xpath("string(td[1]/b)") for row in rows]
    assert names == ["Dead wire", "Local newsroom"]  # the failing source first
    states = [row.xpath("string(td[2])") for row in rows]
    assert states[0] != "ok" and states[1] == "ok"
    assert "127.0.0.1:9" in rows[0].xpath("string(td[1]/div[@class='error'])")
    for row in rows:
        svg = row.xpath(".//svg")
        assert len(svg) == 1 and len(svg[0].xpath("./*[local-name()='rect']")) == DAYS
    bars = rows[1].xpath(".//*[local-name()='rect']")
    assert int(float(bars[-1].get("height"))) == PLOT_HEIGHT  # today's 36 articles are the tallest bar
    assert re.match(r"\d{4}-\d\d-\d\d: 36 articles", bars[-1].xpath("string(*[local-name()='title'])"))
    topic_rows = tree.xpath("//table[2]/tbody/tr")
    assert len(topic_rows) == len(load_config(ran / "config.toml").topics)
    assert not tree.xpath("//script")


@pytest.mark.parametrize("width", [1280, 400])
def test_readable_without_sideways_scrolling(ran: Path, tmp_path: Path, width: int) -> None:
    path, _ = _page(ran)
    assert browser.layout_width(path, width) <= width
    shot = browser.screenshot(path, tmp_path / f"status-{width}.png", width)
    assert browser.png_size(shot) == (width, 900)
    assert shot.stat().st_size > 5_000  # a rendered page, not a blank image


def test_text_from_sources_is_escaped(tmp_path: Path) -> None:
    from aggregator.publish.status_page import SourceStatus, StatusData

    data = StatusData("<Digest>", "2026-01-01", date(2026, 1, 1),
                      (SourceStatus("<script>x</script>", "remote", "failing", "", "<img src=x onerror=1>",
                                    (0,) * DAYS),))
    path = tmp_path / "status.html"
    path.write_text(render_status_page(data), encoding="utf-8")
    tree = lxml_html.fromstring(browser.dump_dom(path))
    assert not tree.xpath("//script") and not tree.xpath("//img")
    assert tree.xpath("string(//tbody/tr/td[1]/b)") == "<script>x</script>"


def test_run_once_writes_the_page_and_links_it_only_when_it_may_differ(ran: Path) -> None:
    page = ran / "feeds" / "status.html"
    assert page.exists() and 'href="status.html"' in (ran / "feeds" / "index.html").read_text()
    assert "Dead wire" in page.read_text() and "Local newsroom" in page.read_text()
    written = page.stat().st_mtime_ns
    config = ran / "config.toml"
    CliRunner().invoke(cli, ["-c", str(config), "run", "--once"])  # the dead source fails again: its row changes
    assert page.stat().st_mtime_ns != written
    db = sqlite3.connect(load_config(config).storage.database)
    db.execute("UPDATE sources SET error_count = 0")  # not what a run writes; only to prove the stamp is read
    db.commit()
    from aggregator.publish.status_page import write_status_page

    with Store(load_config(config).storage.database) as store:
        assert write_status_page(load_config(config), store).written is True
        assert write_status_page(load_config(config), store).written is False  # nothing it shows changed
