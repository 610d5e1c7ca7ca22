"""Helpers shared by tests: paths to our fixtures and a writer for article files."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "articles"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

BASIC_CONFIG = """
[site]
title = "Test Digest"
base_url = "http://127.0.0.1:8080/"

[storage]
database = "data/test.db"
feeds_dir = "feeds"

[publish]
max_items = 50
related_posts = 3

[ingest]
known_categories = ["Middle East", "USA", "World", "Europe", "EU", "UK", "Economy", "Business",
                    "Technology", "AI", "Climate", "Environment", "Science", "Sport", "Politics", "Health"]

[[sources]]
name = "Local newsroom"
path = "articles"

[topics.middle-east]
title = "Middle East"
keywords = ["iraq", "syria", "gaza", "israel", "iran", "lebanon", "yemen", "baghdad"]
categories = ["Middle East"]
exclude = ["football"]

[topics.europe]
title = "Europe"
keywords = ["european union", "brussels", "germany", "france", "greece", "poland", "european commission"]
categories = ["Europe", "EU"]

[topics.technology]
title = "Technology"
keywords = ["artificial intelligence", "semiconductor", "software", "chipmaker", "data centre", "cyberattack", "startup"]
categories = ["Technology", "AI"]

[topics.climate]
title = "Climate"
keywords = ["climate", "emissions", "heatwave", "wildfire", "drought", "renewable", "carbon"]
categories = ["Climate", "Environment"]

[topics.economy]
title = "Economy"
keywords = ["inflation", "interest rates", "central bank", "gdp", "recession", "tariffs"]
categories = ["Economy", "Business"]
"""


def write_article(folder: Path, name: str, *, site: str = "Test Site", categories: str = "World",
                  title: str = "A title", paragraphs: tuple[str, ...] = ("A body paragraph.",),
                  related: tuple[tuple[str, str], ...] = ()) -> Path:
    """Write one plain-text article file in the saved-page format."""
    lines = [site, categories, "", title, ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    if related:
        lines += ["Related Posts", ""]
        for related_title, author in related:
            lines += [related_title, "", author, ""]
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
