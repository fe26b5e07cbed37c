"""Who may never be banned: the allowlist and the host's own protection.

A false-positive storm must not lock out the office nor cut the host off its own
network, so before any ban an address is checked against, in order:

    loopback, unspecified, multicast     never a remote attacker
    the allowlist (CIDR)                 the operator's: office, API clients, monitors
    the host's own addresses             psutil.net_if_addrs(), re-read every minute
    the default gateways                 /proc/net/route, /proc/net/ipv6_route

`refused(address)` names the first rule that protects it, or None.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Sequence

import psutil

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REFRESH = 60.0  # seconds between re-reads of the host's addresses and gateways
ROUTE4 = "/proc/net/route"
ROUTE6 = "/proc/net/ipv6_route"


def host_addresses() -> set[Address]:
    """Every address of every interface of this host."""
    out: set[Address] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                try:  # fe80::1%eth0: the zone is not part of the address
                    out.add(ipaddress.ip_address(a.address.split("%", 1)[0]))
                except ValueError:
                    continue
    return out


def gateways(route4: str = ROUTE4, route6: str = ROUTE6) -> set[Address]:
    """The default routes' gateways, IPv4 and IPv6, from the kernel's tables."""
    out: set[Address] = set()
    try:
        with open(route4, encoding="ascii") as f:
            next(f, None)  # the header
            for line in f:
                parts = line.split()
                # destination 0.0.0.0 and mask 0: a default route; the gateway is
                # little-endian hex
                if len(parts) > 7 and parts[1] == "00000000" and parts[7] == "00000000":
                    gw = ipaddress.IPv4Address(bytes.fromhex(parts[2])[::-1])
                    if int(gw):
                        out.add(gw)
    except (OSError, ValueError):
        pass
    try:
        with open(route6, encoding="ascii") as f:
            for line in f:
                parts = line.split()
                # destination ::/0, next hop in field 5 (big-endian hex)
                if len(parts) > 4 and parts[0] == "0" * 32 and parts[1] == "00":
                    gw6 = ipaddress.IPv6Address(bytes.fromhex(parts[4]))
                    if int(gw6):
                        out.add(gw6)
    except (OSError, ValueError):
        pass
    return out


class Policy:
    """The protection check of one ban channel. `own` and `gws` read the host (tests
    give their own); the host's addresses and gateways are cached `REFRESH` seconds."""

    def __init__(
        self,
        allowlist: Sequence[Network],
        *,
        own: Callable[[], Iterable[Address]] = host_addresses,
        gws: Callable[[], Iterable[Address]] = gateways,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowlist = tuple(allowlist)
        self._own_fn, self._gws_fn, self._mono = own, gws, mono
        self._own: frozenset[Address] = frozenset()
        self._gws: frozenset[Address] = frozenset()
        self._read_at: float | None = None

    def _refresh(self) -> None:
        now = self._mono()
        if self._read_at is None or now - self._read_at >= REFRESH:
            self._own = frozenset(self._own_fn())
            self._gws = frozenset(self._gws_fn())
            self._read_at = now

    def refused(self, address: Address) -> str | None:
        """Why `address` must not be banned, or None if it may be."""
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:  # ::ffff:127.0.0.1 is loopback too
            address = mapped
        if address.is_loopback:
            return "loopback"
        if address.is_unspecified or address.is_multicast:
            return "not a host address"
        for net in self.allowlist:
            if address in net:
                return f"allowlisted ({net})"
        self._refresh()
        if address in self._own:
            return "an address of this host"
        if address in self._gws:
            return "a default gateway of this host"
        return None

    def protects_net(self, net: Network) -> str | None:
        """Why a whole banned network (an IPv6 /64) would hit a protected address:
        banning 2001:db8::/64 must not cut off the host's own 2001:db8::1."""
        for allowed in self.allowlist:
            if allowed.version == net.version and net.overlaps(allowed):
                return f"overlaps the allowlist ({allowed})"
        self._refresh()
        for a in self._own:
            if a in net:
                return f"holds an address of this host ({a})"
        for a in self._gws:
            if a in net:
                return f"holds a default gateway of this host ({a})"
        return None
