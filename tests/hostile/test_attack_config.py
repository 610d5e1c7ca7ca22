"""Config attacks: every mistake or trick is one clear line naming the key path, never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.app.cli import cli
from aggregator.config import ConfigError, load_config
from aggregator.enrich.topics import TopicRules
from aggregator.models import Article

from .hostile_support import run_isolated

HEADER = '[site]\ntitle = "T"\n\n'
FEED = '[[sources]]\nname = "a"\nurl = "http://example.com/feed"\n'

CASES = {
    "invalid-toml": ('[site\ntitle = "x"\n', ["invalid TOML"]),
    "unclosed-string": ('[site]\ntitle = "x\n', ["invalid TOML"]),
    "duplicate-key": ('[site]\ntitle = "a"\ntitle = "b"\n', ["invalid TOML"]),
    "unknown-section": ("[sites]\n", ["sites: unknown section", "did you mean 'site'"]),
    "unknown-key": ('[site]\ntitel = "x"\n', ["site.titel: unknown key", "did you mean 'title'"]),
    "wrong-type-string": ("[site]\ntitle = 3\n", ["site.title: expected a string"]),
    "wrong-type-table": ('site = "x"\n', ["site: expected a table"]),
    "wrong-type-list": ('[[sources]]\nname = "a"\nurl = "http://e.com/"\ntopics = "world"\n',
                        ["sources[0].topics", "expected a list of strings"]),
    "sources-not-list": ('sources = "x"\n', ["sources: expected [[sources]] entries"]),
    "source-not-table": ("sources = [1, 2]\n", ["sources[0]: expected a table"]),
    "topics-not-table": ("topics = [1]\n", ["topics: expected tables"]),
    "bool-as-int": ("[publish]\nmax_items = true\n", ["publish.max_items: expected a whole number"]),
    "duplicate-source": (FEED + FEED, ["sources[1] (a): duplicate source name"]),
    "missing-name": ('[[sources]]\nurl = "http://e.com/"\n', ['sources[0]: missing "name"']),
    "path-and-url": ('[[sources]]\nname = "a"\nurl = "http://e.com/"\npath = "x"\n', ["exactly one of"]),
    "slug-dotdot": ('[topics."../../etc"]\n', ["topics.../../etc", "lowercase letters"]),
    "slug-slash": ('[topics."a/b"]\n', ["topics.a/b", "lowercase letters"]),
    "slug-backslash": ('[topics."a\\\\b"]\n', ["lowercase letters"]),
    "slug-dot": ('[topics."."]\n', ["lowercase letters"]),
    "slug-newline": ('[topics."world\\n"]\n', ["lowercase letters"]),
    "slug-nul": ('[topics."world\\u0000"]\n', ["lowercase letters"]),
    "slug-reserved": ("[topics.index]\n", ["topics.index", "reserved"]),
    "slug-all": ("[topics.all]\n", ["topics.all", "reserved"]),
    "slug-upper": ("[topics.World]\n", ["topics.World", "lowercase"]),
    "bad-regex": ('[topics.w]\nregex = ["(unclosed"]\n', ["topics.w.regex: invalid regular expression"]),
    "regex-nested-plus": ('[topics.w]\nregex = ["(a+)+$"]\n', ["topics.w.regex", "exponential time"]),
    "regex-nested-star": ('[topics.w]\nregex = ["(\\\\w+\\\\s?)*$"]\n', ["topics.w.regex", "exponential"]),
    "regex-alternation": ('[topics.w]\nregex = ["(?:x+|y)+z"]\n', ["topics.w.regex", "exponential"]),
    "regex-huge-repeat": ('[topics.w]\nregex = ["a{99999999999}"]\n', ["topics.w.regex: invalid"]),
    "regex-deep": ('[topics.w]\nregex = ["' + "(" * 3000 + ")" * 3000 + '"]\n', ["topics.w.regex: invalid"]),
    "interval-zero": (FEED + "interval = 0\n", ["sources[0].interval: expected a positive duration"]),
    "interval-negative": (FEED + 'interval = "-5m"\n', ["sources[0].interval"]),
    "interval-negative-number": (FEED + "interval = -1\n", ["sources[0].interval", "positive"]),
    "interval-nan": (FEED + "interval = nan\n", ["sources[0].interval", "positive"]),
    "interval-inf": (FEED + "interval = inf\n", ["sources[0].interval", "positive"]),
    "interval-zero-string": (FEED + 'interval = "0s"\n', ["sources[0].interval", "positive"]),
    "timeout-zero": ('[fetch]\ntimeout = "0s"\n', ["fetch.timeout", "positive"]),
    "size-negative": ("[fetch]\nmax_body_size = -1\n", ["fetch.max_body_size", "positive"]),
    "size-overflow": ('[fetch]\nmax_body_size = "' + "9" * 400 + 'MB"\n', ["fetch.max_body_size", "positive"]),
    "min-score-nan": ("[topics.w]\nmin_score = nan\n", ["topics.w.min_score", "expected a number"]),
    "threshold-out-of-range": ("[dedup]\nthreshold = 7\n", ["dedup.threshold"]),
    "scheme-file": ('[[sources]]\nname = "a"\nurl = "file:///etc/passwd"\n', ["sources[0].url", "only http"]),
    "scheme-ftp": ('[[sources]]\nname = "a"\nurl = "ftp://example.com/f"\n', ["sources[0].url", "only http"]),
    "scheme-javascript": ('[[sources]]\nname = "a"\nurl = "javascript:alert(1)"\n', ["sources[0].url"]),
    "scheme-gopher": ('[[sources]]\nname = "a"\nurl = "gopher://example.com/"\n', ["sources[0].url"]),
    "scheme-missing-host": ('[[sources]]\nname = "a"\nurl = "http:///x"\n', ["sources[0].url"]),
    "base-url-scheme": ('[site]\nbase_url = "javascript:alert(1)"\n', ["site.base_url"]),
    "base-url-breakout": ('[site]\nbase_url = "http://x/\\"><script>alert(1)</script>"\n', ["site.base_url"]),
    "listen-unicode-digits": ('[server]\nlisten = "127.0.0.1:\u00b2"\n', ["server.listen", "HOST:PORT"]),
    "listen-port-range": ('[server]\nlisten = "127.0.0.1:70000"\n', ["server.listen"]),
    "formats-unknown": ('[publish]\nformats = ["atom", "exe"]\n', ["publish.formats"]),
    "unknown-topic-in-source": (FEED + 'topics = ["nope"]\n', ["sources[0] (a).topics: no topic named 'nope'"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_attack_is_one_clear_error(tmp_path: Path, name: str) -> None:
    text, expected = CASES[name]
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    # And the CLI prints it as error lines with exit status 78 (EX_CONFIG), not a traceback.
    result = CliRunner().invoke(cli, ["-c", str(path), "check"], catch_exceptions=False)
    assert result.exit_code == 78
    assert "Traceback" not in result.output
    assert all(line.startswith("error: ") for line in result.stderr.splitlines() if line), result.stderr


def test_non_utf8_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[site]\ntitle = "Caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte \d+\); save the file as UTF-8"):
        load_config(path)


def test_utf16_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[site]\ntitle = "x"\n'.encode("utf-16"))
    with pytest.raises(ConfigError):
        load_config(path)


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{a=", "}")])
def test_deeply_nested_config_is_a_clear_error(tmp_path: Path, opener: str, closer: str) -> None:
    """tomllib recurses per level: 100,000 levels is a RecursionError unless the loader catches it."""
    path = tmp_path / "config.toml"
    path.write_text("x = " + opener * 100_000 + closer * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply|invalid TOML"):
        load_config(path)


def test_config_that_is_a_folder_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_binary_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError):
        load_config(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HEADER + FEED + FEED + 'interval = 0\n[topics."../x"]\n[topics.w]\nregex = ["(a+)+"]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) >= 4


def test_catastrophic_regex_that_slips_past_the_check_is_bounded_in_time() -> None:
    """(a|a)*$ has no nested quantifier, so only the time limit in topics.py stops it.

    Run in a child: with plain `re` the search takes 2**40 steps and the child times out.
    """
    result = run_isolated("""
        import time
        from aggregator.config import TopicConfig
        from aggregator.models import Article
        from aggregator.enrich.topics import TopicRules
        rules = TopicRules((TopicConfig(slug="w", title="W", regex=("(a|a)*$",)),))
        article = Article(id="x", source="s", title="a" * 40 + "!", text="a" * 40 + "!")
        start = time.monotonic()
        print(rules.tags(article), round(time.monotonic() - start, 2))
    """, timeout=30)
    assert not result.timed_out, "a backtracking topic regex ran unbounded"
    assert result.returncode == 0, result.stderr
    tags, seconds = result.stdout.split("] ")
    assert tags == "["
    assert float(seconds) < 5


def test_topic_regex_on_a_huge_body_stays_bounded() -> None:
    """A polynomial pattern on a 5 MB body: bounded by the per-search timeout."""
    rules = TopicRules((__import__("aggregator.config").config.TopicConfig(
        slug="w", title="W", regex=(r"\s*\s*\s*x$",)),))
    article = Article(id="x", source="s", title="t", text=" " * 5_000_000 + "y")
    start = time.monotonic()
    assert rules.tags(article) == []
    assert time.monotonic() - start < 5
