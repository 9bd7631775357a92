"""The destination policy of core.networks: pure, no sockets but the resolver's numeric forms."""

from __future__ import annotations

import re

import pytest

from core.networks import NetworkError, NetworkPolicy, literal_address, parse_networks

DEFAULT = NetworkPolicy()


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.9.9.9", "127.0.0.0/8"),
        ("::1", "::1/128"),
        ("0.0.0.0", "0.0.0.0/8"),  # noqa: S104 - an address judged, not bound
        ("::", "::/128"),
        ("169.254.169.254", "169.254.0.0/16"),  # AWS, GCP, Azure, DigitalOcean metadata
        ("fe80::1", "fe80::/10"),
        ("fe80::1%2", "fe80::/10"),
        ("100.100.100.200", "100.100.100.200/32"),  # Alibaba
        ("fd00:ec2::254", "fd00:ec2::254/128"),  # AWS over IPv6
        ("::ffff:127.0.0.1", "127.0.0.0/8"),  # IPv4-mapped: judged as the IPv4 address
        ("::ffff:169.254.169.254", "169.254.0.0/16"),
        ("224.0.0.1", "224.0.0.0/4"),
        ("ff02::1", "ff00::/8"),
        ("255.255.255.255", "255.255.255.255/32"),
    ],
)
def test_loopback_link_local_metadata_and_multicast_are_denied_by_default(address, network):
    why = DEFAULT.refusal(address)
    assert why is not None and why.startswith(f"{network} (")
    assert not DEFAULT.is_allowed(address)


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "172.16.0.1", "192.168.1.10", "fd12:3456::1", "8.8.8.8", "2001:db8::1"]
)
def test_private_and_public_addresses_are_allowed_by_default(address):
    assert DEFAULT.is_allowed(address)


def test_an_admin_allows_more_or_denies_private_ranges_and_the_most_specific_network_decides():
    policy = NetworkPolicy(
        allowed=parse_networks("127.0.0.0/8, 10.1.2.3"),
        denied=parse_networks(["10.0.0.0/8", "192.168.0.0/16"]),
    )
    assert policy.is_allowed("127.0.0.1")  # the admin's list beats the built-in one
    assert policy.is_allowed("10.1.2.3")  # the on-premises Jenkins, and only it
    assert policy.refusal("10.1.2.4") == "10.0.0.0/8 (denied by the admin)"
    assert not policy.is_allowed("192.168.1.1")
    assert not policy.is_allowed("169.254.169.254")  # still denied
    # Allowing a wide range does not open the metadata address inside it.
    wide = NetworkPolicy(allowed=parse_networks("fd00::/8, 169.254.0.0/16"))
    assert not wide.is_allowed("fd00:ec2::254") and wide.is_allowed("fd00::5")
    # At the same prefix, the admin's denial wins over the admin's allowance.
    both = NetworkPolicy(allowed=parse_networks("10.0.0.0/8"), denied=parse_networks("10.0.0.0/8"))
    assert not both.is_allowed("10.0.0.1")


def test_a_bad_network_is_named():
    with pytest.raises(NetworkError, match=re.escape("'10.0.0.0/33' is not a network")):
        parse_networks("192.168.0.0/16,10.0.0.0/33")
    assert parse_networks(" , ") == ()


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("::1", "::1"),
        ("jenkins.example.com", None),
    ],
)
def test_every_numeric_spelling_of_an_address_is_read_without_dns(host, address):
    found = literal_address(host)
    assert (str(found) if found is not None else None) == address
