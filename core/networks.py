"""Where Muster may connect on an admin's behalf (runbook actions; later, outgoing webhooks).

Pure: no settings, no Django. A policy is three lists of networks, and the most specific network
that holds an address decides (the longest prefix). At the same prefix the admin's lists beat
the built-in one, and the admin's denial beats the admin's allowance. An address no list holds
is allowed: private ranges stay reachable (on-premises Jenkins or Rundeck live there).

Denied unless an admin allows them: loopback, "this host" and unspecified addresses, link-local
(169.254.169.254, the AWS, GCP, Azure and DigitalOcean metadata service, is in it), cloud
metadata services outside link-local, multicast and broadcast. IPv4-mapped IPv6 addresses
(::ffff:127.0.0.1) are judged as the IPv4 address they carry.

`resolve` asks DNS once and checks every address; `CheckedHTTPConnection` (and its https twin)
then connects to those addresses only, so a second DNS answer (rebinding) cannot move it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Each with why, for the message that refuses an address.
DEFAULT_DENIED: dict[str, str] = {
    "0.0.0.0/8": "this host",
    "127.0.0.0/8": "loopback",
    "169.254.0.0/16": "link-local, with the cloud metadata service",
    "100.100.100.200/32": "Alibaba Cloud's metadata service",
    "168.63.129.16/32": "Azure's host service (WireServer)",
    "224.0.0.0/4": "multicast",
    "255.255.255.255/32": "broadcast",
    "::/128": "unspecified",
    "::1/128": "loopback",
    "fe80::/10": "link-local",
    "fd00:ec2::254/128": "AWS's IPv6 metadata service",
    "ff00::/8": "multicast",
}

_DEFAULT, _ALLOWED, _DENIED = 0, 1, 2
_DEFAULTS = [(ipaddress.ip_network(cidr), why) for cidr, why in DEFAULT_DENIED.items()]


class NetworkError(ValueError):
    """A network list that cannot be read; the message names the entry."""


def parse_networks(entries: Iterable[str] | str) -> tuple[IPNetwork, ...]:
    """Return the networks of a CIDR list (a list, or one comma-separated string); a bare
    address is a network of one. Raise NetworkError naming the first entry that is none."""
    if isinstance(entries, str):
        entries = entries.split(",")
    found: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise NetworkError(
                f"{text[:60]!r} is not a network (as 10.0.0.0/8 or fd00::/8)"
            ) from None
    return tuple(found)


def unwrap(address: IPAddress) -> IPAddress:
    """Return the IPv4 address an IPv4-mapped IPv6 address carries, or `address` itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class NetworkPolicy:
    allowed: tuple[IPNetwork, ...] = ()
    denied: tuple[IPNetwork, ...] = ()

    def refusal(self, address: IPAddress | str) -> str | None:
        """Return the network that denies `address`, with why ("127.0.0.0/8 (loopback)"), or
        None when it is allowed."""
        ip = unwrap(ipaddress.ip_address(str(address).partition("%")[0]))
        best: tuple[int, int, IPNetwork, str] | None = None
        candidates = [(_DEFAULT, network, why) for network, why in _DEFAULTS]
        candidates += [(_ALLOWED, net, "") for net in self.allowed]
        candidates += [(_DENIED, net, "denied by the admin") for net in self.denied]
        for source, network, why in candidates:
            if network.version == ip.version and ip in network:
                key = (network.prefixlen, source, network, why)
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is None or best[1] == _ALLOWED:
            return None
        return f"{best[2]} ({best[3]})"

    def is_allowed(self, address: IPAddress | str) -> bool:
        return self.refusal(address) is None


def literal_address(host: str) -> IPAddress | None:
    """Return the address `host` spells (any form the resolver reads as numeric, such as
    2130706433 or 0x7f.1), or None for a name. Never asks DNS."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(found[0][4][0]).partition("%")[0]) if found else None


@dataclass(frozen=True)
class Destination:
    """One checked address to connect to: socket family and socket address (with the port)."""

    family: int
    sockaddr: tuple


def resolve(host: str, port: int, policy: NetworkPolicy) -> list[Destination]:
    """Resolve `host` once and return its addresses, in the resolver's order, when the policy
    allows every one of them; raise NetworkError naming the first that is denied. The caller
    connects to these addresses only, so a second answer of DNS cannot change where it goes."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Destination] = []
    for family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        why = policy.refusal(ip)
        if why is not None:
            raise NetworkError(f"{host} resolves to {unwrap(ip)}, in {why}")
        found.append(Destination(family, tuple(sockaddr)))
    if not found:
        raise NetworkError(f"{host} has no address")
    return found


def connect(destinations: list[Destination], timeout: float | None) -> socket.socket:
    """Open a TCP connection to the first of `destinations` that answers."""
    last: OSError | None = None
    for destination in destinations:
        sock = socket.socket(destination.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(destination.sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last or OSError("no address to connect to")


class CheckedHTTPConnection(http.client.HTTPConnection):
    """An http.client connection that goes to `destinations` (checked addresses) only, while
    the request keeps the host name in its Host header (and, for https, in SNI and in the
    certificate check: CheckedHTTPSConnection wraps the socket for self.host)."""

    def __init__(self, *args, destinations: list[Destination], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.destinations = destinations
        # http.client opens its socket through this attribute (socket.create_connection, which
        # would resolve the host again); HTTPSConnection.connect wraps what it returns.
        self._create_connection = self._connect_checked

    def _connect_checked(self, address, timeout=None, source_address=None) -> socket.socket:
        return connect(self.destinations, timeout)


class CheckedHTTPSConnection(CheckedHTTPConnection, http.client.HTTPSConnection):
    pass
