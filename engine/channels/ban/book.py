"""The ban book: who is banned until when, how often they offended, and the caps.

Pure bookkeeping with the clock given: the channel asks `decide` before it touches
nftables and `commit`s once the set holds the address, so a failed `nft` run
leaves no ban on the books.

    duration = min(bantime * factor ** (offences - 1), bantime_max)

The offence count decays: an offender quiet for `forget_after` since their last
ban starts again at one. Caps: at most `max_active` bans at once and
`max_per_minute` new bans in any 60 s; past either the channel alerts instead of
banning (a false-positive storm must not ban the whole office).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.channels.ban.policy import Address, Network

RATE_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class BookSettings:
    bantime: float = 600.0
    factor: float = 2.0
    bantime_max: float = 7 * 86400.0
    forget_after: float = 86400.0
    max_active: int = 10_000
    max_per_minute: int = 120
    v4_prefix: int = 32
    v6_prefix: int = 64


@dataclass(slots=True)
class Entry:
    net: str
    key: str
    rule: str
    until: float
    offences: int
    last: float  # the last ban's time
    forget_at: float
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """`ban`: put `net` in the set for `duration`; `active`: it already is;
    `capped`: a cap refuses it (`reason` says which)."""

    verdict: Literal["ban", "active", "capped"]
    net: str
    duration: float = 0.0
    until: float = 0.0
    offences: int = 0
    forget_at: float = 0.0
    reason: str = ""


def network(address: Address, settings: BookSettings) -> Network:
    """What a ban of `address` covers: IPv4 by /32, IPv6 by /64 (by default), since
    one IPv6 host holds a whole /64 to pick its addresses from."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    prefix = settings.v4_prefix if address.version == 4 else settings.v6_prefix
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


def net_text(net: Network) -> str:
    """A single address without its /32 or /128, a network with its prefix."""
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


class BanBook:
    def __init__(self, settings: BookSettings) -> None:
        self.settings = settings
        self.entries: dict[str, Entry] = {}
        self._recent: deque[float] = deque()  # times of the bans of the last minute

    def active(self, now: float) -> Iterator[Entry]:
        return (e for e in self.entries.values() if e.until > now and not e.dry_run)

    def active_count(self, now: float) -> int:
        return sum(1 for _ in self.active(now))

    def decide(self, net: str, now: float, *, dry_run: bool = False) -> Decision:
        s = self.settings
        e = self.entries.get(net)
        if e is not None and e.until > now and e.dry_run == dry_run:
            return Decision("active", net, until=e.until, offences=e.offences)
        if not dry_run:  # a dry run says what would happen: it is never capped
            while self._recent and self._recent[0] <= now - RATE_WINDOW:
                self._recent.popleft()
            if len(self._recent) >= s.max_per_minute:
                return Decision("capped", net, reason=f"{s.max_per_minute} bans in the last minute")
            if self.active_count(now) >= s.max_active:
                return Decision("capped", net, reason=f"{s.max_active} bans active")
        prior = e.offences if e is not None and e.forget_at > now else 0
        offences = prior + 1
        duration = min(s.bantime * s.factor ** (offences - 1), s.bantime_max)
        until = now + duration
        return Decision("ban", net, duration, until, offences, until + s.forget_after)

    def commit(self, d: Decision, *, key: str, rule: str, now: float, dry_run: bool) -> Entry:
        """Record the ban `decide` allowed, once the set holds it."""
        e = Entry(d.net, key, rule, d.until, d.offences, now, d.forget_at, dry_run)
        self.entries[d.net] = e
        if not dry_run:
            self._recent.append(now)
        return e

    def rollback(self, net: str, prior: Entry | None, *, counted: bool) -> None:
        """Undo a `commit` whose nft batch failed (`counted`: it counted towards the rate)."""
        if prior is None:
            self.entries.pop(net, None)
        else:
            self.entries[net] = prior
        if counted and self._recent:
            self._recent.pop()

    def unban(self, net: str) -> Entry | None:
        """An operator's pardon: forgotten, offences and all."""
        return self.entries.pop(net, None)

    def expired(self, now: float, since: float) -> list[Entry]:
        """Real bans that ran out after `since` and by `now` (journaled as unbans);
        forgotten offenders leave the book."""
        out = [e for e in self.entries.values() if since < e.until <= now and not e.dry_run]
        for net in [n for n, e in self.entries.items() if e.forget_at <= now and e.until <= now]:
            del self.entries[net]
        return out

    def restore(self, records: Mapping[str, Mapping[str, Any]], now: float) -> list[Entry]:
        """Load the journal's book (engine/journal/store.py's "bans" of this channel);
        the real bans still active, to be put back in the set."""
        for net, r in records.items():
            try:
                e = Entry(
                    net,
                    str(r.get("key") or net),
                    str(r.get("rule") or ""),
                    float(r["until"]),
                    int(r["offences"]),
                    float(r["last"]),
                    float(r["forget_at"]),
                    bool(r.get("dry_run", False)),
                )
            except (KeyError, TypeError, ValueError):
                continue  # a record this version does not read: forgotten
            if e.forget_at > now or e.until > now:
                self.entries[net] = e
        return list(self.active(now))
