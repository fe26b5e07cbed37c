"""`ban`: a firing alert bans the address in its key label (`ip`) through nftables.

    alert firing, labels.ip = 203.0.113.7
      → policy: loopback, allowlist, this host's addresses, its gateways? refused
      → book: already banned? caps (active, per minute)? → an alert instead
      → nft -f - : add element inet vigil banned4 { 203.0.113.7 timeout 600s }
      → journal: a `ban` event (rule, key, duration, until, offences, evidence)

The channel runs in the sender process with the others. What it did goes back
with each notification's outcome (`take_events`) and is journaled by the daemon
(engine/delivery/dispatch.py); at start (and when the sender process restarts)
the daemon hands it its part of the journal's book (`restore`), and every ban
still active goes back into the set in one `nft` batch.

Resolves do nothing: a ban ends when its timeout does (the kernel drops the
element; the channel journals an `unban` with reason `expired` at its next
send) or by `vigil unban ADDRESS`, which reaches here as a test notification
carrying `extra.unban`. A plain `vigil notify-test` only creates the table.

`dry_run: true` (the channel), or a label or annotation `ban_dry_run: "true"`
(the rule), journals the ban it would make, with `dry_run`, and leaves nftables be.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

from engine.channels import preview as wire
from engine.channels.ban.book import BanBook, Decision, Entry, net_text, network
from engine.channels.ban.nft import Nft
from engine.channels.ban.policy import Policy
from engine.channels.ban.settings import BanSettings, parse
from engine.common.records import AlertEvent, BanEvent, BanEvidence, JournalEvent, UnbanEvent
from engine.config.model import Channel as ChannelConfig
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification
from engine.rules.state import fingerprint

log = logging.getLogger("vigil.ban")

CAP_RULE = "ban_cap_reached"
TRUE = frozenset({"true", "yes", "1", "on"})
MAX_LINES = 20  # evidence lines kept per ban
MAX_LINE = 500


class BanChannel:
    type_name: ClassVar[str] = "ban"
    uses_text: ClassVar[bool] = False  # no title or body: labels only
    concurrency: ClassVar[int] = 1  # one book, one nft batch at a time

    def __init__(
        self,
        name: str,
        settings: BanSettings,
        *,
        policy: Policy | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.settings = settings
        self.book = BanBook(settings.book)
        self.policy = policy or Policy(settings.allowlist)
        self.nft = Nft(settings.nft)
        self.wall = wall
        self._events: dict[str, list[JournalEvent]] = {}  # notification key -> its events
        self._loose: list[JournalEvent] = []  # expiries, the cap alert: with the next outcome
        self._records: Mapping[str, Mapping[str, Any]] = {}
        self._prepared = False
        self._lock = asyncio.Lock()
        self._restoring: asyncio.Task[None] | None = None
        self._swept = 0.0
        self._cap_firing = False
        self._tripped = False  # a cap refused a ban during this send

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        return cls(config.name, parse(config.settings))

    # -- what the senders call ------------------------------------------------------

    def restore(self, records: Mapping[str, Mapping[str, Any]]) -> None:
        """The journal's book of this channel (engine/journal/store.py's "bans");
        the active bans go back into the set now, in one batch, not at the first send."""
        self._records = records
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first send restores
        self._restoring = loop.create_task(self._restore_now(), name=f"vigil-ban-{self.name}")

    async def _restore_now(self) -> None:
        try:
            await self._ready()
        except DeliveryError as e:
            log.error("ban channel %s: cannot restore its bans: %s", self.name, e)

    def take_events(self, key: str) -> list[JournalEvent]:
        """What the send of notification `key` did, for the journal; then forgotten."""
        out = self._events.pop(key, [])
        if self._loose:
            out = self._loose + out
            self._loose = []
        return out

    async def send(self, n: Notification) -> None:
        await self._ready()
        now = self.wall()
        self._sweep(now)
        events = self._events.setdefault(n.key, [])
        if n.kind == "test":
            target = n.extra.get("unban")
            if isinstance(target, str):
                await self._unban(target, str(n.extra.get("by") or ""), now, events)
            return
        todo: list[tuple[Decision, AlertView, str, bool, Entry | None]] = []
        self._tripped = False
        for a in n.alerts:
            got = self._consider(a, now)
            if got is not None:
                d, key, dry = got
                prior = self.book.entries.get(d.net)
                # booked now, so the caps count the earlier bans of this same batch
                self.book.commit(d, key=key, rule=a.rule, now=now, dry_run=dry)
                todo.append((d, a, key, dry, prior))
        real = [(d.net, d.duration) for d, _, _, dry, _ in todo if not dry]
        if real:
            try:
                await self.nft.run(self.nft.add(real, refresh=True))
            except DeliveryError:
                for d, _, _, dry, prior in reversed(todo):
                    self.book.rollback(d.net, prior, counted=not dry)
                self._events.pop(n.key, None)
                raise
            if self._cap_firing and not self._tripped:  # banning again: the cap alert ends
                self._cap_firing = False
                events.append(self._cap_event("resolved", "", now))
        for d, a, key, dry, _ in todo:
            events.append(self._ban_event(d, a, key, dry))
            log.warning(
                "ban %s: %s %s for %gs (offence %d, rule %s)%s",
                self.name, "would ban" if dry else "banned", d.net, d.duration, d.offences,
                a.rule, " [dry run]" if dry else "",
            )  # fmt: skip

    def preview(self, n: Notification) -> list[wire.Wire]:
        """The nft batch `send(n)` would run, decided against this channel's book
        (a channel built for the preview has an empty one: first offences); none
        when nothing would be banned (dry run, no address, allowlisted)."""
        now = self.wall()
        bans = []
        for a in n.alerts:
            got = self._consider(a, now) if n.kind != "test" else None
            if got is not None and not got[2]:
                bans.append((got[0].net, got[0].duration))
        if not bans:
            return []
        argv, batch = self.nft.batch(self.nft.add(bans, refresh=True))
        return [wire.Wire("nft", argv[0], body=batch.decode(), argv=tuple(argv))]

    async def aclose(self) -> None:
        if self._restoring is not None and not self._restoring.done():
            self._restoring.cancel()
            await asyncio.gather(self._restoring, return_exceptions=True)

    # -- the steps --------------------------------------------------------------------

    async def ready(self) -> None:
        """Wait until the table, the sets and the restored bans are in place."""
        await self._ready()

    async def _ready(self) -> None:
        """Once: the table, sets and rules, and the active bans of the journal, in one
        batch (a dry-run channel never runs nft: the host may have none)."""
        if self._prepared:
            return
        async with self._lock:
            if self._prepared:
                return
            now = self.wall()
            active = self.book.restore(self._records, now)
            self._swept = now
            for net, r in self._records.items():  # ran out while the daemon was down
                if not r.get("dry_run") and not r.get("ended") and 0 < float(r["until"]) <= now:
                    self._loose.append(self._unban_event(net, "expired", float(r["until"])))
            if not self.settings.dry_run:
                started = time.monotonic()
                bans = [(e.net, e.until - now) for e in active]
                await self.nft.run([*self.nft.setup(), *self.nft.add(bans, refresh=False)])
                if bans:
                    log.info(
                        "ban channel %s: %d active bans restored in one nft batch in %.3fs",
                        self.name, len(bans), time.monotonic() - started,
                    )  # fmt: skip
            self._records = {}
            self._prepared = True

    def _sweep(self, now: float) -> None:
        """Journal the bans whose timeout ended since the last look (the kernel
        has already dropped them from the set)."""
        for e in self.book.expired(now, self._swept):
            self._loose.append(self._unban_event(e.net, "expired", e.until))
        self._swept = now

    def _consider(self, a: AlertView, now: float) -> tuple[Decision, str, bool] | None:
        """The ban this alert asks for, or None (not firing, no key, protected,
        already banned, capped: each said in the log)."""
        if a.status != "firing":
            return None
        key = a.labels.get(self.settings.key_label, "").strip()
        if not key:
            return None
        try:
            address = ipaddress.ip_address(key)
        except ValueError:
            log.warning(
                "ban %s: %s=%r is not an IP address", self.name, self.settings.key_label, key
            )
            return None
        net = network(address, self.settings.book)
        why = self.policy.refused(address)
        if why is None and net.prefixlen < net.max_prefixlen:
            why = self.policy.protects_net(net)
        if why is not None:
            log.warning("ban %s: never banning %s (rule %s): %s", self.name, key, a.rule, why)
            return None
        dry = self.settings.dry_run or _truthy(a, "ban_dry_run")
        d = self.book.decide(net_text(net), now, dry_run=dry)
        if d.verdict == "capped":
            log.error("ban %s: not banning %s: cap reached: %s", self.name, d.net, d.reason)
            self._tripped = True
            if not self._cap_firing:
                self._cap_firing = True
                self._loose.append(self._cap_event("firing", d.reason, now))
            return None
        if d.verdict == "active":
            return None
        return d, key, dry

    async def _unban(self, target: str, by: str, now: float, events: list[JournalEvent]) -> None:
        try:
            net = net_text(network(ipaddress.ip_address(target.strip()), self.settings.book))
        except ValueError:
            raise DeliveryError(f"{target[:64]!r} is not an IP address", retryable=False) from None
        e = self.book.entries.get(net)
        if e is None or e.until <= now:
            raise DeliveryError(f"{net} is not banned", retryable=False)
        if not e.dry_run:
            await self.nft.run(self.nft.delete([net]))
        self.book.unban(net)
        events.append(self._unban_event(net, "operator", now, by))
        log.warning("ban %s: %s unbanned by %s", self.name, net, by or "an operator")

    # -- the journal's events -----------------------------------------------------------

    def _ban_event(self, d: Decision, a: AlertView, key: str, dry: bool) -> BanEvent:
        ev: BanEvent = {
            "event": "ban",
            "channel": self.name,
            "rule": a.rule,
            "fingerprint": a.fingerprint,
            "key": key,
            "net": d.net,
            "duration": d.duration,
            "until": d.until,
            "offences": d.offences,
            "forget_at": d.forget_at,
            "evidence": self._evidence(a),
        }
        if dry:
            ev["dry_run"] = True
        return ev

    def _evidence(self, a: AlertView) -> BanEvidence:
        annotations = {k: self._redact(v) for k, v in a.annotations.items() if k != "evidence"}
        ev: BanEvidence = {"annotations": annotations, "value": a.value}
        lines = a.annotations.get("evidence") or a.labels.get("evidence")
        if lines:
            ev["lines"] = [self._redact(x)[:MAX_LINE] for x in lines.splitlines()[:MAX_LINES]]
        return ev

    def _redact(self, text: str) -> str:
        for p in self.settings.redact:
            text = p.sub("***", text)
        return text

    def _unban_event(self, net: str, reason: str, at: float, by: str = "") -> UnbanEvent:
        ev: UnbanEvent = {
            "event": "unban",
            "channel": self.name,
            "net": net,
            "reason": "operator" if reason == "operator" else "expired",
            "at": at,
        }
        if by:
            ev["by"] = by
        return ev

    def _cap_event(self, kind: str, reason: str, now: float) -> AlertEvent:
        """The daemon's own alert `ban_cap_reached{channel}`, routed like any alert."""
        labels = {"channel": self.name}
        return {
            "event": "firing" if kind == "firing" else "resolved",
            "alert": fingerprint(CAP_RULE, labels),
            "rule": CAP_RULE,
            "group": "vigil",
            "labels": labels,
            "severity": "critical",
            "value": reason or None,
            "annotations": {
                "summary": f"ban channel {self.name} stopped banning: {reason}"
                if reason
                else f"ban channel {self.name} bans again"
            },
            "pending_since": now,
            "firing_since": now,
        }


def _truthy(a: AlertView, name: str) -> bool:
    v = a.labels.get(name) or a.annotations.get(name) or ""
    return v.strip().lower() in TRUE
