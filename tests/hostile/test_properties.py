"""Property tests: for any input, only the project's own clear errors come out.

Hypothesis generates the inputs; each property is a promise another module
relies on (a URL we publish is http(s); a config mistake is a ConfigError).
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from aggregator.config import ConfigError, TopicConfig, load_config, parse_config
from aggregator.models import Article
from aggregator.enrich.urls import canonical_url, safe_url
from aggregator.ingest.plaintext import NotAnArticle, parse_plaintext
from aggregator.enrich.topics import TopicRules

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- plain-text article parser ---

lines = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "Related Posts", "Follow the Site on Google News", "FILE PHOTO: x", "World",
                     "Middle EastUSAWorld", "\ufeff", "\u00a0", "\r", "USA", "A sentence."]),
)


@FAST
@given(st.lists(lines, max_size=30), st.lists(st.text(max_size=20), max_size=5))
def test_plaintext_parser_raises_only_not_an_article(parts: list[str], known: list[str]) -> None:
    text = "\n".join(parts)
    try:
        parsed = parse_plaintext(text, tuple(known))
    except NotAnArticle:
        return
    assert parsed.paragraphs and all(isinstance(p, str) for p in parsed.paragraphs)
    assert "Related Posts" not in parsed.paragraphs


@FAST
@given(st.text(max_size=2000))
def test_plaintext_parser_on_any_text(text: str) -> None:
    try:
        parse_plaintext(text)
    except NotAnArticle:
        pass


# --- URL normalization ---

url_parts = st.one_of(
    st.text(max_size=60),
    st.builds(lambda scheme, host, rest: f"{scheme}{host}{rest}",
              st.sampled_from(["http://", "https://", "HTTP://", "javascript:", "java\tscript:", "data:",
                               "//", "http:\\\\", "ftp://", "", " http://", "&#106;avascript:"]),
              st.sampled_from(["example.com", "EXAMPLE.com.", "[::1]", "[::ffff:127.0.0.1]", "a@b.com",
                               "b.com\\@a.com", "amp.example.com", "x:99999", "x:-1", "x:", "[bad", "",
                               "\u0130.com", "xn--nxasmq6b.com", "%00", "1.2.3.4:80"]),
              st.text(alphabet="/?#&=%.:;@!$'()*+,~ abcAMP_-\t\n\x00", max_size=40)),
)
SAFE = re.compile(r"^https?://[^\x00-\x20\x7f]+$", re.I)  # ASCII controls and spaces: what a scheme check can be fooled by


@settings(max_examples=300, deadline=None)
@given(url_parts, st.one_of(st.none(), url_parts))
def test_safe_url_is_none_or_absolute_http(url: str, base: str | None) -> None:
    result = safe_url(url, base)
    assert result is None or (SAFE.match(result) and "\\" not in result), result


@settings(max_examples=300, deadline=None)
@given(url_parts)
def test_canonical_url_is_none_or_stable_http(url: str) -> None:
    result = canonical_url(url)
    if result is None:
        return
    assert SAFE.match(result), result
    assert "#" not in result
    assert canonical_url(result) == result, "canonical form must be a fixed point"


# --- config validation ---

toml_scalars = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=True), st.booleans(),
                         st.sampled_from(["15m", "0s", "-1h", "auto", "10MB", "1e9gb", "http://e.com/",
                                          "file:///etc/passwd", "(a+)+", "[", "127.0.0.1:8080"]))
toml_values = st.recursive(toml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
keys = st.sampled_from(["site", "storage", "publish", "ingest", "fetch", "dedup", "server", "sources",
                        "topics", "title", "name", "url", "path", "interval", "regex", "keywords", "x"])
config_tables = st.dictionaries(keys, toml_values, max_size=6)
source_tables = st.lists(st.dictionaries(
    st.sampled_from(["name", "url", "path", "interval", "topics", "include", "enabled", "bogus"]),
    toml_values, max_size=5), max_size=3)
topic_tables = st.dictionaries(st.text(max_size=12), st.dictionaries(
    st.sampled_from(["title", "keywords", "regex", "exclude", "min_score", "categories", "sources"]),
    toml_values, max_size=4), max_size=3)


@FAST
@given(config_tables)
def test_parse_config_raises_only_config_error(raw: dict) -> None:
    try:
        parse_config(raw, Path("/tmp/config.toml"))
    except ConfigError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)


@FAST
@given(source_tables, topic_tables)
def test_sources_and_topics_raise_only_config_error(sources: list, topics: dict) -> None:
    try:
        config = parse_config({"sources": sources, "topics": topics}, Path("/tmp/config.toml"))
    except ConfigError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)
        return
    for topic in config.topics:
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", topic.slug)
    TopicRules(config.topics)  # what a valid config promises: its rules compile


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_load_config_on_any_bytes_raises_only_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet='[]{}="\'.,=\n #abc123-_:\\tuflsen', max_size=200))
def test_load_config_on_toml_like_text_raises_only_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError:
        pass


# --- topic matching ---

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=15)


@FAST
@given(st.lists(words, max_size=5), st.lists(words, max_size=3), st.lists(words, max_size=3),
       st.text(max_size=200), st.text(max_size=500), st.lists(words, max_size=3), st.floats(-5, 50))
def test_topic_rules_never_raise(keywords, excludes, categories, title, text, article_categories, min_score):
    topic = TopicConfig(slug="t", title="T", keywords=tuple(keywords), exclude=tuple(excludes),
                        categories=tuple(categories), min_score=min_score)
    rules = TopicRules((topic,))
    article = Article(id="x", source="s", title=title, text=text, categories=article_categories)
    tags = rules.tags(article)
    assert tags in ([], ["t"])
    explained = rules.explain(article)[0]
    assert explained.matched == (tags == ["t"])


@FAST
@given(st.lists(st.text(max_size=8), min_size=1, max_size=3), st.text(max_size=300))
def test_topic_rules_match_a_keyword_present_in_the_title(keywords: list[str], filler: str) -> None:
    keyword = next((k for k in keywords if re.fullmatch(r"[a-z]{3,8}", k)), None)
    if keyword is None:
        return
    topic = TopicConfig(slug="t", title="T", keywords=(keyword,))
    article = Article(id="x", source="s", title=f"{filler} {keyword} {filler}", text="")
    # A keyword as its own word in the title always matches (filler may only add hits).
    if re.search(rf"(?<!\w){keyword}(?!\w)", f" {keyword} "):
        assert TopicRules((topic,)).tags(article) == ["t"]
