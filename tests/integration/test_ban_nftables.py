"""The ban channel against Debian's real nftables, inside a network namespace each
test creates (`ip netns add`), so the host's firewall is never touched: the
channel's `nft_command` is `ip netns exec NS nft`. A real daemon evaluates a rule
that fires per offending IP (counts fed through the `file` collector).

Skipped, saying why, when not root or without `nft` / `ip netns`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("nft") is None:
        return "needs nft (Debian's nftables package; deploy/setup.sh installs it)"
    if shutil.which("ip") is None:
        return "needs ip (iproute2) for a network namespace"
    return None


if (_reason := _why_not()) is not None:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=_reason)]


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"vigil-test-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def nft(ns: str, *args: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", *args], capture_output=True, text=True, timeout=30
    )
    return out.stdout if out.returncode == 0 else ""


def elements(ns: str, set_name: str = "banned4") -> dict[str, int]:
    """The set's elements -> their configured timeout in seconds."""
    text = nft(ns, "list", "set", "inet", "vigil", set_name)
    out = {}
    for m in re.finditer(r"([0-9a-f.:/]+) timeout ((?:\d+[dhms])+)", text):
        secs = sum(
            int(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u]
            for n, u in re.findall(r"(\d+)([dhms])", m.group(2))
        )
        out[m.group(1)] = secs
    return out


RULES = """
group: auth
interval: 100ms
rules:
  - id: ssh_bruteforce
    each: app.offenders
    expr: it.failures >= 5
    severity: warning
    annotations:
      summary: "{{ labels.ip }} failed {{ value }} logins"
"""


def channels(ns: str, **extra: Any) -> str:
    settings = {
        "name": "fw",
        "type": "ban",
        "nft_command": ["ip", "netns", "exec", ns, "nft"],
        "bantime": "3s",
        "bantime_factor": 3,
        "bantime_max": "1h",
        "forget_after": "1h",
        "allowlist": ["198.51.100.0/24"],
        **extra,
    }
    return f"""
channels:
  - {json.dumps(settings)}
  - {{name: archive, type: file, path: notifications.jsonl}}
routes:
  - match: {{rule: ssh_bruteforce}}
    channels: [fw]
    group_by: [ip]
    group_wait: 0s
    group_interval: 100ms
    repeat_interval: 1h
  - match: {{rule: ban_cap_reached}}
    channels: [archive]
    group_wait: 0s
"""


def offenders(d: Daemon, **failures: int) -> None:
    d.set_values(
        {
            "offenders": [
                {"labels": {"ip": ip.replace("_", ".")}, "failures": n}
                for ip, n in failures.items()
            ]
        }
    )


def bans(evs: list[dict[str, Any]], net: str | None = None) -> list[dict[str, Any]]:
    return [e for e in evs if e["event"] == "ban" and (net is None or e["net"] == net)]


def test_brute_force_is_banned_expires_and_the_repeat_offender_waits_longer(
    tmp_path: Path, netns: str
) -> None:
    d = Daemon(tmp_path, RULES, channels(netns))
    offenders(d)
    d.start()
    try:
        # the table, the sets and the drop rules are vigil's own, made at start
        d.wait_for(lambda _: "ip saddr @banned4 drop" in nft(netns, "list", "table", "inet", "vigil"), what="table")  # fmt: skip
        t0 = time.monotonic()
        offenders(d, **{"203_0_113_7": 12, "198_51_100_5": 50, "127_0_0_1": 50})
        evs = d.wait_for(lambda evs: bans(evs, "203.0.113.7"), what="the first ban")
        first = bans(evs, "203.0.113.7")[0]
        latency = time.monotonic() - t0
        assert latency < 5.0, f"banned {latency:.2f}s after the failures were counted"
        assert (first["offences"], first["duration"], first["rule"]) == (1, 3.0, "ssh_bruteforce")
        assert first["evidence"]["annotations"]["summary"] == "203.0.113.7 failed 12 logins"
        assert first["until"] - first["duration"] == pytest.approx(time.time(), abs=latency + 1)
        assert elements(netns) == {"203.0.113.7": 3}
        # the allowlisted address and loopback fired too, and the channel was told
        fps = {e["alert"] for e in evs if e["event"] == "firing"}
        d.wait_for(
            lambda evs: sum(
                1 for e in evs if e["event"] == "notified" and e["channel"] == "fw"
                and set(e["alerts"]) & fps
            ) >= 3,
            what="all three notified to the ban channel",
        )  # fmt: skip
        assert len(bans(d.events())) == 1, "an allowlisted address or loopback was banned"
        assert "never banning 127.0.0.1" in d.log() and "never banning 198.51.100.5" in d.log()

        # the attack stops, the alert resolves, the kernel drops the element at 3 s
        offenders(d)
        deadline = time.monotonic() + 15
        while elements(netns) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert elements(netns) == {}, "the ban did not expire"

        # the same address again: the second offence, three times as long
        offenders(d, **{"203_0_113_7": 9})
        evs = d.wait_for(lambda evs: len(bans(evs, "203.0.113.7")) == 2, what="the second ban")
        second = bans(evs, "203.0.113.7")[1]
        assert (second["offences"], second["duration"]) == (2, 9.0)
        assert elements(netns) == {"203.0.113.7": 9}
        expired = [e for e in evs if e["event"] == "unban"]
        assert expired and expired[0]["reason"] == "expired" and expired[0]["net"] == "203.0.113.7"
    finally:
        d.stop()


