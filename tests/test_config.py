"""config.toml validation: every user mistake is one clear line naming file, key path and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.app.cli import cli
from aggregator.config import ConfigError, config_path, load_config, parse_duration, parse_size


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def test_minimal_config_gets_defaults_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[sources]]\nname = "a"\npath = "in"\n'))
    assert config.storage.database == tmp_path / "aggregator.db"
    assert config.storage.feeds_dir == tmp_path / "feeds"
    assert config.sources[0].path == tmp_path / "in"
    assert config.publish.max_items == 50 and config.publish.related_posts == 5
    assert config.site.base_url.endswith("/")


def test_full_example_from_the_issue(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[site]
title = "Newsroom Digest"
base_url = "http://127.0.0.1:8080/"
[storage]
database = "aggregator.db"
feeds_dir = "feeds"
[publish]
max_items = 50
related_posts = 5
[[sources]]
name = "Local newsroom"
path = "samples/articles"
topics = []
[topics.middle-east]
title = "Middle East"
keywords = ["iraq", "syria", "gaza"]
categories = ["Middle East"]
exclude = ["football"]
"""))
    topic = config.topics[0]
    assert (topic.slug, topic.title, topic.keywords, topic.exclude) == (
        "middle-east", "Middle East", ("iraq", "syria", "gaza"), ("football",))


def test_wrong_type_names_file_key_path_and_what_was_expected(tmp_path: Path) -> None:
    found = problems(tmp_path, '[topics.world]\ntitle = "World"\nkeywords = 3\n')
    assert found == [f"{tmp_path / 'config.toml'}: topics.world.keywords: expected a list of strings, got 3"]


def test_unknown_key_suggests_the_nearest_valid_one(tmp_path: Path) -> None:
    found = problems(tmp_path, '[publish]\nmax_item = 5\n')
    assert len(found) == 1
    assert "publish.max_item: unknown key; did you mean 'max_items'?" in found[0]


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    assert "did you mean 'topics'?" in problems(tmp_path, "[topic.x]\ntitle='x'\n")[0]


def test_invalid_toml_reports_line_and_column(tmp_path: Path) -> None:
    found = problems(tmp_path, '[site]\ntitle = "unclosed\n')
    assert "invalid TOML" in found[0] and "line 2" in found[0] and "column" in found[0]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[publish]
max_items = 0
[[sources]]
name = "a"
[topics."Bad Slug"]
title = "x"
""")
    assert len(found) == 3
    assert any("publish.max_items: expected a number >= 1, got 0" in p for p in found)
    assert any('give exactly one of "path"' in p for p in found)
    assert any("topic names become file names" in p for p in found)


@pytest.mark.parametrize("slug", ["../../etc", "a/b", "Upper", "all", "index", "-x", "x_y"])
def test_unsafe_or_reserved_topic_slugs_are_refused(tmp_path: Path, slug: str) -> None:
    found = problems(tmp_path, f'[topics."{slug}"]\ntitle = "x"\n')
    assert "topic names become file names" in found[0]


def test_duplicate_source_names_and_unknown_topic_reference(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[[sources]]
name = "a"
path = "x"
topics = ["wrold"]
[[sources]]
name = "a"
path = "y"
[topics.world]
title = "World"
""")
    assert any("duplicate source name" in p for p in found)
    assert any("no topic named 'wrold'; did you mean 'world'?" in p for p in found)


@pytest.mark.parametrize("value, seconds", [('"30s"', 30), ('"15m"', 900), ('"2h"', 7200), ("45", 45)])
def test_intervals(tmp_path: Path, value: str, seconds: float) -> None:
    config = load_config(write(tmp_path, f'[[sources]]\nname = "a"\npath = "x"\ninterval = {value}\n'))
    assert config.sources[0].interval == seconds


@pytest.mark.parametrize("value", ['"0s"', "-5", '"soon"', "true"])
def test_bad_intervals(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, f'[[sources]]\nname = "a"\npath = "x"\ninterval = {value}\n')
    assert "interval" in found[0]


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "javascript:alert(1)", "example.com"])
def test_only_http_urls(tmp_path: Path, url: str) -> None:
    found = problems(tmp_path, f'[[sources]]\nname = "a"\nurl = "{url}"\n')
    assert "only http:// and https:// URLs" in found[0]


