"""The conformance table: one row per corpus file, filled by the tests, printed by conftest.py."""

from __future__ import annotations

from dataclasses import dataclass

ROWS: list["Row"] = []


@dataclass(frozen=True)
class Row:
    file: str  # relative to tests/conformance/, so its first part names the project
    well_formed: bool
    reference: int | None  # feedparser's entries with a title or content; None: no reference reading
    ours: int  # articles stored
    outcome: str  # "match", "expected difference", "error", "lenient", "lenient, differs"

    @property
    def project(self) -> str:
        return self.file.split("/", 1)[0]


def table(rows: list[Row]) -> list[str]:
    """The per-file lines, then totals per project and overall."""
    width = max(len(r.file) for r in rows)
    lines = [f"{'file':{width}}  {'form':4}  {'feedparser':>10}  {'ours':>4}  outcome"]
    for row in sorted(rows, key=lambda r: r.file):
        reference = "-" if row.reference is None else str(row.reference)
        lines.append(f"{row.file:{width}}  {'ok' if row.well_formed else 'ill':4}  {reference:>10}  "
                     f"{row.ours:>4}  {row.outcome}")
    lines.append("")
    projects = sorted({r.project for r in rows})
    for name, group in [(p, [r for r in rows if r.project == p]) for p in projects] + [("all", rows)]:
        lines.append(totals(name, group))
    return lines


def totals(name: str, rows: list[Row]) -> str:
    well = [r for r in rows if r.well_formed]
    ill = [r for r in rows if not r.well_formed]
    matches = sum(r.outcome == "match" for r in well)
    expected = sum(r.outcome == "expected difference" for r in well)
    errors = sum(r.outcome == "clear error" for r in ill)
    lenient = sum(r.outcome.startswith("lenient") for r in ill)
    lenient_expected = sum(r.outcome == "lenient, expected difference" for r in ill)
    return (f"{name:13} files {len(rows):3}  well-formed {len(well):3} (match {matches}, expected difference "
            f"{expected})  ill-formed {len(ill):2} (clear error {errors}, lenient {lenient}, of which expected "
            f"difference {lenient_expected})  entries: feedparser {sum(r.reference or 0 for r in rows)}, "
            f"ours {sum(r.ours for r in rows)}")
