"""The anonymous limit counts an IPv6 client by its /64: a client is usually handed a whole /64, and
counted address by address it could send without any limit."""

from __future__ import annotations

from adapters.http.middleware import address_key, client_of


def test_ipv6_addresses_of_one_64_share_a_key_and_ipv4_addresses_keep_their_own() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:ffff:ffff:fffe") == "addr:2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key("fe80::1%eth0") == "addr:fe80::/64"
    assert address_key("192.0.2.1") == "addr:192.0.2.1" != address_key("192.0.2.2"), "as before: IPv4 keys unchanged"
    assert address_key(None) == "addr:unknown"
    assert client_of("192.0.2.1") == "192.0.2.1" and client_of("2001:db8::1") == "2001:db8::/64"
    assert client_of("::ffff:192.0.2.1") == "192.0.2.1", "an IPv4 client on a dual-stack socket is that address"
    assert client_of("::ffff:192.0.2.2") != client_of("::ffff:192.0.2.1")
