"""JSON Feed 1.1 checks (jsonfeed.org/version/1.1): required keys, types, dates, extensions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

VERSION = "https://jsonfeed.org/version/1.1"
STRING_KEYS = ("title", "home_page_url", "feed_url", "description", "language", "icon", "favicon",
               "next_url", "user_comment")
ITEM_STRINGS = ("url", "external_url", "title", "content_html", "content_text", "summary", "image",
                "banner_image", "language")
URL_KEYS = ("home_page_url", "feed_url", "url", "external_url", "image", "banner_image")


def json_feed_errors(data: bytes) -> list[str]:
    try:
        feed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"not UTF-8 JSON: {error}"]
    if not isinstance(feed, dict):
        return ["top level must be an object"]
    errors = []
    if feed.get("version") != VERSION:
        errors.append(f"version {feed.get('version')!r}, expected {VERSION!r}")
    if not isinstance(feed.get("title"), str) or not feed["title"]:
        errors.append("feed: title is required")
    errors += _typed("feed", feed, STRING_KEYS) + _urls("feed", feed) + _authors("feed", feed)
    errors += _extensions("feed", feed, {"version", "items", "authors", "expired", "hubs", *STRING_KEYS})
    items = feed.get("items")
    if not isinstance(items, list):
        return errors + ["feed: items must be an array"]
    ids: dict[str, int] = {}
    for number, item in enumerate(items, 1):
        errors += _item_errors(f"item #{number}", item, ids, number)
    return errors


def _item_errors(where: str, item: Any, ids: dict[str, int], number: int) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: must be an object"]
    errors = _typed(where, item, ITEM_STRINGS) + _urls(where, item) + _authors(where, item)
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        errors.append(f"{where}: id must be a non-empty string")
    elif item_id in ids:
        errors.append(f"{where}: duplicate id {item_id!r} (also item #{ids[item_id]})")
    else:
        ids[item_id] = number
    if "content_html" not in item and "content_text" not in item:
        errors.append(f"{where}: needs content_html or content_text")
    for key in ("date_published", "date_modified"):
        if key in item and not _rfc3339(item[key]):
            errors.append(f"{where}: {key} {item[key]!r} is not RFC 3339 with a timezone")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append(f"{where}: tags must be an array of strings")
    for attachment in item.get("attachments", []):
        if not isinstance(attachment, dict) or not attachment.get("url") or not attachment.get("mime_type"):
            errors.append(f"{where}: attachment needs url and mime_type")
    known = {"id", "tags", "authors", "attachments", "date_published", "date_modified", *ITEM_STRINGS}
    return errors + _extensions(where, item, known)


def _typed(where: str, obj: dict, keys: tuple[str, ...]) -> list[str]:
    return [f"{where}: {key} must be a string" for key in keys if key in obj and not isinstance(obj[key], str)]


def _urls(where: str, obj: dict) -> list[str]:
    return [f"{where}: {key} {obj[key]!r} is not an absolute http(s) URL" for key in URL_KEYS
            if isinstance(obj.get(key), str) and not _http(obj[key])]


def _authors(where: str, obj: dict) -> list[str]:
    if "author" in obj:
        return [f"{where}: 'author' is JSON Feed 1.0; 1.1 uses 'authors'"]
    authors = obj.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, dict) and (a.get("name") or a.get("url"))
                                                for a in authors):
        return [f"{where}: authors must be objects with a name or url"]
    return []


def _extensions(where: str, obj: dict, known: set[str]) -> list[str]:
    errors = []
    for key, value in obj.items():
        if key in known:
            continue
        if not key.startswith("_") or len(key) < 2 or not key[1].isalpha():
            errors.append(f"{where}: unknown key {key!r} (extensions start with '_' and a letter)")
        elif isinstance(value, dict) and "about" not in value:
            errors.append(f"{where}: extension {key} should say what it is in 'about'")
    return errors


def _rfc3339(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def _http(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
