"""Atom 1.0 checks: the RFC 4287 RELAX NG schema, plus the rules a schema cannot express.

The schema is RFC 4287 Appendix B (tests/schemas/atom.rnc), converted to
RNG XML so lxml can load it without Java. Its Schematron annotations
(author per entry, alternate link or content) are not enforced by RELAX NG
validators, so `atom_rule_errors` checks them, with RFC 3339 timezones on
dates and unique entry ids.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from lxml import etree

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "atom.rng"
A = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


@lru_cache(maxsize=1)
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def parse_xml(data: bytes) -> etree._Element:
    """Well-formedness, without network access or entity expansion."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(data, parser)


def atom_errors(data: bytes) -> list[str]:
    """Every way `data` fails to be a valid Atom document; empty when valid."""
    try:
        root = parse_xml(data)
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
    schema = atom_schema()
    errors = [] if schema.validate(root.getroottree()) else [
        f"RELAX NG: line {e.line}: {e.message}" for e in schema.error_log]
    return errors + atom_rule_errors(root)


def atom_rule_errors(root: etree._Element) -> list[str]:
    errors: list[str] = []
    entries = [root] if root.tag == A + "entry" else root.findall(A + "entry")
    feed_author = root.tag == A + "feed" and root.find(A + "author") is not None
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        links = entry.findall(A + "link")
        if not any(link.get("rel", "alternate") == "alternate" for link in links) \
                and entry.find(A + "content") is None:
            errors.append(f"entry #{number}: needs a rel=alternate link or content (RFC 4287 4.1.2)")
        if entry.find(A + "author") is None and entry.find(f"{A}source/{A}author") is None and not feed_author:
            errors.append(f"entry #{number}: no author in entry, source or feed (RFC 4287 4.1.2)")
        alternates = [(link.get("type"), link.get("hreflang")) for link in links
                      if link.get("rel", "alternate") == "alternate"]
        if len(alternates) != len(set(alternates)):
            errors.append(f"entry #{number}: two alternate links with the same type and hreflang")
        entry_id = (entry.findtext(A + "id") or "").strip()
        if entry_id in seen:
            errors.append(f"entry #{number}: duplicate id {entry_id!r} (also entry #{seen[entry_id]})")
        seen.setdefault(entry_id, number)
    for element in root.iter(A + "updated", A + "published"):
        if not RFC3339.match((element.text or "").strip()):
            errors.append(f"{element.tag[len(A):]} {element.text!r}: not RFC 3339 with a timezone")
    return errors
