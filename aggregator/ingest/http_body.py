"""A response's body: bounded while it streams in, decompressed with bounded output, whole or refused.

The size limit is counted after decompression with a bounded output per
read, so a gzip bomb cannot balloon in memory; the deadline is checked at
every read. A body shorter than its Content-Length, or cut off inside a
chunk or inside its compressed stream, is an error: half a feed is never
taken for the whole.
"""

from __future__ import annotations

import http.client
import zlib

from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError

from aggregator.ingest.http_errors import FetchError
from aggregator.ingest.transport import Deadline

DRAIN_LIMIT = 64 * 1024  # a 304, redirect or error body up to this is read so its connection is reused
CHUNK = 64 * 1024  # bytes read from the socket per step
ALLOWED_ENCODINGS = {"", "identity", "gzip", "x-gzip", "deflate"}  # we send Accept-Encoding: gzip, deflate


class _Decoder:
    """Content-Encoding -> bytes, never more than asked for per step, and sure the stream ended.

    urllib3 decodes with bounded output too, but takes a gzip stream that
    stops halfway (no trailer) for a whole one; a close-delimited body gives
    no other sign that it was cut.
    """

    def __init__(self, encoding: str):
        self.encoding = encoding
        self._inflater = self._new() if encoding not in ("", "identity") else None
        self._raw_deflate_tried = False

    def _new(self, raw: bool = False) -> "zlib._Decompress":
        if raw:
            return zlib.decompressobj(-zlib.MAX_WBITS)  # deflate without the zlib header, as some servers send
        return zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in self.encoding else zlib.MAX_WBITS)

    def feed(self, data: bytes, limit: int) -> bytes:
        if self._inflater is None:
            return data
        try:
            out = self._inflater.decompress(data, limit)
        except zlib.error:
            if self.encoding != "deflate" or self._raw_deflate_tried:
                raise FetchError(f"the {self.encoding}-compressed body is corrupt") from None
            self._raw_deflate_tried = True
            self._inflater = self._new(raw=True)
            return self.feed(data, limit)
        self._raw_deflate_tried = True  # the header was fine: no second guess later in the stream
        if self._inflater.eof and self._inflater.unused_data.strip(b"\0"):  # another gzip member follows
            rest, self._inflater = self._inflater.unused_data, self._new()
            out += self.feed(rest, max(limit - len(out), 1))
        return out

    def finish(self) -> None:
        if self._inflater is not None and not self._inflater.eof:
            raise FetchError(f"the {self.encoding}-compressed body ends before its compressed stream does "
                             "(cut off); nothing from it was stored, it will be retried")


def read_body(response: BaseHTTPResponse, max_size: int, deadline: Deadline) -> bytes:
    """The decoded body, or FetchError once it passes max_size bytes or the deadline, or if it was cut short."""
    encoding = (response.headers.get("content-encoding") or "").strip().lower()
    if encoding not in ALLOWED_ENCODINGS:
        raise FetchError(f"the server used Content-Encoding {encoding!r}, which we did not ask for")
    declared = response.headers.get("content-length") or ""
    if encoding in ("", "identity") and declared.isdigit() and int(declared) > max_size:
        raise FetchError(_too_large(max_size))
    decoder = _Decoder(encoding)
    parts: list[bytes] = []
    total = 0
    received = False
    while chunk := response.read1(CHUNK, decode_content=False):
        received = True
        piece = decoder.feed(chunk, max_size - total + 1)
        total += len(piece)
        if total > max_size:
            raise FetchError(_too_large(max_size) + (f" (after {encoding} decompression)" if encoding else ""))
        if deadline.expired or deadline.seconds_left() <= 0:
            raise FetchError("the download took longer than the total timeout (fetch.timeout); "
                             "the server is too slow")
        parts.append(piece)
    if deadline.expired:  # the watchdog ended a body that had no declared length: it is not whole
        raise FetchError("the download took longer than the total timeout (fetch.timeout); the server is too slow")
    if received:  # no bytes at all (a 304, a HEAD-like empty answer) is an empty body in any encoding
        decoder.finish()
    return b"".join(parts)


def drain(response: BaseHTTPResponse, deadline: Deadline) -> None:
    """Read a body we do not use (a 304's is empty) so the connection goes back to the pool.

    A connection whose response was not read to the end cannot carry the
    next request: an unchanged refresh would pay a new TCP connection for
    every feed. A large or broken body is given up on; its connection closes.
    """
    try:
        read_body(response, DRAIN_LIMIT, deadline)
    except (FetchError, HTTPError, OSError, http.client.HTTPException):
        response.close()


def _too_large(max_size: int) -> str:
    size = f"{max_size / 1_000_000:g} MB" if max_size >= 1_000_000 else f"{max_size} bytes"
    return f"the feed is larger than the {size} limit (fetch.max_body_size); nothing from it was stored"
