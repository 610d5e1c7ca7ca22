"""A Unicode host name as it goes on the wire: IDNA 2008 after UTS #46 mapping, as browsers send it.

Its own module because only a non-ASCII host name needs the `idna` package:
a fetch of ordinary hosts never loads it.
"""

from __future__ import annotations

import idna


def ascii_host(host: str) -> str:
    """'xn--strae-oqa.de' for 'straße.de'; UnicodeError or ValueError (idna.IDNAError) for no valid name."""
    return idna.encode(host, uts46=True).decode("ascii")
