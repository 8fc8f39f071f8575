"""The client's address: the TCP peer, or, when the peer is a trusted proxy
(``TRUSTED_PROXIES``), the address its ``X-Forwarded-For`` names.

The only place that reads ``X-Forwarded-For``. The header is read right to left: each
proxy appends the address it saw, so the rightmost entries are written by our own proxies
and everything left of them by whoever sent the request. Walking left past trusted hops,
the first untrusted one is the client; anything further left is the client's own claim
and ignored. uvicorn's own proxy-headers handling is off wherever the app runs
(``--no-proxy-headers``), so the ASGI ``client`` stays the TCP peer and this setting alone
decides.

Cheap on the hot path: only requests that spend from an address's bucket (no cart named,
promo attempts) ask, nothing is read when no proxy is trusted, and each hop's verdict is
cached.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from litestar.types import Scope

_CACHE_LIMIT = 10_000

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(network) for network in trusted_proxies)
        # hop as written -> (the address, normalized, or None when it is not one; trusted)
        self._hops: dict[str, tuple[str | None, bool]] = {}

    def client(self, scope: Scope) -> str:
        """The address whose bucket this request spends from ("unknown" without a peer)."""
        peer = scope.get("client")
        host = peer[0] if peer else "unknown"
        if not self.networks or not self._hop(host)[1]:
            return host
        forwarded = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        if not forwarded:
            return host  # the proxy's own request
        for hop in reversed(b",".join(forwarded).decode("latin-1").split(",")):
            address, trusted = self._hop(hop)
            if address is None:
                return host  # not an address (a proxy's mistake): the nearest proxy's counts
            if not trusted:
                return address
            host = address
        return host  # every hop a trusted proxy: the leftmost one

    def _hop(self, raw: str) -> tuple[str | None, bool]:
        known = self._hops.get(raw)
        if known is None:
            address = _address(raw)
            known = (None, False) if address is None else (str(address), self._trusts(address))
            if len(self._hops) >= _CACHE_LIMIT:
                self._hops.clear()
            self._hops[raw] = known
        return known

    def _trusts(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return any(address in network for network in self.networks)


def _address(hop: str) -> Address | None:
    """An X-Forwarded-For entry as an address; a port some proxies add is dropped
    (``192.0.2.1:4711``, ``[2001:db8::1]:4711``)."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def client_addresses(trusted_proxies: tuple[str, ...]) -> ClientAddresses:
    """The process's resolver for these proxies (the limiter and the promo handler share it)."""
    return ClientAddresses(trusted_proxies)
