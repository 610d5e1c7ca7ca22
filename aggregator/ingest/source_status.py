"""A source's row in the `sources` table: what a read means for it, and how it is listed.

`status_after_read` is a pure decider in the manner of reader's `_update.py`:
it takes the read's report and the source's previous row and returns the
fields to store, touching nothing. The pipeline performs it, in the same
transaction as the batch it describes, for every entry point alike (`run
--once`, `ingest PATH`, the daemon), so a source's row never depends on
which command read it. A fetched feed's fields come from the same kind of
decision in ingest/remote.py, which also knows the HTTP answer.

`source_rows` is the listing `aggregator sources` prints.
"""

from __future__ import annotations

from typing import Any, Mapping

from aggregator.config import Config, SourceConfig
from aggregator.models import IngestReport, warning_line
from aggregator.redact import redact


def status_after_read(source: SourceConfig, report: IngestReport, previous: Mapping[str, Any],
                      when: str) -> dict[str, Any]:
    """The fields of a source's row after a folder was read, or after any source's read raised.

    `when` is the moment of the read as stored (iso_utc). An error counts one
    more failure in a row; a read without one clears the error and the count.
    `warning` keeps what the read was read in spite of, until a read without.
    """
    fields = {"kind": source.kind, "location": source.location, "last_fetch": when,
              "warning": warning_line(report.warnings)}
    if report.error:
        return {**fields, "status": "error", "last_error": report.error,
                "error_count": (previous.get("error_count") or 0) + 1}
    return {**fields, "status": "ok", "last_success": when, "last_error": None, "error_count": 0}


def source_rows(config: Config, store: Any) -> list[dict[str, Any]]:
    """Config order; stored state where there is some. Plain values, ready for JSON."""
    states = store.source_states()
    counts = store.source_counts()
    rows = []
    for source in config.sources:
        state = states.get(source.name, {})
        location = source.location
        if source.url and state.get("url") and state.get("url") != source.url:  # redacted below, with the rest
            how = (f"the feed linked from the web page {state['found_on']}; put its URL in the source's url"
                   if state.get("found_on") else "moved permanently")
            location = f"{source.url} -> {state['url']} ({how})"
        status = state.get("status") or ("never fetched" if source.url else "-")
        if not source.enabled:
            status = "disabled"
        rows.append({
            "name": source.name, "kind": source.kind, "location": location, "status": status,
            "last_fetch": state.get("last_fetch"), "last_success": state.get("last_success"),
            "last_error": " ".join(str(state.get("last_error") or "").split()) or None,
            "warning": " ".join(str(state.get("warning") or "").split()) or None,  # read in spite of it
            "next_due": state.get("next_due"), "http_status": state.get("http_status"),
            "error_count": state.get("error_count") or 0, "articles": counts.get(source.name, 0),
            "found_on": state.get("found_on"),  # the web page the feed was found on, if url is one
        })
    return [{key: redact(value) if isinstance(value, str) else value for key, value in row.items()} for row in rows]
