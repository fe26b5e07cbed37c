"""`vigil report --since 365d` over a journal of 1,000,000 events: time and peak RSS.

Run from the repository root:  .venv/bin/python bench/report.py [--events N] [--keep DIR]

1. Generates a year of history with the journal writer (real segments, 64 MiB
   each, checksummed lines): incidents of 200 rules over 500 hosts, each
   pending → firing → notified → (acknowledged) → (escalated) → resolved →
   notified, some flapping and failed notifications, and unrelated lines
   (audit, config_loaded) the report skips. Kept in DIR (default
   /tmp/vigil-bench-report-<N>) and reused when it is there already.
2. Runs `vigil report --since 365d --until <end> --format F -o FILE` as a
   subprocess, and prints the wall time, its CPU time (on a loaded machine the two
   differ; CPU time does not depend on the load) and the peak RSS (the child's
   ru_maxrss):
   - cold without the index (`--no-index`): every journal line parsed;
   - the rows the daemon's history follower keeps (engine/journal/digest.py)
     built as its child builds them (Digester.update, timed apart: not part of
     any report's time), then the first report with them;
   - for each format, the best of three runs with them.
   Target: <= 2 s and <= 150 MB.

No asserts: this prints figures for a person.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config.model import LogConfig
from engine.journal.journal import Journal

ROOT = Path(__file__).resolve().parent.parent
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
YEAR = 365 * 86400.0
TIME_TARGET, RSS_TARGET_MB = 2.0, 150.0
SEVERITIES = ("info", "warning", "critical")


def _incident(rng: random.Random, t: float, n: int) -> list[tuple[float, dict[str, Any]]]:
    host, rule = rng.randrange(500), rng.randrange(200)
    fp = f"{(host * 7919 + rule * 104729 + n * 31) & 0xFFFFFFFFFFFF:012x}"
    labels = {"host": f"web-{host:03d}", "team": f"team{rule % 7}", "env": "prod"}
    base = {
        "alert": fp,
        "rule": f"rule_{rule:03d}",
        "labels": labels,
        "severity": SEVERITIES[rule % 3],
    }
    firing = t + rng.uniform(30, 300)
    resolved = firing + rng.expovariate(1 / 1800)
    gk = f'ops|{rule % 4}|{{"rule":"rule_{rule:03d}"}}'
    out: list[tuple[float, dict[str, Any]]] = [
        (t, {"event": "pending", **base, "value": 1}),
        (firing, {"event": "firing", **base, "value": 2}),
        (
            firing + 1,
            {
                "event": "notified",
                "channel": "ops",
                "key": f"k{n}",
                "alerts": [fp],
                "status": "firing",
                "group_key": gk,
                "attempts": 1,
                "resolved": [],
            },
        ),
    ]
    if rng.random() < 0.6:
        out.append(
            (
                firing + rng.uniform(10, 900),
                {"event": "acknowledged", "alert": fp, "by": "op", "note": "on it", "until": None},
            )
        )
    if rng.random() < 0.1:
        out.append(
            (
                firing + 600,
                {
                    "event": "escalated",
                    "alert": fp,
                    "rule": base["rule"],
                    "level": 1,
                    "channels": ["boss"],
                },
            )
        )
    if rng.random() < 0.05:
        out.append((firing + 5, {"event": "flapping", **base, "value": 2, "changes": [firing]}))
    out.append((resolved, {"event": "resolved", **base, "value": 0}))
    ok = rng.random() > 0.03
    out.append(
        (
            resolved + 1,
            {
                "event": "notified" if ok else "notify_failed",
                "channel": "ops",
                "key": f"r{n}",
                "alerts": [fp],
                "status": "resolved",
                "group_key": gk,
                "attempts": 1,
                "resolved": [fp],
                **({} if ok else {"error": "timeout"}),
            },
        )
    )
    if rng.random() < 0.3:
        out.append(
            (
                resolved + 2,
                {
                    "event": "audit",
                    "action": "ack",
                    "by": "op",
                    "method": "POST",
                    "path": "/api/v1/alerts",
                },
            )
        )
    return out


def generate(d: str, n: int) -> float:
    """n events over a year; returns the epoch of the last."""
    rng = random.Random(7)
    now = [START]
    j = Journal(d, LogConfig(fsync="never"), clock=lambda: now[0])
    j.open()
    heap: list[tuple[float, int, dict[str, Any]]] = []
    written = k = 0
    per = YEAR / (n / 7.2)  # ~7.2 events per incident
    t = START
    while written < n:
        t += rng.expovariate(1 / per)
        for ev in _incident(rng, t, k):
            heapq.heappush(heap, (ev[0], k, ev[1]))
            k += 1
        while heap and heap[0][0] <= t and written < n:
            at, _, ev = heapq.heappop(heap)
            now[0] = at
            j.append_sync([ev], durable=False)
            written += 1
    j.close_sync()
    return now[0]


def _run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall time, CPU time and peak RSS (MB) of one run of `cmd` (its own rusage)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=tempfile.gettempdir())
    _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{cmd}: exit {p.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _cmd(d: str, until: float, fmt: str, out: str, *extra: str) -> list[str]:
    from engine.journal.format import format_ts

    return [str(ROOT / ".venv/bin/vigil"), "report", "--since", "365d", "--until", format_ts(until),
            "--data-dir", d, "--format", fmt, "-o", out, *extra]  # fmt: skip


def measure(d: str, until: float, fmt: str, out: str) -> tuple[float, float, float]:
    """The best of 3 runs: wall time, its CPU time, and the peak RSS of the three."""
    runs = [_run(_cmd(d, until, fmt, out)) for _ in range(3)]
    wall, cpu, _ = min(runs)
    return wall, cpu, max(r[2] for r in runs)


def _line(what: str, wall: float, cpu: float, rss: float) -> None:
    verdict = "meets" if wall <= TIME_TARGET and rss <= RSS_TARGET_MB else "MISSES"
    print(
        f"  {what:<34} {wall:.2f} s (CPU {cpu:.2f} s)  peak RSS {rss:.0f} MB  "
        f"({verdict} <= {TIME_TARGET} s, <= {RSS_TARGET_MB:.0f} MB)"
    )


def main() -> None:
    from engine.journal.digest import Digester, rows_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()
    d = args.keep or f"/tmp/vigil-bench-report-{args.events}"
    stamp = Path(d) / "until.txt"
    if not stamp.exists():
        os.makedirs(d, exist_ok=True)
        t0 = time.perf_counter()
        until = generate(d, args.events) + 1
        stamp.write_text(repr(until))
        print(f"generated {args.events:,} events in {time.perf_counter() - t0:.1f} s")
    until = float(stamp.read_text())
    size = sum(p.stat().st_size for p in Path(d).glob("alerts*.jsonl"))
    print(f"journal: {d}, {size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
    _line("cold, no index (--no-index)", *_run(_cmd(d, until, "json", os.devnull, "--no-index")))
    shutil.rmtree(rows_dir(d), ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    chunks = Digester(d).update()
    print(
        f"  the index's rows built as the daemon's history child builds them: {chunks} chunks "
        f"in {time.perf_counter() - t0:.2f} s (CPU {time.process_time() - c0:.2f} s), "
        f"{sum(p.stat().st_size for p in Path(rows_dir(d)).iterdir()) / 2**20:.0f} MiB"
    )
    _line("cold, with the index", *_run(_cmd(d, until, "json", os.devnull)))
    for fmt in ("json", "html", "md", "csv"):
        with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as f:
            _line(f"warm, with the index, --format {fmt}", *measure(d, until, fmt, f.name))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
