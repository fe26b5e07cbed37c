"""logtail reads, parses and detects in a child process (isolated.py), issue 16's
tick target: a real daemon, its real reader process, and what operators and
machines do to processes.

- The child runs at a lower priority than the daemon (its work is bulk).
- A reader process that dies (kill -9, the OOM killer) is reported as the
  collector down with the reason, replaced at the next pass from the last
  journaled record, and no line is lost or counted twice; its windows start empty
  again, and an ongoing attack's alert is held, not resolved, until they are full.
- The reader process ends with the daemon, however the daemon ends.
- systemd's stop signals every process of the unit: the child ignores SIGTERM,
  so the daemon still journals the last offsets at its clean stop.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from engine.common.timefmt import to_epoch
from tests.integration.daemon import Daemon
from tests.integration.test_logtail_restart_windows import RULES, failed

MODULE = "engine.collectors.logtail.isolated"
WINDOW = 4.0


def daemon(tmp_path: Path, log: Path) -> Daemon:
    log.write_text("")
    d = Daemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    collector = (
        f"  - {{name: auth, type: logtail, paths: [{log}], interval: 100ms, format: sshd,\n"
        f"     key: ip, window: {WINDOW:g}s, save_interval: 100ms,\n"
        f"     windows: {{failures: {{kind: count, window: {WINDOW:g}s, "
        "where: {outcome: [failed]}}}}\n"
    )
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + collector))
    return d


def reader_of(d: Daemon, timeout: float = 30.0) -> psutil.Process:
    assert d.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(d.proc.pid).children():
            try:
                if MODULE in child.cmdline():
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.05)
    raise AssertionError("no logtail reader process")


def records(d: Daemon, log: Path) -> list[dict[str, Any]]:
    return [
        e["state"]
        for e in d.events()
        if e["event"] == "collector_state" and e.get("key") == str(log) and e.get("state")
    ]


def first_pass(d: Daemon, log: Path) -> None:
    """The reader answered once (the file's first record): lines written from now
    on are read (a file never seen before is read from its end at the start)."""
    d.wait_for(lambda evs: bool(records(d, log)), 30, "the first pass")


def alert_events(evs: list[dict[str, Any]]) -> list[str]:
    return [
        e["event"]
        for e in evs
        if e.get("rule") == "ssh_bruteforce" and e["event"] in ("firing", "resolved")
    ]


def _t(e: dict[str, Any]) -> float:
    t = to_epoch(e["ts"])
    assert t is not None
    return t


def test_a_killed_reader_is_replaced_losing_nothing_and_resolving_nothing(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    d = daemon(tmp_path, log)
    try:
        d.start()
        started = time.time()
        first_pass(d, log)
        child = reader_of(d)
        assert child.nice() == psutil.Process(d.proc.pid).nice() + 10  # type: ignore[union-attr]
        # past the windows' first filling after the start: only the new reader's
        # empty windows could resolve the alert early now
        time.sleep(max(0.0, started + WINDOW + 0.5 - time.time()))
        with log.open("a") as f:
            f.write(failed("203.0.113.9") * 3)
        d.wait_for(lambda evs: alert_events(evs) == ["firing"], 30, "firing")
        os.kill(child.pid, signal.SIGKILL)
        killed = time.time()
        evs = d.wait_for(
            lambda evs: any(e["event"] == "collector_up" for e in evs), 30, "the collector up"
        )
        (down,) = [e for e in evs if e["event"] == "collector_down"]
        assert "reader process ended (killed by SIGKILL)" in down["error"], down
        (up,) = [e for e in evs if e["event"] == "collector_up"]
        assert reader_of(d).pid != child.pid
        with log.open("a") as f:
            f.write("Dec  7 03:00:01 host sshd[1]: Accepted password for bob from 10.0.0.1\n" * 5)
        d.wait_for(lambda evs: records(d, log)[-1]["lines"] >= 8, 30, "the new lines")
        time.sleep(0.5)  # more passes: nothing counted twice
        last = records(d, log)[-1]
        assert last["lines"] == 8, last
        assert last["offset"] == log.stat().st_size, last
        # the attack's lines were counted by the dead reader: its alert is held while
        # the new windows fill, and resolves once they are full and say it is over
        evs = d.wait_for(lambda evs: alert_events(evs)[-1] == "resolved", 30, "the resolve")
        (resolved,) = [
            e for e in evs if e.get("rule") == "ssh_bruteforce" and e["event"] == "resolved"
        ]
        assert _t(resolved) >= _t(up) + WINDOW - 0.5, (
            f"resolved {_t(resolved) - killed:.1f} s after the reader was killed, before "
            f"the new reader's windows of {WINDOW} s were full"
        )
        assert d.stop() == 0
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill9()


def test_the_reader_ends_with_the_daemon_however_it_ends(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    d = daemon(tmp_path, log)
    d.start()
    child = reader_of(d)
    d.kill9()
    try:
        child.wait(10)  # it sees its socket close
    except psutil.TimeoutExpired:
        child.kill()
        raise AssertionError("the reader process outlived a kill -9 of the daemon") from None


def test_a_stop_signalled_to_every_process_still_journals_the_last_offset(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.log"
    d = daemon(tmp_path, log)
    cfg = tmp_path / "vigil.yaml"
    # records at most every 10 minutes: only the stop's own can hold the last offset
    cfg.write_text(cfg.read_text().replace("save_interval: 100ms", "save_interval: 10m"))
    try:
        d.start()
        first_pass(d, log)
        child = reader_of(d)
        with log.open("a") as f:
            f.write(failed("198.51.100.7") * 2)
        with log.open("a") as f:
            f.write(failed("198.51.100.8") * 5)
        time.sleep(1.0)  # read by passes, not journaled (save_interval)
        assert records(d, log)[-1]["lines"] < 7
        assert d.proc is not None
        # KillMode=control-group: SIGTERM to the daemon and to its children at once
        os.kill(child.pid, signal.SIGTERM)
        assert d.stop() == 0
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        last = records(d, log)[-1]
        assert last["lines"] == 7, last
        assert last["offset"] == log.stat().st_size, last
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.kill9()
