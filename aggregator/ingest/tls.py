"""The TLS context for feed fetches: certificates verified against the host name with Mozilla's CA bundle.

Its own module because only an https fetch needs it: a refresh of
plain-http feeds never reads the CA bundle.
"""

from __future__ import annotations

import ssl

import certifi


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """As browsers verify: the host name and the chain, against certifi's bundle or `ca_file` (tests' own CA)."""
    return ssl.create_default_context(cafile=ca_file or certifi.where())
