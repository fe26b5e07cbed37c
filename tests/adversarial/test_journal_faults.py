"""14.F journal faults against a real `vigil run`: kill -9 during journal writes,
torn last lines, corrupt lines in the middle, damaged snapshots, a journal that
is a directory or unreadable, a data_dir that is a file.

In every case the daemon says ONE clear line about what it did (never a
traceback) and loses no transition that was completely written:
- damage it can repair safely (a torn final line, an unreadable snapshot) is
  repaired with a warning and the daemon starts;
- damage it must not guess about (a bad line in the middle, a journal it cannot
  open, a snapshot whose content no vigil wrote) stops start-up with one line
  naming the file (SPEC §3: `file:offset`), and `vigil log repair` then lets it
  start with every good line kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.daemon import VIGIL, Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ALERTS = 6
RULES = "group: app\ninterval: 100ms\nrules:\n" + "".join(
    f"  - {{id: r{k}, expr: 'app.v{k} > 0', for: 200ms, severity: warning}}\n"
    for k in range(ALERTS)
)
TRANSITIONS = ("pending", "firing", "resolved", "inactive")


def complete_lines(d: Daemon) -> dict[int, bytes]:
    """seq -> bytes of every whole, checksum-valid line in the journal now."""
    from engine.journal.lines import BadLine, open_line

    out: dict[int, bytes] = {}
    for seg in sorted((d.root / "data").glob("alerts*.jsonl")):
        for line in seg.read_bytes().split(b"\n")[:-1]:  # the part after the last \n is torn
            with contextlib.suppress(BadLine):
                out[open_line(line)["seq"]] = line
    return out


def try_start(d: Daemon, *, wrap: list[str] | None = None, timeout: float = 30) -> tuple[int, str]:
    """Run `vigil run` that is expected to refuse to start: (exit code, output)."""
    p = subprocess.run(
        [*(wrap or []), VIGIL, "run", "-c", str(d.root / "vigil.yaml")],
        cwd=d.root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.returncode, p.stdout + p.stderr


def firing_then_more(tmp_path: Path) -> Daemon:
    """A journal with a snapshot (from a clean stop) and transitions after it
    (a second run killed with -9, so no snapshot covers them)."""
    d = Daemon(tmp_path, RULES)
    d.set_values({"v0": 1})
    d.start()
    d.wait_for(lambda e: "firing" in d.alert_events("r0"), what="r0 firing")
    assert d.stop() == 0
    d.start()
    d.set_values({"v0": 1, "v1": 1})
    d.wait_for(lambda e: "firing" in d.alert_events("r1"), what="r1 firing")
    d.set_values({"v1": 1})
    d.wait_for(lambda e: "resolved" in d.alert_events("r0"), what="r0 resolved")
    d.kill9()
    return d


def assert_one_line(out: str, needle: str) -> None:
    assert "Traceback" not in out, out
    hits = [line for line in out.splitlines() if needle in line]
    assert len(hits) == 1, (needle, out)


def test_kill9_during_journal_writes_loses_no_complete_line(tmp_path: Path) -> None:
    """Twelve kill -9 at random moments while six alerts flap (a transition batch
    every few ms): every restart succeeds, and every line that was whole in the
    journal at the kill is there, byte for byte, after the restart."""
    rnd = random.Random(14)
    d = Daemon(tmp_path, RULES)
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            d.set_values({f"v{k}": rnd.randrange(2) for k in range(ALERTS)})
            time.sleep(rnd.uniform(0.02, 0.3))

    flipper = threading.Thread(target=flap, daemon=True)
    flipper.start()
    try:
        d.start()
        for _ in range(12):
            time.sleep(rnd.uniform(0.1, 1.5))
            d.kill9()
            before = complete_lines(d)
            d.start()  # raises if this restart fails
            after = complete_lines(d)
            lost = {s: b for s, b in before.items() if after.get(s) != b}
            assert not lost, f"lines lost or changed by the restart: {lost}"
        assert d.stop() == 0
    finally:
        stop.set()
        flipper.join(5)
        if d.proc is not None and d.proc.poll() is None:
            d.kill9()
    assert "Traceback" not in d.log()
    assert sum(1 for e in d.events() if e["event"] in TRANSITIONS) > 12


@pytest.mark.parametrize("tail", ["half a line", "zeros", "half a line then zeros"])
def test_torn_last_line_is_cut_with_one_warning_and_nothing_else_lost(
    tmp_path: Path, tail: str
) -> None:
    d = firing_then_more(tmp_path)
    before = complete_lines(d)
    half = b'{"v":1,"seq":%d,"ts":"2026-12-0' % (max(before) + 1)
    with open(d.journal, "ab") as f:
        # a write cut short by the crash; zeros: the size grew but the data never
        # reached the disk (delayed allocation after a power cut)
        f.write({"half a line": half, "zeros": b"\0" * 4096}.get(tail, half + b"\0" * 4096))
    d.start()
    assert_one_line(d.log(), "torn final line")
    after = complete_lines(d)
    assert all(after.get(s) == b for s, b in before.items())
    # the replay knew r1 was firing: not announced a second time
    time.sleep(0.6)
    assert d.alert_events("r1").count("firing") == 1
    assert d.stop() == 0


def test_corrupt_line_in_the_middle_stops_start_up_then_repair_keeps_the_rest(
    tmp_path: Path,
) -> None:
    d = firing_then_more(tmp_path)
    before = complete_lines(d)
    snap = max(int(p.name[9:21]) for p in (d.root / "data").glob("snapshot-*.json"))
    # rot one byte of the first transition after the snapshot (replay must read it)
    victim = min(s for s, b in before.items() if s > snap and b'"alert"' in b and s < max(before))
    raw = d.journal.read_bytes()
    at = raw.index(before[victim]) + before[victim].index(b'"rule":"') + 9
    d.journal.write_bytes(raw[:at] + b"X" + raw[at + 1 :])
    code, out = try_start(d)
    assert code == 1
    assert_one_line(out, f"{d.journal}:{raw.index(before[victim])}: checksum mismatch")
    rep = subprocess.run(
        [VIGIL, "log", "repair", "-c", str(d.root / "vigil.yaml")],
        cwd=d.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rep.returncode == 0, rep.stdout + rep.stderr
    d.start()
    after = complete_lines(d)
    assert all(after.get(s) == b for s, b in before.items() if s != victim)
    quarantined = next((d.root / "data").glob("quarantine-*.jsonl")).read_text()
    assert json.loads(quarantined.splitlines()[0])["reason"] == "checksum mismatch"
    assert d.stop() == 0


@pytest.mark.parametrize(
    "damage",
    ["truncated", "zeros", "empty", "directory", "fifo", "wrong seq"],
)
def test_damaged_newest_snapshot_falls_back_with_one_warning(tmp_path: Path, damage: str) -> None:
    d = Daemon(tmp_path, RULES)
    d.set_values({"v0": 1})
    d.start()
    d.wait_for(lambda e: "firing" in d.alert_events("r0"), what="r0 firing")
    assert d.stop() == 0
    (snap,) = (d.root / "data").glob("snapshot-*.json")  # only one: the log is whole
    body = snap.read_bytes()
    if damage == "truncated":
        snap.write_bytes(body[: len(body) // 2])
    elif damage == "zeros":
        snap.write_bytes(b"\0" * len(body))
    elif damage == "empty":
        snap.write_bytes(b"")
    elif damage == "directory":
        snap.unlink()
        snap.mkdir()
    elif damage == "fifo":  # would block the read forever
        snap.unlink()
        os.mkfifo(snap)
    else:
        snap.write_bytes(body.replace(b'"seq":', b'"seq":1', 1))
    before = complete_lines(d)
    d.start()
    assert_one_line(d.log(), f"{snap}:")
    assert "replaying from the log from its start" in d.log()
    time.sleep(0.6)
    assert d.alert_events("r0") == ["pending", "firing"]  # replayed, not fired again
    d.set_values({})
    d.wait_for(lambda e: "resolved" in d.alert_events("r0"), what="r0 resolved")
    assert d.stop() == 0  # its shutdown snapshot too (a directory in the way is not ours)
    assert "Traceback" not in d.log()
    after = complete_lines(d)
    assert all(after.get(s) == b for s, b in before.items())


def test_snapshot_content_no_vigil_wrote_is_named_in_one_line(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    d.set_values({"v0": 1})
    d.start()
    d.wait_for(lambda e: "firing" in d.alert_events("r0"), what="r0 firing")
    assert d.stop() == 0
    (snap,) = (d.root / "data").glob("snapshot-*.json")
    seq = int(snap.name[9:21])
    # valid JSON without a checksum (a hand edit), of the wrong shape
    snap.write_bytes(b'{"v":1,"seq":%d,"state":{"alerts":5}}' % seq)
    code, out = try_start(d)
    assert code == 1
    assert_one_line(out, f"cannot replay the snapshot at seq {seq}")


def test_line_of_a_newer_format_is_refused_in_one_line(tmp_path: Path) -> None:
    """A journal written by a newer vigil (after a downgrade): not torn, not
    guessed at; start-up names it."""
    from engine.journal.lines import seal

    d = firing_then_more(tmp_path)
    seq = max(complete_lines(d)) + 1
    with open(d.journal, "ab") as f:
        f.write(seal({"v": 2, "seq": seq, "ts": "2026-12-06T00:00:00.000Z", "event": "x"}))
    code, out = try_start(d)
    assert code == 1
    assert_one_line(out, "format version 2 is newer than this vigil reads")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_journal_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    """A FIFO would block the first read forever (the daemon hung at start)."""
    d = firing_then_more(tmp_path)
    shutil.rmtree(d.root / "data")
    (d.root / "data").mkdir()
    d.journal.mkdir() if kind == "directory" else os.mkfifo(d.journal)
    code, out = try_start(d)
    assert code == 1
    why = "cannot open the journal: Is a directory" if kind == "directory" else "a FIFO"
    assert_one_line(out, f"{d.journal}: {why}")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_rotated_segment_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    d = firing_then_more(tmp_path)
    for s in (d.root / "data").glob("snapshot-*.json"):
        s.unlink()  # replay must read the segments
    # the active segment as a rotated one, then a "newer segment" that is not a file
    d.journal.rename(d.root / "data" / "alerts-000000000001.jsonl")
    odd = d.root / "data" / "alerts-000000100000.jsonl"
    odd.mkdir() if kind == "directory" else os.mkfifo(odd)
    code, out = try_start(d)
    assert code == 1
    why = "cannot open the journal: Is a directory" if kind == "directory" else "a FIFO"
    assert_one_line(out, f"{odd}: {why}")


def test_unreadable_journal(tmp_path: Path) -> None:
    """As root the test drops CAP_DAC_OVERRIDE (setpriv) so that file modes apply."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run without CAP_DAC_OVERRIDE")
    d = firing_then_more(tmp_path)
    os.chmod(d.journal, 0)
    wrap = (
        ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
         "--bounding-set=-dac_override,-dac_read_search"]
        if os.geteuid() == 0 else []
    )  # fmt: skip
    code, out = try_start(d, wrap=wrap)
    assert code == 1
    assert_one_line(out, f"{d.journal}: cannot open the journal: Permission denied")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    (d.root / "data").write_text("not a directory\n")
    code, out = try_start(d)
    assert code == 1
    assert_one_line(out, f"vigil: {d.root / 'data'}: not a directory; not starting")
