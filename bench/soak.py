"""Soak: kill -9 the daemon at random moments while alerts flap, and kill -9 its
sender process during notification bursts; count what was lost or doubled.

Run from the repository root (not in CI; about 3 s per round on 2 busy cores):

    .venv/bin/python bench/soak.py            # 1,000 rounds
    .venv/bin/python bench/soak.py --n 50     # 50 rounds, ~3 minutes

Set-up. `vigil run` as a real process (the configuration of
tests/integration/daemon.py) with ALERTS rules `app.v<k> > 0` (`for: 200ms`,
evaluated every 100 ms, flapping detection off) over a `file` collector read every
100 ms, whose JSON this bench rewrites atomically to flip alerts. One route to a
`webhook` channel (group_by the rule, so one alert per notification; group_wait
0, group_interval 200 ms) whose receiver (tests/integration/receivers.py, in
this process) records every request with its Idempotency-Key and answers 200.
Journal segments of 1 MiB, so kills also land around rotations.

One round, N rounds (so N kills of each kind, plus the start-up kills):
  1. start the daemon (bounded by START_TIMEOUT);
  2. the journal check and the settle check below;
  3. a burst: flip every alert at once, and kill -9 the sender process (the
     daemon's child `python -m engine.delivery.sender_child`) 0-600 ms later;
     wait for the daemon to start a new one (SENDER_TIMEOUT), then settle;
  4. flap: flip 1-3 random alerts every 10-250 ms for 0.2-2 s, then kill -9 the
     daemon at that moment (in 15% of rounds 0-0.5 s into a SIGTERM stop); record
     every complete line of the journal.
  In 20% of rounds step 1 is preceded by a start killed 0-1 s after its launch.

Figures (target 0 each):
  transitions lost
      = journal lines lost: lines that were complete and checksum-valid in the
        journal at a kill (the daemon writes a transition there before it acts
        on it: that is its acknowledgement) and are missing or changed after
        the restart (by seq and checksum);
      + flips lost: at each settle point (after each restart, after each sender
        respawn, at the end) the bench stops flipping; an alert whose last
        transition in the journal does not agree with the value the bench last
        wrote (1: `firing`; 0: `resolved`, `inactive` or none) within
        SETTLE_TIMEOUT counts once. A flip shorter than a collection is not
        required to be seen (sampling), only the state that stays.
  duplicate deliveries under different keys
      an occasion (alert fingerprint, status, starts_at) that reached the
      receiver (2xx) under more than one Idempotency-Key; each extra key counts.
      Re-sends under the same key are allowed (the receiver drops them) and
      counted apart.
  restarts that failed
      daemon starts that did not reach `started` in the journal within
      START_TIMEOUT, and sender processes not replaced within SENDER_TIMEOUT.
Also printed: final states not delivered (an alert whose last delivered status
differs from its final journal state, after a settle), same-key re-sends,
tracebacks in the daemon's log, time per round.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.daemon import VIGIL, Daemon  # noqa: E402
from tests.integration.receivers import Receiver, Reply  # noqa: E402

ALERTS = 12
START_TIMEOUT = 30.0
SENDER_TIMEOUT = 20.0
SETTLE_TIMEOUT = 15.0
KILL_TIMEOUT = 10.0
TRANSITIONS = ("pending", "firing", "resolved", "inactive")
PREFIX = re.compile(rb'\{"v":\d+,"seq":(\d+),')

RULES = "group: app\ninterval: 100ms\nrules:\n" + "".join(
    f"  - {{id: r{k}, expr: 'app.v{k} > 0', for: 200ms, severity: warning,"
    " flapping: {max_changes: 1000000, window: 1s}}\n"
    for k in range(ALERTS)
)
CHANNELS = """\
channels:
  - {{name: hook, type: webhook, url: "{url}/hook"}}
routes:
  - channels: [hook]
    group_by: [rule]
    group_wait: 0s
    group_interval: 200ms
    repeat_interval: 720h
