"""Topic `regex` rules: compiled and judged by the engine that runs them.

A rule is a user's pattern run on every article, so `aggregator check`
must accept exactly what tagging can run (the `regex` package, with its
`\\p{L}`, `\\X` and possessive quantifiers) and refuse, with the reason, what
it cannot. The `regex` package, not the standard `re`: only `regex` has a
time limit per search, which enrich/topics.py sets.

Besides compiling, a rule is refused when an unbounded quantifier sits
inside another (`(a+)+`): on some text that takes exponential time. The time
limit bounds it anyway; this gives the usual mistake a clear error at
`aggregator check` instead of a slow run that matches nothing.

Imported on first use (config's PEP 562 `__getattr__`): a config without
regex rules never loads `regex`.
"""

from __future__ import annotations

from typing import Any, Iterator

import regex
from regex import _regex_core

from aggregator.config.checks import short_repr

FLAGS = regex.IGNORECASE | regex.VERSION0  # VERSION0: the `re`-compatible dialect, plus `regex`'s additions
LARGE_REPEAT = 100  # a bounded repeat above this backtracks like an unbounded one


def compile_rule(pattern: str) -> regex.Pattern:
    """The rule as tagging runs it."""
    return regex.compile(pattern, FLAGS)


def checked_rule(pattern: str) -> str:
    """The pattern, when the engine compiles it and it nests no repetitions; else ValueError(fix)."""
    try:
        compile_rule(pattern)
        nested = _nested_repeat(_parsed(pattern), inside_repeat=False)
    except (regex.error, ValueError, RecursionError, OverflowError) as exc:
        raise ValueError(f"invalid regular expression {short_repr(pattern)}: {exc}") from None
    if nested:
        raise ValueError(f"regular expression {short_repr(pattern)} repeats a repetition (like "
                         "(a+)+), which can take exponential time on some text; "
                         "drop the inner or the outer quantifier")
    return pattern


def _parsed(pattern: str) -> Any:
    """The engine's own parse tree of a pattern it compiles.

    The `regex` package has no public parser; these are the calls its
    `compile` makes, including its second pass when a flag group like
    `(?i)` appears after the start of the pattern.
    """
    flags = FLAGS
    while True:
        source = _regex_core.Source(pattern)
        info = _regex_core.Info(flags, source.char_type, {})
        info.guess_encoding = _regex_core.UNICODE
        source.ignore_space = bool(info.flags & _regex_core.VERBOSE)
        try:
            return _regex_core._parse_pattern(source, info)
        except _regex_core._UnscopedFlagSet:
            flags = info.global_flags


def _nested_repeat(node: Any, inside_repeat: bool) -> bool:
    """True if an unbounded quantifier sits inside another: catastrophic backtracking.

    A possessive quantifier gives nothing back, so it may sit inside one;
    an atomic group is never backtracked into, so whatever it holds starts afresh.
    """
    if isinstance(node, _regex_core.GreedyRepeat):  # lazy and possessive repeats are GreedyRepeats too
        unbounded = node.max_count is None or node.max_count > LARGE_REPEAT
        if unbounded and inside_repeat and not isinstance(node, _regex_core.PossessiveRepeat):
            return True
        return _nested_repeat(node.subpattern, inside_repeat or unbounded)
    if isinstance(node, _regex_core.Atomic):
        return _nested_repeat(node.subpattern, inside_repeat=False)
    return any(_nested_repeat(child, inside_repeat) for child in _children(node))


def _children(node: Any) -> Iterator[Any]:
    """The sub-patterns of a group, look-around, conditional, branch or sequence."""
    for name in ("subpattern", "yes_item", "no_item"):
        child = getattr(node, name, None)
        if child is not None:
            yield child
    for name in ("items", "branches"):
        yield from getattr(node, name, None) or ()
