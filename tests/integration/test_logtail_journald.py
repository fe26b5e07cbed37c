"""A real `vigil run` reading sshd's entries from a real systemd-journald (issue 16.1's
journald source): failed logins sent to journald fire the per-address alert with
the entry as evidence; entries sent while the daemon is down (SIGTERM or kill -9)
are read at the next start from the cursor kept in the journal, each counted
once; a journalctl that cannot start makes the collector down with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon
from tests.integration.journald_ns import Journald, skip_unless_possible

RULES = """
group: auth
interval: 100ms
rules:
  - id: ssh_bruteforce
    each: auth.keys
    expr: it.failures_10m >= 3
    severity: warning
    annotations:
      summary: "{{ labels.ip }}: {{ it.failures_10m }} failed logins"
      evidence: "{% for e in it.evidence %}{{ e.path }} {{ e.line }}\\n{% endfor %}"
  - id: every_entry_read
    expr: auth.lines >= EXPECTED
    severity: info
"""

COLLECTOR = (
    "  - {{name: auth, type: logtail, interval: 100ms, save_interval: {save},\n"
    "     journald: {{directory: {dir}, matches: [SYSLOG_IDENTIFIER=sshd]}},\n"
    "     format: sshd, key: ip,\n"
    "     windows: {{failures_10m: {{kind: count, window: 10m, where: {{outcome: [failed]}}}}}}}}\n"
)


def failed(ip: str, user: str = "root") -> str:
    return f"Failed password for {user} from {ip} port 22 ssh2"


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[Journald]:
    skip_unless_possible()
    j = Journald(tmp_path)
    j.start()
    try:
        yield j
    finally:
        j.stop()


def daemon(tmp_path: Path, j: Journald, expected: int, save: str = "1h") -> Daemon:
    d = Daemon(tmp_path, RULES.replace("EXPECTED", str(expected)))
    cfg = tmp_path / "vigil.yaml"
    collector = COLLECTOR.format(dir=j.journal, save=save)
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + collector))
    return d


def following(d: Daemon, j: Journald) -> int:
    """Wait until the daemon's journalctl follows: without a saved cursor it starts
    at the newest entry, so entries sent before it has started are (rightly) not
    read. Sends a harmless entry until one is counted; returns the count."""
    d.wait_for(_started, 30, "the start")
    before = records(d)
    base, n = (before[-1]["lines"] if before else 0), len(before)
    for _ in range(60):
        j.send("Connection closed by authenticating user x 10.0.0.1 port 1 [preauth]")
        try:
            d.wait_for(lambda evs: any(r["lines"] > base for r in records(d)[n:]), 1.0, "one")
        except AssertionError:
            continue
        time.sleep(1.0)  # a warm-up sent just before may still be on its way
        return int(records(d)[-1]["lines"])
    raise AssertionError("the journald source never read an entry")


def records(d: Daemon) -> list[dict[str, Any]]:
    return [
        e["state"]
        for e in d.events()
        if e["event"] == "collector_state" and e.get("key") == "journald" and e.get("state")
    ]


def test_failed_logins_in_journald_fire_the_per_address_alert(
    tmp_path: Path, journald: Journald
) -> None:
    d = daemon(tmp_path, journald, expected=10**9, save="100ms")
    journald.send("Server listening on 0.0.0.0 port 22.")  # before the start: not read
    try:
        d.start()
        warm = following(d, journald)
        for _ in range(3):
            journald.send(failed("203.0.113.9"))
            journald.send("Accepted publickey for alice from 198.51.100.7 port 5000 ssh2")
        journald.send(b"Failed password for \xff\xfe from 203.0.113.77 port 22 ssh2")
        evs = d.wait_for(
            lambda evs: any(
                e["event"] == "firing" and e.get("rule") == "ssh_bruteforce" for e in evs
            ),
            30,
            "the alert for 203.0.113.9",
        )
        fired = [e for e in evs if e["event"] == "firing" and e.get("rule") == "ssh_bruteforce"]
        assert [e["labels"]["ip"] for e in fired] == ["203.0.113.9"]
        assert "3 failed logins" in fired[0]["annotations"]["summary"]
        evidence = fired[0]["annotations"]["evidence"]
        assert "journald sshd[4242]: " + failed("203.0.113.9") in evidence, evidence
        assert d.stop() == 0
        last = records(d)[-1]
        # 3 failed + 3 accepted + the binary one; the entry before the start is not read
        assert last["lines"] == warm + 7, last
        assert isinstance(last["cursor"], str) and last["cursor"].startswith("s=")
        assert "Traceback" not in d.log()
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_entries_written_while_down_are_read_once_at_the_next_start(
    tmp_path: Path, journald: Journald, how: str
) -> None:
    before, down = 40, 25
    d = daemon(tmp_path, journald, expected=10**9, save="100ms")
    try:
        d.start()
        warm = following(d, journald)
        for i in range(before):
            journald.send(failed(f"198.51.100.{i % 5}", f"user{i}"))
        d.wait_for(lambda evs: any(r["lines"] == warm + before for r in records(d)), 30, "all")
        if how == "kill9":
            d.kill9()
        else:
            assert d.stop() == 0
        for i in range(down):
            journald.send(failed(f"192.0.2.{i % 5}", f"late{i}"))
        d.start()
        total = warm + before + down
        d.wait_for(lambda evs: any(r["lines"] >= total for r in records(d)), 30, "every entry")
        time.sleep(1.0)  # a few more passes: nothing may be counted twice
        assert d.stop() == 0
        assert records(d)[-1]["lines"] == warm + before + down, "each entry counted once"
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


def test_start_end_skips_what_was_written_while_down(tmp_path: Path, journald: Journald) -> None:
    """`start: end` ignores the saved cursor, as it ignores a file's saved offset."""
    d = daemon(tmp_path, journald, expected=10**9, save="100ms")
    try:
        d.start()
        warm = following(d, journald)
        assert d.stop() == 0
        for i in range(5):
            journald.send(failed("192.0.2.1", f"late{i}"))
        cfg = tmp_path / "vigil.yaml"
        cfg.write_text(cfg.read_text().replace("type: logtail,", "type: logtail, start: end,"))
        d.start()
        assert following(d, journald) > warm
        time.sleep(1.0)  # evaluations after the read
        assert d.stop() == 0
        late = [e for e in d.events() if e["event"] == "firing" and e.get("labels", {}).get("ip")]
        assert late == [], "the entries written while down were read"
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


def test_a_journalctl_that_cannot_start_makes_the_collector_down_with_its_reason(
    tmp_path: Path,
) -> None:
    skip_unless_possible()
    missing = tmp_path / "no-such-journal"
    d = Daemon(tmp_path, RULES.replace("EXPECTED", "1"))
    cfg = tmp_path / "vigil.yaml"
    collector = COLLECTOR.format(dir=missing, save="1h")
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + collector))
    try:
        d.start()
        evs = d.wait_for(
            lambda evs: any(
                e["event"] == "firing" and e.get("rule") == "collector_down" for e in evs
            ),
            30,
            "collector_down",
        )
        down = next(e for e in evs if e["event"] == "firing" and e.get("rule") == "collector_down")
        text = str(down)
        assert "journalctl exited (1)" in text and "No such file or directory" in text, text
        assert "Traceback" not in d.log()
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


def _started(evs: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "started" for e in evs)
