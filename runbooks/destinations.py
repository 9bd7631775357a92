"""Where runbook actions may send their request: the admin's network policy, applied to the
address a URL names (when it is saved) and to every address its host resolves to (when it runs).

The host is resolved once; the connection goes to those checked addresses only, while the
request keeps the URL's host name in its Host header and, for https, in SNI and in the
certificate check. A second DNS answer (rebinding) cannot move the request elsewhere.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import SplitResult

from django.conf import settings

from core.networks import (
    CheckedHTTPConnection,
    CheckedHTTPSConnection,
    NetworkError,
    NetworkPolicy,
    literal_address,
    parse_networks,
    resolve,
)

HINT = "actions may not call it; an admin can allow it with MUSTER_ACTION_ALLOWED_NETWORKS"


class DestinationRefused(Exception):
    """The policy does not let an action call this address; the message names the network."""


def policy() -> NetworkPolicy:
    """The policy of MUSTER_ACTION_ALLOWED_NETWORKS and MUSTER_ACTION_DENIED_NETWORKS."""
    return NetworkPolicy(
        allowed=parse_networks(settings.ACTION_ALLOWED_NETWORKS),
        denied=parse_networks(settings.ACTION_DENIED_NETWORKS),
    )


def check_host(host: str) -> None:
    """Raise DestinationRefused if `host` spells a denied address (names are checked when the
    action runs, after resolution: DNS may answer differently then)."""
    address = literal_address(host)
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        address = literal_address("127.0.0.1")
    why = policy().refusal(address) if address is not None else None
    if why is not None:
        raise DestinationRefused(f"{host} is in {why}: {HINT}")


def open_connection(parts: SplitResult, timeout: float) -> http.client.HTTPConnection:
    """Resolve the URL's host once, check every address, and return an unopened connection
    that will go to those addresses only. Raises DestinationRefused, or OSError (socket.gaierror)
    when the name does not resolve."""
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        destinations = resolve(host, port, policy())
    except NetworkError as exc:
        raise DestinationRefused(f"{exc}: {HINT}") from None
    if https:
        return CheckedHTTPSConnection(
            host,
            port,
            timeout=timeout,
            context=ssl.create_default_context(),
            destinations=destinations,
        )
    return CheckedHTTPConnection(host, port, timeout=timeout, destinations=destinations)
