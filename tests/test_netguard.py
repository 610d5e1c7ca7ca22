"""netguard: which addresses a fetch may reach, however the host is spelled."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from aggregator.ingest.netguard import (
    BlockedAddress, NetPolicy, checked_addresses, is_public, literal_address, open_connection,
    parse_ipv4_literal,
)


@pytest.mark.parametrize("host,address", [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("10.0.258", "10.0.1.2"), ("0", "0.0.0.0"),
    ("192.168.1.1.", "192.168.1.1"),
])
def test_inet_aton_forms_decode_like_the_c_resolver(host, address):
    assert str(parse_ipv4_literal(host)) == address
    assert str(ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))) == address


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.1.1.1", "0x100000000", "08.1.1.1", ""])
def test_names_are_not_literals(host):
    assert parse_ipv4_literal(host) is None


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1",
])
def test_non_public_addresses(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert is_public(ipaddress.ip_address(address))


def test_bracketed_ipv6_literal():
    assert literal_address("[::1]") == ipaddress.ip_address("::1")


def test_names_are_judged_by_what_they_resolve_to():
    with pytest.raises(BlockedAddress, match=r"refused to connect to localhost \((127\.0\.0\.1|::1)"):
        checked_addresses("localhost", 80, NetPolicy())
    assert checked_addresses("localhost", 80, NetPolicy(allow_private=True))


def test_allowed_pairs_open_exactly_one_host_and_port():
    policy = NetPolicy(allowed=frozenset({("127.0.0.1", 8080)}))
    assert checked_addresses("127.0.0.1", 8080, policy) == [ipaddress.ip_address("127.0.0.1")]
    for host, port in [("127.0.0.1", 8081), ("127.0.0.2", 8080), ("10.0.0.1", 8080)]:
        with pytest.raises(BlockedAddress):
            checked_addresses(host, port, policy)


def test_open_connection_connects_to_the_checked_address():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        with pytest.raises(BlockedAddress):
            open_connection("2130706433", port, NetPolicy(), timeout=1)
        sock = open_connection("2130706433", port, NetPolicy(allowed=frozenset({("127.0.0.1", port)})), timeout=1)
        assert sock.getpeername() == ("127.0.0.1", port)
        sock.close()
    finally:
        listener.close()