"""


class JournalReader:
    """Reads the journal's new complete lines as they come, across rotations
    (files keyed by inode, so a renamed active segment is not read twice)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.offsets: dict[int, int] = {}
        self.state: dict[str, str] = {}  # rule -> last transition
        self.fp: dict[str, str] = {}  # rule -> alert fingerprint
        self.last_seq = 0
        self.started = 0

    def poll(self) -> None:
        if not self.data.exists():
            return
        segs = sorted(
            self.data.glob("alerts*.jsonl"), key=lambda p: (p.name == "alerts.jsonl", p.name)
        )
        for seg in segs:
            try:
                with open(seg, "rb") as f:
                    ino = os.fstat(f.fileno()).st_ino
                    f.seek(self.offsets.get(ino, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            cut = data.rfind(b"\n") + 1
            if not cut:
                continue
            self.offsets[ino] = self.offsets.get(ino, 0) + cut
            for line in data[:cut].split(b"\n")[:-1]:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                self.last_seq = max(self.last_seq, ev.get("seq", 0))
                if ev.get("event") == "started":
                    self.started += 1
                rule = ev.get("rule")
                if ev.get("event") in TRANSITIONS and isinstance(rule, str):
                    self.state[rule] = ev["event"]
                    self.fp[rule] = ev.get("alert", "")


def complete_lines(data: Path, since_seq: int) -> dict[int, bytes]:
    """seq -> checksum of every whole line with seq > since_seq (reads only the
    segments that can hold them: the active one and the newest rotated ones)."""
    out: dict[int, bytes] = {}
    rotated = sorted(data.glob("alerts-*.jsonl"))
    firsts = [int(p.name[7:-6]) for p in rotated]
    keep = [p for i, p in enumerate(rotated) if i + 1 >= len(firsts) or firsts[i + 1] > since_seq]
    for seg in [*keep, data / "alerts.jsonl"]:
        try:
            raw = seg.read_bytes()
        except FileNotFoundError:
            continue
        for line in raw.split(b"\n")[:-1]:
            m = PREFIX.match(line)
            if m and int(m.group(1)) > since_seq and line.endswith(b'"}'):
                out[int(m.group(1))] = line[-10:-2]
    return out


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"sender_child" in Path(f"/proc/{d}/cmdline").read_bytes():
                out.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Soak:
    def __init__(self, root: Path, rx: Receiver, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.d = Daemon(root, RULES, CHANNELS.format(url=rx.url), "log: {segment_bytes: 1MiB}\n")
        self.rx = rx
        self.values = {f"v{k}": 0 for k in range(ALERTS)}
        self.d.set_values(self.values)
        self.j = JournalReader(root / "data")
        self.proc: subprocess.Popen[bytes] | None = None
        self.before_kill: dict[int, bytes] = {}
        self.checked_from = 0
        self.fig: dict[str, int] = defaultdict(int)

    # -- the daemon ----------------------------------------------------------------
    def start(self) -> bool:
        before = self.j.started
        with open(self.d.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [VIGIL, "run", "-c", str(self.d.root / "vigil.yaml")],
                cwd=self.d.root, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.j.poll()
            if self.j.started > before:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.fig["daemon restarts failed"] += 1
        print(f"  restart failed (exit {self.proc.poll()}):\n{self.d.log()[-1500:]}")
        self.kill_daemon()
        return False

    def kill_daemon(self) -> None:
        if self.proc is None:
            return
        senders = children(self.proc.pid)
        self.proc.kill()
        self.proc.wait(KILL_TIMEOUT)
        # its sender sees the socket close and exits; one that stays is an orphan
        deadline = time.monotonic() + KILL_TIMEOUT
        while any(alive(p) for p in senders) and time.monotonic() < deadline:
            time.sleep(0.02)
        for p in senders:
            if alive(p):
                self.fig["orphan senders (killed by the bench)"] += 1
                os.kill(p, signal.SIGKILL)
        self.proc = None

    # -- flips and checks ----------------------------------------------------------
    def flip(self, keys: list[int]) -> None:
        for k in keys:
            self.values[f"v{k}"] ^= 1
        self.d.set_values(self.values)

    def agrees(self) -> list[str]:
        bad = []
        for k in range(ALERTS):
            last = self.j.state.get(f"r{k}")
            want_firing = self.values[f"v{k}"] == 1
            if (last == "firing") != want_firing:
                bad.append(f"r{k}")
        return bad

    def settle(self, where: str) -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            self.j.poll()
            bad = self.agrees()
            if not bad or time.monotonic() > deadline:
                break
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if bad:
            self.fig["flips lost"] += len(bad)
            print(f"  {where}: journal disagrees with the values for {bad}")

    def check_journal(self) -> None:
        """Every line whole at the kill is still there after the restart."""
        after = complete_lines(self.d.root / "data", self.checked_from)
        lost = [s for s, crc in self.before_kill.items() if after.get(s) != crc]
        if lost:
            self.fig["journal lines lost"] += len(lost)
            print(f"  lines lost by the restart: seqs {lost[:10]}")

    def wait_sender(self, old: list[int]) -> list[int]:
        """The daemon's sender process(es) other than `old`, once there is one."""
        assert self.proc is not None
        deadline = time.monotonic() + SENDER_TIMEOUT
        while time.monotonic() < deadline:
            new = [p for p in children(self.proc.pid) if p not in old and alive(p)]
            if new:
                return new
            time.sleep(0.05)
        return []

    # -- one round -----------------------------------------------------------------
    def kill_during_start_up(self) -> None:
        """kill -9 0-1 s after launching: during replay, the torn-tail repair,
        the first collections and notifications."""
        with open(self.d.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [VIGIL, "run", "-c", str(self.d.root / "vigil.yaml")],
                cwd=self.d.root, stdout=log, stderr=log,
            )  # fmt: skip
        time.sleep(self.rnd.uniform(0.0, 1.0))
        self.kill_daemon()
        self.fig["daemon kills during start-up"] += 1

    def round(self) -> None:
        if self.rnd.random() < 0.2:
            self.kill_during_start_up()  # the lines whole at the last kill must survive it too
        if not self.start():
            return
        assert self.proc is not None
        self.check_journal()
        self.settle("after restart")
        # a burst, and the sender killed during it
        senders = self.wait_sender([])
        self.flip(list(range(ALERTS)))
        time.sleep(self.rnd.uniform(0.0, 0.6))  # firings come 200 ms (for) after
        if senders:
            for p in senders:
                os.kill(p, signal.SIGKILL)
            self.fig["sender kills"] += 1
            if not self.wait_sender(senders):
                self.fig["sender restarts failed"] += 1
                print("  the sender process was not replaced")
        else:
            self.fig["sender restarts failed"] += 1
            print("  no sender process to kill")
        self.settle("after the sender's restart")
        # flap, then kill the daemon at that moment
        end = time.monotonic() + self.rnd.uniform(0.2, 2.0)
        while time.monotonic() < end:
            self.flip(self.rnd.sample(range(ALERTS), self.rnd.randint(1, 3)))
            time.sleep(self.rnd.uniform(0.01, 0.25))
        if self.rnd.random() < 0.15:
            # during a clean stop: the shutdown snapshot, the sender's drain
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            time.sleep(self.rnd.uniform(0.0, 0.5))
            self.fig["daemon kills during shutdown"] += 1
        self.kill_daemon()
        self.fig["daemon kills"] += 1
        self.j.poll()
        self.checked_from = max(0, self.j.last_seq - 5000)
        self.before_kill = complete_lines(self.d.root / "data", self.checked_from)

    def finish(self) -> None:
        if not self.start():
            return
        self.check_journal()
        self.settle("at the end")
        # the receiver's last status of each alert is its final state
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            undelivered = self.final_undelivered()
            if not undelivered or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.fig["final states not delivered"] = len(undelivered)
        if undelivered:
            print(f"  final state not delivered for {undelivered}")
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill_daemon()

    def final_undelivered(self) -> list[str]:
        last: dict[str, str] = {}
        for r in self.rx.requests:
            if r.ok and r.path == "/hook":
                for a in r.json()["alerts"]:
                    last[a["fingerprint"]] = a["status"]
        bad = []
        for rule, fp in self.j.fp.items():
            want = "firing" if self.j.state.get(rule) == "firing" else "resolved"
            if last.get(fp, "resolved") != want:
                bad.append(rule)
        return bad

    def deliveries(self) -> None:
        keys: dict[tuple[str, str, Any], set[str]] = defaultdict(set)
        sent: dict[tuple[str, str, Any, str], int] = defaultdict(int)
        for r in self.rx.requests:
            if not (r.ok and r.path == "/hook"):
                continue
            key = r.headers.get("idempotency-key", "")
            for a in r.json()["alerts"]:
                occasion = (a["fingerprint"], a["status"], a["starts_at"])
                keys[occasion].add(key)
                sent[(*occasion, key)] += 1
        self.fig["occasions delivered"] = len(keys)
        self.fig["duplicate deliveries under different keys"] = sum(
            len(k) - 1 for k in keys.values()
        )
        self.fig["re-sends under the same key"] = sum(n - 1 for n in sent.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="rounds (kills of each kind); 1000")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vigil-soak-"))
    t0 = time.monotonic()
    with Receiver(default=Reply(200, delay=0.01)) as rx:
        s = Soak(tmp, rx, args.seed)
        try:
            for i in range(args.n):
                s.round()
                if (i + 1) % 10 == 0:
                    print(f"round {i + 1}/{args.n}: {dict(s.fig)}", flush=True)
                if s.fig["daemon restarts failed"] >= 3 and i >= 2:
                    consecutive = s.fig["daemon restarts failed"]
                    print(f"stopping: {consecutive} restarts failed")
                    break
            s.finish()
        finally:
            if s.proc is not None and s.proc.poll() is None:
                s.kill_daemon()
        s.deliveries()
    f = s.fig
    elapsed = time.monotonic() - t0
    print(f"\nvigil soak: {args.n} rounds in {elapsed:.0f}s ({elapsed / max(args.n, 1):.1f}s each)")
    print(
        f"  daemon kill -9: {f['daemon kills'] + f['daemon kills during start-up']} "
        f"({f['daemon kills during start-up']} during start-up, "
        f"{f['daemon kills during shutdown']} during shutdown), "
        f"sender kill -9: {f['sender kills']}"
    )
    lost = f["journal lines lost"] + f["flips lost"]
    print(
        f"  transitions lost: {lost} (journal lines {f['journal lines lost']}, "
        f"flips {f['flips lost']})  target 0"
    )
    dup = f["duplicate deliveries under different keys"]
    print(f"  duplicate deliveries under different keys: {dup}  target 0")
    failed = f["daemon restarts failed"] + f["sender restarts failed"]
    print(
        f"  restarts that failed: {failed} (daemon {f['daemon restarts failed']}, "
        f"sender {f['sender restarts failed']})  target 0"
    )
    print(f"  final states not delivered: {f['final states not delivered']}  target 0")
    print(
        f"  occasions delivered: {f['occasions delivered']}; re-sends under the same key: "
        f"{f['re-sends under the same key']}; orphan senders: "
        f"{f['orphan senders (killed by the bench)']}"
    )
    tracebacks = s.d.log().count("Traceback")
    print(f"  tracebacks in the daemon's log: {tracebacks}")
    if args.keep:
        print(f"  files in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if lost == dup == failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