TOKEN = "ops-2b9e"


def test_cap_alerts_instead_of_banning_restart_restores_and_unban(
    tmp_path: Path, netns: str
) -> None:
    d = Daemon(
        tmp_path,
        RULES,
        channels(netns, bantime="1h", max_active=2),
        tokens={"ops": (TOKEN, "operator")},
    )
    offenders(d)
    d.start()
    try:
        offenders(d, **{"203_0_113_1": 9, "203_0_113_2": 9})
        d.wait_for(lambda evs: len(bans(evs)) == 2, what="two bans")
        offenders(d, **{"203_0_113_1": 9, "203_0_113_2": 9, "203_0_113_3": 9})
        evs = d.wait_for(
            lambda evs: any(e["event"] == "firing" and e["rule"] == "ban_cap_reached" for e in evs),
            what="the cap alert",
        )
        assert len(bans(evs)) == 2
        assert set(elements(netns)) == {"203.0.113.1", "203.0.113.2"}
        # the cap alert went out through the other channels
        sent = tmp_path / "channels" / "notifications.jsonl"
        deadline = time.monotonic() + 10
        while not (sent.exists() and "ban_cap_reached" in sent.read_text()):
            assert time.monotonic() < deadline, "the cap alert was not notified"
            time.sleep(0.1)
    finally:
        d.stop()

    # a reboot empties the set: the restart puts both back, in one batch
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "vigil"], check=True
    )
    assert elements(netns) == {}
    d.start()
    try:
        deadline = time.monotonic() + 15
        while len(elements(netns)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        restored = elements(netns)
        assert set(restored) == {"203.0.113.1", "203.0.113.2"}
        assert all(3500 <= t <= 3600 for t in restored.values()), restored
        assert "2 active bans restored in one nft batch" in d.log()

        # `vigil unban` lifts one: out of the set, journaled as the operator's
        env = {**os.environ, "VIGIL_TOKEN": TOKEN}
        out = subprocess.run(
            [VIGIL, "unban", "203.0.113.1", "--url", d.url],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "unbanned 203.0.113.1 (channel fw)" in out.stdout
        assert set(elements(netns)) == {"203.0.113.2"}
        evs = d.wait_for(
            lambda evs: any(e["event"] == "unban" and e["reason"] == "operator" for e in evs),
            what="the unban event",
        )
        (ev,) = [e for e in evs if e["event"] == "unban"]
        assert (ev["net"], ev["by"]) == ("203.0.113.1", "ops")
        again = subprocess.run(
            [VIGIL, "unban", "203.0.113.1", "--url", d.url],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert again.returncode == 1 and "203.0.113.1 is not banned" in again.stderr
        listed = httpx.get(
            f"{d.url}/api/v1/bans", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ).json()["bans"]
        assert [b["net"] for b in listed] == ["203.0.113.2"]
    finally:
        d.stop()
