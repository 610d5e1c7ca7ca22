"""Which network addresses a feed fetch may reach, and connecting only to those.

A feed URL comes from a config file or an OPML import, and a server can
redirect anywhere, so a URL must not be able to make us talk to the
machine we run on or to its private network (SSRF). The check runs on the
*resolved* addresses, and the connection is then made to the address that
passed the check, never to a second DNS answer (DNS rebinding).

Host names that are really IPv4 literals in disguise (`2130706433`,
`0x7f.1`, `0177.0.0.1`, `127.1`) are decoded the way the C resolver
decodes them, so they are judged as the address they are.

No third-party imports: ingest/http.py plugs `open_connection` into its
HTTP client.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(Exception):
    """A request would reach an address the policy forbids; str() names it and the fix."""


@dataclass(frozen=True)
class NetPolicy:
    """What may be reached.

    `allow_private` opens every address (the `allow_private_network` config
    key). `allowed` opens exact (host, port) pairs only, so a test can reach
    its own server on 127.0.0.1 while every other private address, including
    another port on the same machine, stays closed.
    """

    allow_private: bool = False
    allowed: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    def permits(self, address: IPAddress, port: int) -> bool:
        if self.allow_private or is_public(address):
            return True
        return (str(address), port) in self.allowed


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address; IPv4-mapped IPv6 is judged as its IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour is not None and not is_public(address.sixtofour):
            return False
        if address in NAT64 and not is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)):
            return False
    if address.is_multicast or address.is_unspecified or address.is_loopback:
        return False
    if address.is_link_local or address.is_private or address.is_reserved:
        return False
    return address.is_global


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Decode inet_aton forms: 1 to 4 parts, each decimal, 0x-hex or 0-octal; None if not one."""
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        number = _aton_number(part)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = (value << (8 * (4 - len(head)))) | last
    return ipaddress.IPv4Address(value)


def _aton_number(part: str) -> int | None:
    text = part.lower()
    try:
        if text.startswith("0x"):
            return int(text[2:] or "0", 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host string denotes by itself (IPv6 in brackets or not, any IPv4 form)."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return parse_ipv4_literal(text)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host name resolves to (a literal resolves to itself)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def checked_addresses(host: str, port: int, policy: NetPolicy) -> list[IPAddress]:
    """The resolved addresses the policy permits; BlockedAddress if there are none."""
    addresses = resolve(host, port)
    allowed = [a for a in addresses if policy.permits(a, port)]
    if not allowed:
        shown = ", ".join(str(a) for a in addresses[:3]) or "no address"
        raise BlockedAddress(
            f"refused to connect to {host} ({shown}): a loopback, private, link-local, multicast "
            "or reserved address; set allow_private_network = true on the source if it is meant "
            "to be fetched")
    return allowed


def open_connection(host: str, port: int, policy: NetPolicy, timeout: float | None,
                    socket_options: Iterable[tuple] = ()) -> socket.socket:
    """A TCP socket to a permitted address of host; tries each permitted address in turn."""
    last_error: OSError | None = None
    for address in checked_addresses(host, port, policy):
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            for option in socket_options:
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((str(address), port))
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    assert last_error is not None
    raise last_error
