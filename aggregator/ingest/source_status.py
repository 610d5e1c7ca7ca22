"""One status row per configured source, for `aggregator sources`."""

from __future__ import annotations

from typing import Any

from aggregator.config import Config
from aggregator.redact import redact


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
