"""The ban channel's decisions and journal events, without a firewall: nft_command is
`true` (every batch "succeeds") or `false` (every batch fails), so these check what
the channel decides and records; tests/integration/test_ban_nftables.py checks the
kernel's set."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from engine.channels.ban.channel import CAP_RULE, BanChannel
from engine.channels.ban.policy import Policy
from engine.channels.ban.settings import parse
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification

T0 = 1_790_000_000.0


def alert(addr: str, rule: str = "ssh_bruteforce", **kw: Any) -> AlertView:
    base: dict[str, Any] = {
        "fingerprint": f"fp-{addr}",
        "rule": rule,
        "status": "firing",
        "severity": "warning",
        "labels": {"ip": addr},
        "annotations": {"summary": f"{addr} failed 12 logins"},
        "value": 12,
        "starts_at": T0,
    }
    base.update(kw)
    return AlertView(**base)


def note(*alerts: AlertView, key: str = "k1", **kw: Any) -> Notification:
    return Notification(
        channel="fw", group_key="g", status="firing", alerts=alerts, key=key, title="",
        body="", **kw,
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def channel(clock: Clock, **settings: Any) -> BanChannel:
    settings.setdefault("nft_command", ["true"])
    policy = Policy(
        [ipaddress.ip_network(a) for a in settings.get("allowlist", [])],
        own=lambda: {ipaddress.ip_address("192.0.2.10")},
        gws=lambda: {ipaddress.ip_address("192.0.2.1")},
    )
    return BanChannel("fw", parse(settings), policy=policy, wall=clock)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_firing_alert_is_banned_and_journaled_with_its_evidence() -> None:
    clock = Clock()
    ch = channel(clock, redact=[r"password=\S+"])
    lines = "Failed password for root from 203.0.113.7\nGET /login?password=hunter2"
    a = alert("203.0.113.7", annotations={"summary": "12 failures", "evidence": lines})
    run(ch.send(note(a)))
    (ev,) = ch.take_events("k1")
    assert ev["event"] == "ban" and ev["net"] == "203.0.113.7" and ev["rule"] == "ssh_bruteforce"
    assert (ev["duration"], ev["until"], ev["offences"]) == (600.0, T0 + 600, 1)
    assert ev["evidence"]["annotations"] == {"summary": "12 failures"}
    assert ev["evidence"]["lines"][1] == "GET /login?***"
    assert "dry_run" not in ev
    # the same alert notified again while banned: nothing new
    run(ch.send(note(a, key="k2")))
    assert ch.take_events("k2") == []


def test_expiry_is_journaled_and_the_next_offence_escalates() -> None:
    clock = Clock()
    ch = channel(clock)
    run(ch.send(note(alert("203.0.113.7"))))
    ch.take_events("k1")
    clock.now = T0 + 601
    run(ch.send(note(alert("203.0.113.7"), key="k2")))
    unban, ban = ch.take_events("k2")
    assert unban == {
        "event": "unban", "channel": "fw", "net": "203.0.113.7", "reason": "expired",
        "at": T0 + 600,
    }  # fmt: skip
    assert (ban["offences"], ban["duration"]) == (2, 1200.0)


def test_protected_addresses_are_never_banned() -> None:
    clock = Clock()
    ch = channel(clock, allowlist=["198.51.100.0/24"])
    for addr in ("127.0.0.1", "::1", "198.51.100.5", "192.0.2.10", "192.0.2.1", "not-an-ip"):
        run(ch.send(note(alert(addr), key=addr)))
        assert ch.take_events(addr) == [], addr
    assert ch.book.entries == {}


def test_resolved_alerts_and_alerts_without_the_key_do_nothing() -> None:
    ch = channel(Clock(), key_label="src")
    run(ch.send(note(alert("203.0.113.7"), alert("203.0.113.8", status="resolved"))))
    assert ch.take_events("k1") == []  # no `src` label on the first, the second resolved


def test_dry_run_per_channel_and_per_rule() -> None:
    clock = Clock()
    ch = channel(clock, dry_run=True, nft_command=["false"])  # nft never runs
    run(ch.send(note(alert("203.0.113.7"))))
    (ev,) = ch.take_events("k1")
    assert ev["dry_run"] is True and ev["net"] == "203.0.113.7"
    ch = channel(clock)
    a = alert("203.0.113.8", labels={"ip": "203.0.113.8", "ban_dry_run": "true"})
    run(ch.send(note(a)))
    (ev,) = ch.take_events("k1")
    assert ev["dry_run"] is True
    b = alert("203.0.113.9", annotations={"ban_dry_run": "yes"})
    run(ch.send(note(b, key="k2")))
    assert ch.take_events("k2")[0]["dry_run"] is True
    assert ch.book.active_count(clock.now) == 0  # a dry run is not in the set


def test_the_cap_raises_an_alert_instead_of_banning_and_resolves_it() -> None:
    clock = Clock()
    ch = channel(clock, max_active=2)
    run(ch.send(note(*(alert(f"203.0.113.{i}") for i in range(4)))))
    events = ch.take_events("k1")
    cap = [e for e in events if e["event"] == "firing"]
    assert [e["net"] for e in events if e["event"] == "ban"] == ["203.0.113.0", "203.0.113.1"]
    assert len(cap) == 1 and cap[0]["rule"] == CAP_RULE
    assert cap[0]["labels"] == {"channel": "fw"} and "2 bans active" in cap[0]["value"]
    # room again once the bans ran out: the next ban resolves the cap alert
    clock.now = T0 + 601
    run(ch.send(note(alert("203.0.113.3"), key="k2")))
    kinds = [e["event"] for e in ch.take_events("k2")]
    assert kinds.count("resolved") == 1 and kinds.count("ban") == 1


def test_a_failed_nft_run_books_nothing_and_is_reported() -> None:
    ch = channel(Clock(), nft_command=["false"])
    with pytest.raises(DeliveryError, match="nft exit status 1"):
        run(ch.send(note(alert("203.0.113.7"))))
    assert ch.book.entries == {} and ch.take_events("k1") == []


def test_unban_by_an_operator() -> None:
    clock = Clock()
    ch = channel(clock)
    run(ch.send(note(alert("2001:db8:7::1"))))
    assert ch.take_events("k1")[0]["net"] == "2001:db8:7::/64"
    # any address of the /64 names the ban
    run(ch.send(note(key="u1", kind="test", extra={"unban": "2001:db8:7::99", "by": "ops"})))
    (ev,) = ch.take_events("u1")
    assert ev["event"] == "unban" and ev["reason"] == "operator" and ev["by"] == "ops"
    with pytest.raises(DeliveryError, match="is not banned"):
        run(ch.send(note(key="u2", kind="test", extra={"unban": "2001:db8:7::1"})))
    with pytest.raises(DeliveryError, match="not an IP address"):
        run(ch.send(note(key="u3", kind="test", extra={"unban": "nope"})))


def test_restore_puts_back_active_bans_and_journals_missed_expiries() -> None:
    clock = Clock()
    ch = channel(clock)
    records = {
        "203.0.113.7": {"until": T0 + 300, "offences": 2, "last": T0 - 300,
                        "forget_at": T0 + 90000, "key": "203.0.113.7", "rule": "r"},
        "203.0.113.8": {"until": T0 - 10, "offences": 1, "last": T0 - 610,
                        "forget_at": T0 + 90000, "key": "203.0.113.8", "rule": "r"},
    }  # fmt: skip

    async def go() -> None:
        ch.restore(records)
        await asyncio.sleep(0)
        await ch.send(note(alert("203.0.113.7")))

    run(go())
    events = ch.take_events("k1")
    # 203.0.113.7 still banned (no new ban); .8 ran out while the daemon was down
    assert [(e["event"], e["net"]) for e in events] == [("unban", "203.0.113.8")]
    assert ch.book.entries["203.0.113.7"].offences == 2