@pytest.mark.parametrize("value", ['"Newsroom bot\\r\\nX-Injected: 1"', '"caf\u00e9 reader"', '"  "', "3"])
def test_a_user_agent_must_be_one_printable_ascii_line(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, f"[fetch]\nuser_agent = {value}\n")
    assert "config.toml: fetch.user_agent: expected" in found[0]


def test_a_user_agent_is_kept_as_written(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[fetch]\nuser_agent = "Newsroom reader (+mailto:desk@news.example)"\n'))
    assert config.fetch.user_agent == "Newsroom reader (+mailto:desk@news.example)"
    assert load_config(write(tmp_path, "")).fetch.user_agent == ""  # the fetcher's own then


def test_bad_regex_is_reported_with_its_key(tmp_path: Path) -> None:
    found = problems(tmp_path, '[topics.world]\ntitle = "W"\nregex = ["(unclosed"]\n')
    assert "topics.world.regex: invalid regular expression" in found[0]


@pytest.mark.parametrize("pattern", [r"\p{L}+stan\b", r"\bF-?16\X", r"(?|a(x)|b(y))c", r"\d++%"])
def test_regex_rules_are_checked_by_the_engine_that_runs_them(tmp_path: Path, pattern: str) -> None:
    """`regex`-only syntax (\\p{L}, \\X, branch reset, possessive) passes `check`, as tagging runs it."""
    (tmp_path / "in").mkdir()
    # TOML literal strings ('...') keep backslashes as written.
    path = write(tmp_path, f'[[sources]]\nname = "a"\npath = "in"\n[topics.world]\nregex = [\'{pattern}\']\n')
    assert load_config(path).topics[0].regex == (pattern,)
    result = CliRunner().invoke(cli, ["-c", str(path), "check"])
    assert result.exit_code == 0, result.output
    assert "ok: 1 sources, 1 topics" in result.output


@pytest.mark.parametrize("pattern, expected", [
    (r"\p{Nope}", "invalid regular expression"),  # an unknown property: the engine says so
    (r"(?V1)a", "invalid regular expression"),  # a dialect the rules do not run in
    (r"(\p{L}+\s?)*$", "repeats a repetition"),  # nested quantifiers, in regex-only syntax
])
def test_a_bad_regex_rule_names_its_topic_and_key(tmp_path: Path, pattern: str, expected: str) -> None:
    found = problems(tmp_path, f"[topics.middle-east]\nregex = ['ok', '{pattern}']\n")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'config.toml'}: topics.middle-east.regex: ")
    assert expected in found[0]


def test_non_utf8_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[site]\ntitle = "Caf\u00e9"\n'.encode("cp1252"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)
    assert config_path(None) == Path("config.toml")
    monkeypatch.setenv("AGGREGATOR_CONFIG", "/etc/agg.toml")
    assert config_path(None) == Path("/etc/agg.toml")
    assert config_path("mine.toml") == Path("mine.toml")


def test_sizes_and_durations() -> None:
    assert parse_size("10MB") == 10_000_000 and parse_size("1MiB") == 1_048_576 and parse_size(512) == 512
    assert parse_duration("1d") == 86400
    with pytest.raises(ValueError):
        parse_size("-1")


def test_bundled_config_is_valid() -> None:
    from helpers.files import ROOT

    config = load_config(ROOT / "config.toml")
    assert len(config.topics) >= 4
    assert config.sources[0].path == ROOT / "samples" / "articles"


@pytest.mark.parametrize("keys, expected", [
    ('username = "r"', "username needs password_file too"),
    ('password_file = "pw.txt"', "password_file needs username too"),
    ('username = "r"\npassword_file = "pw.txt"\nurl = "https://me:pw@example.com/feed"', "the url holds a login too"),
])
def test_a_login_is_username_and_password_file_together(tmp_path: Path, keys: str, expected: str) -> None:
    url = "" if "url" in keys else 'url = "https://example.com/feed"\n'
    [problem] = problems(tmp_path, f'[[sources]]\nname = "Members"\n{url}{keys}\n')
    assert "sources[0] (Members)" in problem and expected in problem


def test_password_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[sources]]\nname = "M"\nurl = "https://example.com/feed"\n'
                                         'username = "reader"\npassword_file = "secrets/pw.txt"\n'))
    assert config.sources[0].password_file == tmp_path / "secrets" / "pw.txt"
