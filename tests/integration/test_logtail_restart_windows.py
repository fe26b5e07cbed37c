"""A restart does not resolve an attack still in its window (issue 16, trust).

The per-key windows of a `logtail` collector live in memory; after a restart
the offset is resumed, so the lines already counted are not read again and every
window starts empty. Before, the first evaluation after a `systemctl restart`
resolved every ongoing brute-force alert and notified "resolved". Now a false
result is held until the windows have seen their whole span since the start
(`fills_for`): the alert stays firing, and resolves only once its window, full
again, says the attack is over.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import httpx

from engine.common.timefmt import to_epoch
from tests.integration.daemon import Daemon

WINDOW = 6.0

RULES = """
group: auth
interval: 100ms
rules:
  - id: ssh_bruteforce
    each: auth.keys
    expr: it.failures >= 3
    severity: warning
"""


def failed(ip: str) -> str:
    return f"Dec  7 03:00:00 host sshd[4242]: Failed password for root from {ip} port 22 ssh2\n"


def kinds(evs: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [
        (e["event"], _t(e["ts"]))
        for e in evs
        if e.get("rule") == "ssh_bruteforce" and e["event"] in ("firing", "resolved")
    ]


def _t(ts: str) -> float:
    t = to_epoch(ts)
    assert t is not None
    return t


def test_a_restart_holds_the_alert_until_its_window_is_full_again(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    d = Daemon(tmp_path, RULES, tokens={"viewer": ("viewer-token", "viewer")})
    cfg = tmp_path / "vigil.yaml"
    collector = (
        f"  - {{name: auth, type: logtail, paths: [{log}], interval: 100ms, format: sshd,\n"
        f"     key: ip, window: {WINDOW:g}s,\n"
        f"     windows: {{failures: {{kind: count, window: {WINDOW:g}s, "
        "where: {outcome: [failed]}}}}\n"
    )
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + collector))
    try:
        d.start()
        d.wait_for(lambda evs: any(e["event"] == "collector_state" for e in evs), 30, "a pass")
        with log.open("a") as f:
            f.write(failed("203.0.113.9") * 3)
        d.wait_for(lambda evs: tuple(k for k, _ in kinds(evs)) == ("firing",), 30, "firing")
        assert d.stop() == 0
        d.start()
        started = time.time()
        # explain says why the alert is still firing with an empty window
        why = ""
        while "windows are filling" not in why and time.time() < started + WINDOW / 2:
            with contextlib.suppress(httpx.TransportError):
                why = httpx.get(
                    f"{d.url}/api/v1/explain/ssh_bruteforce",
                    headers={"Authorization": "Bearer viewer-token"},
                    timeout=10,
                ).text
            time.sleep(0.1)
        assert "auth's windows are filling since the start" in why, why
        # the window the lines were counted in is over by WINDOW after the start at
        # the latest: the alert resolves then, not at the first evaluation
        evs = d.wait_for(lambda evs: kinds(evs)[-1][0] == "resolved", 30, "the resolve")
        resolved_at = kinds(evs)[-1][1]
        assert [k for k, _ in kinds(evs)] == ["firing", "resolved"]
        assert resolved_at >= started + WINDOW - 1.0, (
            f"resolved {resolved_at - started:.1f} s after the restart, before its window "
            f"of {WINDOW} s was full again"
        )
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
