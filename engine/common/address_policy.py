"""Which addresses vigil may connect to: one policy for channels and collectors.

ALWAYS_REFUSED   networks never contacted, whatever the configuration says
never_contacted  an address in them (also written as ::ffff:a.b.c.d or NAT64)
literal_ip       the address a URL's host stands for, if it is one (also the
                 forms the resolver takes: 2852039166, 0xa9fea9fe, 169.254.43518)
literal_refusal  why a URL's literal host is never contacted (for `vigil validate`)
NetworkPolicy    ALWAYS_REFUSED plus an operator's deny / allow networks;
                 `resolve` resolves a host FIRST and returns only the addresses
                 that may be contacted, so a caller connects to exactly those
                 (a name cannot pass the check with one address and then be
                 used with another: DNS rebinding)
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from engine.errors import VigilError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never contacted: metadata services hand out machine credentials, and link-local /
# unspecified addresses have no business being a target (0.0.0.0 reaches localhost
# on Linux).
ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local: AWS, GCP, Azure, OpenStack ... metadata, ECS credentials
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",
        "::/128",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(VigilError):
    """A host resolved only to addresses the policy refuses (or to a metadata one)."""


class Unresolved(VigilError, OSError):
    """A host name that does not resolve."""


def embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (::ffff:a.b.c.d, 64:ff9b::a.b.c.d)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forms(ip: IPAddress) -> tuple[IPAddress, ...]:
    v4 = embedded_v4(ip)
    return (ip,) if v4 is None else (ip, v4)


def never_contacted(ip: IPAddress) -> bool:
    """A metadata, link-local or unspecified address: refused whatever the settings."""
    return any(f in n for f in forms(ip) for n in ALWAYS_REFUSED if n.version == f.version)


def literal_ip(host: str) -> IPAddress | None:
    """The address `host` (a URL's host, brackets and zone allowed) is written as,
    or None for a name."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(c.isalnum() or c == "." for c in host):
        return None
    try:
        # what the resolver also takes as IPv4: 2852039166, 0xa9fea9fe, 169.254.43518
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def literal_refusal(host: str) -> str | None:
    """Why a URL whose host is `host` can never be contacted, or None."""
    ip = literal_ip(host)
    if ip is None or not never_contacted(ip):
        return None
    v4 = embedded_v4(ip)
    shown = f"{ip} ({v4})" if v4 is not None else str(ip)
    return f"{shown} is a link-local / cloud metadata address, never contacted"


def url_refusal(text: str) -> str | None:
    """For an http(s) URL whose host is a literal metadata / link-local address:
    why it is never contacted (for `vigil validate`); None for anything else."""
    if not text[:8].lower().startswith(("http://", "https://")):
        return None
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return literal_refusal(host) if host else None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """deny wins over allow; an empty allow list allows everything not denied."""

    deny: tuple[IPNetwork, ...] = ()
    allow: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` may not be contacted, or None if it may."""
        if never_contacted(ip):
            return f"{ip} is a link-local / cloud metadata address, never contacted"
        fs = forms(ip)
        for n in self.deny:
            if any(n.version == f.version and f in n for f in fs):
                return f"{ip} is in deny_networks ({n})"
        if self.allow and not any(
            n.version == f.version and f in n for f in fs for n in self.allow
        ):
            return f"{ip} is not in allow_networks"
        return None

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host` that may be contacted, in resolver order.

        Raises AddressRefused when there are none, or when any address is a
        metadata / link-local one (a name pointing there is an attack, not a
        dual-stack accident); Unresolved when the name does not resolve.
        """
        host = host.strip("[]")
        allowed: list[str] = []
        reasons: list[str] = []
        for text in await addresses(host, port):
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self.refusal(ip)
            if reason is None:
                if text not in allowed:
                    allowed.append(text)
                continue
            if host != str(ip):
                reason = f"{host} resolves to {reason}"
            if never_contacted(ip):
                raise AddressRefused(f"address refused: {reason}")
            reasons.append(reason)
        if not allowed:
            raise AddressRefused(f"address refused: {'; '.join(reasons) or host}")
        return allowed


async def addresses(host: str, port: int) -> list[str]:
    """`host`'s addresses as text: an address is its own (getaddrinfo would cost
    a round trip through a thread), a name is resolved."""
    import asyncio  # here: `vigil validate` imports this module and never needs asyncio

    ip = literal_ip(host)
    if ip is not None:
        return [str(ip)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as e:
        raise Unresolved(f"cannot resolve {host}: {e}") from None
    return [str(sockaddr[0]) for *_, sockaddr in infos]


def parse_networks(values: object, key: str) -> tuple[IPNetwork, ...]:
    """`deny_networks` / `allow_networks` as written in a channel or collector."""
    if not isinstance(values, list | tuple):
        raise ValueError(f"{key}: expected a list of networks such as 10.0.0.0/8")
    out: list[IPNetwork] = []
    for i, v in enumerate(values):
        try:
            out.append(ipaddress.ip_network(str(v), strict=False))
        except ValueError:
            raise ValueError(f"{key}[{i}]: {v!r} is not a network such as 10.0.0.0/8") from None
    return tuple(out)
