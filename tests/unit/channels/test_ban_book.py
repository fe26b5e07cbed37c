"""The ban channel's pure parts: the book (escalation, decay, caps, /64 grouping),
the protection policy (allowlist, loopback, the host's own addresses and gateways)
and the settings' errors. The nftables side is tested for real in
tests/integration/test_ban_nftables.py."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from engine.channels.ban.book import BanBook, BookSettings, net_text, network
from engine.channels.ban.nft import Nft, NftSettings
from engine.channels.ban.policy import Policy, gateways
from engine.channels.ban.settings import parse
from engine.journal.store import PRUNE_AT, fold_event, initial_state

T0 = 1_790_000_000.0
S = BookSettings(bantime=600, factor=2, bantime_max=3600, forget_after=86400, max_active=3)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def ban(book: BanBook, net: str, now: float, dry_run: bool = False) -> float:
    d = book.decide(net, now, dry_run=dry_run)
    assert d.verdict == "ban", d
    book.commit(d, key=net, rule="r", now=now, dry_run=dry_run)
    return d.duration


def test_repeat_offenders_get_longer_bans_up_to_the_max() -> None:
    book = BanBook(S)
    durations = []
    now = T0
    for _ in range(5):
        durations.append(ban(book, "203.0.113.7", now))
        now += durations[-1] + 1  # the ban ran out; they come back
    assert durations == [600, 1200, 2400, 3600, 3600]
    assert book.entries["203.0.113.7"].offences == 5


def test_the_offence_count_decays_after_forget_after() -> None:
    book = BanBook(S)
    assert ban(book, "203.0.113.7", T0) == 600
    # quiet for a day after the ban ended: a first offence again
    assert ban(book, "203.0.113.7", T0 + 600 + 86400 + 1) == 600
    assert book.entries["203.0.113.7"].offences == 1


def test_an_active_ban_is_not_banned_again() -> None:
    book = BanBook(S)
    ban(book, "203.0.113.7", T0)
    d = book.decide("203.0.113.7", T0 + 10)
    assert d.verdict == "active" and d.until == T0 + 600


def test_cap_on_active_bans() -> None:
    book = BanBook(S)  # max_active=3
    for i in range(3):
        ban(book, f"203.0.113.{i}", T0 + i)
    d = book.decide("203.0.113.9", T0 + 10)
    assert d.verdict == "capped" and "3 bans active" in d.reason
    # once one has expired there is room again
    assert book.decide("203.0.113.9", T0 + 601).verdict == "ban"


def test_cap_on_the_ban_rate() -> None:
    book = BanBook(BookSettings(max_per_minute=2))
    ban(book, "198.51.100.1", T0)
    ban(book, "198.51.100.2", T0 + 1)
    d = book.decide("198.51.100.3", T0 + 2)
    assert d.verdict == "capped" and "2 bans in the last minute" in d.reason
    assert book.decide("198.51.100.3", T0 + 61).verdict == "ban"


def test_a_dry_run_is_never_capped_and_never_active() -> None:
    book = BanBook(S)
    for i in range(3):
        ban(book, f"203.0.113.{i}", T0)
    assert ban(book, "203.0.113.50", T0, dry_run=True) == 600
    assert book.active_count(T0) == 3  # the dry run is not in the set
    assert book.expired(T0 + 601, T0) and all(not e.dry_run for e in book.expired(T0 + 1000, T0))


def test_rollback_after_a_failed_nft_run() -> None:
    book = BanBook(BookSettings(max_per_minute=1))
    d = book.decide("203.0.113.7", T0)
    book.commit(d, key="x", rule="r", now=T0, dry_run=False)
    book.rollback("203.0.113.7", None, counted=True)
    assert "203.0.113.7" not in book.entries
    assert book.decide("203.0.113.8", T0).verdict == "ban"  # the rate forgot it too


def test_ipv6_is_grouped_by_64_and_ipv4_by_32() -> None:
    a = network(ip("2001:db8:1:2:aaaa::1"), S)
    b = network(ip("2001:db8:1:2:bbbb::9"), S)
    assert net_text(a) == net_text(b) == "2001:db8:1:2::/64"
    assert net_text(network(ip("203.0.113.7"), S)) == "203.0.113.7"
    assert net_text(network(ip("::ffff:203.0.113.7"), S)) == "203.0.113.7"
    wide = BookSettings(v6_prefix=48)
    assert net_text(network(ip("2001:db8:1:2::1"), wide)) == "2001:db8:1::/48"
    # one offender by /64: the second address of the same /64 is already banned
    book = BanBook(S)
    ban(book, net_text(a), T0)
    assert book.decide(net_text(b), T0 + 1).verdict == "active"


def ban_event(net: str, offences: int) -> dict[str, object]:
    return {
        "event": "ban", "ts": T0, "channel": "fw", "rule": "r", "fingerprint": "f", "key": net,
        "net": net, "duration": 600.0, "until": T0 + 600, "offences": offences,
        "forget_at": T0 + 600 + 86400, "evidence": {"annotations": {}, "value": 1},
    }  # fmt: skip


def test_restore_reads_the_folded_journal() -> None:
    state = initial_state()
    fold_event(state, ban_event("203.0.113.7", 2))
    fold_event(state, ban_event("198.51.100.1", 1))
    fold_event(
        state,
        {"event": "unban", "ts": T0 + 5, "channel": "fw", "net": "198.51.100.1",
         "reason": "operator", "at": T0 + 5, "by": "ops"},
    )  # fmt: skip
    book = BanBook(S)
    active = book.restore(state["bans"]["fw"], T0 + 100)
    assert [(e.net, e.until, e.offences) for e in active] == [("203.0.113.7", T0 + 600, 2)]
    # the pardoned one is forgotten; the other escalates from its second offence
    assert ban(book, "203.0.113.7", T0 + 700) == 2400


def test_policy_never_bans_loopback_allowlist_own_addresses_or_gateways() -> None:
    own = {ip("192.0.2.10"), ip("2001:db8:5::10")}
    gws = {ip("192.0.2.1")}
    p = Policy([ipaddress.ip_network("198.51.100.0/24")], own=lambda: own, gws=lambda: gws)
    assert p.refused(ip("127.0.0.1")) == "loopback"
    assert p.refused(ip("127.8.9.10")) == "loopback"
    assert p.refused(ip("::1")) == "loopback"
    assert p.refused(ip("::ffff:127.0.0.1")) == "loopback"
    assert p.refused(ip("198.51.100.77")) == "allowlisted (198.51.100.0/24)"
    assert p.refused(ip("192.0.2.10")) == "an address of this host"
    assert p.refused(ip("192.0.2.1")) == "a default gateway of this host"
    assert p.refused(ip("203.0.113.7")) is None
    # a /64 ban that would cover the host's own IPv6 address is refused
    net = ipaddress.ip_network("2001:db8:5::/64")
    assert p.protects_net(net) == "holds an address of this host (2001:db8:5::10)"
    assert p.protects_net(ipaddress.ip_network("2001:db8:6::/64")) is None


def test_gateways_are_read_from_the_kernel_route_tables(tmp_path: Path) -> None:
    r4 = tmp_path / "route"
    r4.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    r6 = tmp_path / "ipv6_route"
    r6.write_text(
        "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fd000000000000000000000000000001 00000400 00000003 00000000 00000003 eth0\n"
    )
    assert gateways(str(r4), str(r6)) == {ip("192.0.2.1"), ip("fd00::1")}
    assert gateways(str(tmp_path / "none"), str(tmp_path / "none6")) == set()


def test_nft_batches_create_vigil_s_table_and_refresh_timeouts() -> None:
    nft = Nft(NftSettings(table="t", set4="s4", set6="s6"))
    setup = nft.setup()
    assert setup[0] == "add table inet t"
    assert "add rule inet t input ip saddr @s4 drop" in setup
    assert "add rule inet t input ip6 saddr @s6 drop" in setup
    lines = nft.add([("203.0.113.7", 600.0), ("2001:db8::/64", 0.2)], refresh=True)
    assert lines == [
        "add element inet t s4 { 203.0.113.7 }",
        "delete element inet t s4 { 203.0.113.7 }",
        "add element inet t s4 { 203.0.113.7 timeout 600s }",
        "add element inet t s6 { 2001:db8::/64 }",
        "delete element inet t s6 { 2001:db8::/64 }",
        "add element inet t s6 { 2001:db8::/64 timeout 1s }",
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bantime": "soon"}, "bantime: expected a duration"),
        ({"bantime": "1h", "bantime_max": "10m"}, "bantime_max: must not be less than bantime"),
        ({"allowlist": ["10.0.0.0/33"]}, "allowlist[0]: '10.0.0.0/33' is not a network"),
        ({"table": "vigil; flush ruleset"}, "table: expected an nftables name"),
        ({"nft_command": []}, "nft_command: expected a non-empty list"),
        ({"redact": ["("]}, "redact[0]: not a regular expression"),
        ({"ipv6_prefix": 8}, "ipv6_prefix: expected a whole number from 16 to 128"),
        ({"bantime_factr": 2}, "unknown setting 'bantime_factr'"),
    ],
)
def test_bad_settings_name_their_key(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(settings)


def test_the_fold_marks_expiries_and_sweeps_forgotten_offenders() -> None:
    state = initial_state()
    fold_event(state, ban_event("203.0.113.7", 1))
    fold_event(
        state,
        {"event": "unban", "ts": T0 + 600, "channel": "fw", "net": "203.0.113.7",
         "reason": "expired", "at": T0 + 600},
    )  # fmt: skip
    entry = state["bans"]["fw"]["203.0.113.7"]
    assert entry["ended"] is True and entry["offences"] == 1  # kept: the next ban escalates
    # past PRUNE_AT entries, a ban event sweeps the offenders whose count decayed
    for i in range(PRUNE_AT - 1):  # with the first: PRUNE_AT entries, the next one sweeps
        fold_event(state, ban_event(f"10.0.{i // 256}.{i % 256}", 1))
    t = T0 + 600 + 86400 + 1
    late = {**ban_event("198.51.100.1", 1), "ts": t, "until": t + 600, "forget_at": t + 87000}
    fold_event(state, late)
    assert set(state["bans"]["fw"]) == {"198.51.100.1"}
