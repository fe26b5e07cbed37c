"""Faults of the disk under a real daemon: a full data_dir (a small tmpfs this test
mounts; CI runs as root) and a failing fsync.

Doctrine (engine/journal/hold.py): a full disk never stops alerting. vigil keeps
evaluating and notifying from memory, raises `journal_degraded` through the
channels, answers /ready 503 with the reason, and once space returns writes what
it held, in order, as whole lines. A failed fsync stops the daemon non-zero.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.journal.files import ACTIVE
from engine.journal.maintenance import verify
from engine.journal.reader import iter_events
from tests.adversarial._api_live import HealthProbe
from tests.adversarial.hook_channel import CHANNELS
from tests.integration.daemon import VIGIL, Daemon
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
  - id: disk_full
    each: app.disks
    expr: it.percent > 90
"""

# 60 alerts firing at once: more than a page of lines (a tmpfs file may still
# have room in its last page when the file system is full)
DISKS = [{"labels": {"mountpoint": f"/m{i:02d}"}, "percent": 95} for i in range(60)]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """data/ on a 256 KiB tmpfs, unmounted whatever the test did."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(data)], check=True)
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def fill(data: Path) -> Path:
    """Take every free byte of the file system."""
    filler = data / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (65536, 4096, 1):  # big steps, then the last partial page
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"x" * chunk)
    finally:
        os.close(fd)
    return filler


def wait(cond: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):  # the API may not listen yet
            if cond():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_full_disk_alerts_from_memory_and_catches_up(tmp_path: Path, tmpfs: Path) -> None:
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, CHANNELS.format(url=rx.url))
        d.set_values({"queue": 1})
        d.start()
        try:
            with httpx.Client(base_url=d.url, timeout=5) as c:
                wait(lambda: c.get("/ready").status_code == 200, "ready")
                with HealthProbe(d) as health:  # /health within 1 s throughout the attack
                    filler = fill(tmpfs)
                    # transitions the full disk cannot take
                    d.set_values({"queue": 50, "disks": DISKS})

                    # alerting goes on from memory: the rule's firing AND journal_degraded
                    # reach the receiver although nothing reaches the disk
                    def seen(name: str, status: str) -> bool:
                        return any(
                            name in r.body.decode(errors="replace") and status in r.body.decode()
                            for r in rx.requests
                            if r.path == "/hook"
                        )

                    wait(lambda: seen("queue_deep", "firing"), "queue_deep firing delivered")
                    wait(lambda: seen("journal_degraded", "firing"), "journal_degraded delivered")
                    r = c.get("/ready")
                    assert r.status_code == 503, r.text
                    assert "journal" in r.json()["error"] and "No space" in r.json()["error"]
                    h = c.get("/health")
                    assert h.status_code == 200 and h.json()["status"] == "degraded", h.text
                    # the disk really refused a write: what came after it is held in memory,
                    # in order, so journal_degraded's own firing cannot be on disk yet (some
                    # transitions may be: they fit in the journal's last, already allocated page)
                    on_disk = [(e["event"], e.get("rule")) for e in iter_events(tmpfs)]
                    assert ("firing", "journal_degraded") not in on_disk, on_disk

                    filler.unlink()  # space returns: the journal catches up by itself
                    wait(lambda: c.get("/ready").status_code == 200, "ready again")
                    wait(
                        lambda: seen("journal_degraded", "resolved"),
                        "journal_degraded resolved delivered",
                    )
                    d.set_values({"queue": 1, "disks": DISKS})
                    wait(
                        lambda: any(
                            e.get("rule") == "queue_deep" and e["event"] == "resolved"
                            for e in iter_events(tmpfs)
                        ),
                        "the resolve journaled",
                    )
                health.check()
        finally:
            code = d.stop()
        assert code == 0, d.log()[-3000:]
        # whole lines only, seq strictly increasing, every checksum good
        raw = (tmpfs / ACTIVE).read_bytes()
        assert raw.endswith(b"\n")
        assert verify(tmpfs) == []
        evs = list(iter_events(tmpfs))
        seqs = [e["seq"] for e in evs]
        assert seqs == sorted(set(seqs)), seqs
        kinds = [(e.get("rule"), e["event"]) for e in evs if "alert" in e]
        assert ("queue_deep", "firing") in kinds and ("queue_deep", "resolved") in kinds
        assert kinds.index(("journal_degraded", "firing")) < kinds.index(
            ("journal_degraded", "resolved")
        )
        assert "Traceback" not in d.log(), d.log()[-3000:]


def test_a_failed_fsync_stops_the_daemon_non_zero(tmp_path: Path) -> None:
    # A character device as the active file: writes succeed and fdatasync fails
    # (EINVAL), a real kernel error standing in for EIO. Retrying an fsync after
    # a failure would lie, so vigil exits non-zero for systemd to restart it.
    d = Daemon(tmp_path, RULES)
    (tmp_path / "data").mkdir()
    os.symlink("/dev/null", tmp_path / "data" / ACTIVE)
    with open(d.logfile, "w") as log:
        proc = subprocess.Popen(
            [VIGIL, "run", "-c", str(tmp_path / "vigil.yaml")],
            cwd=tmp_path,
            stdout=log,
            stderr=log,
        )
        try:
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    out = d.log()
    assert code != 0, out[-3000:]
    assert "fsync failed" in out and "Traceback" not in out, out[-3000:]
