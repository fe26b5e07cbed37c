"""History index benchmark (issue 17.1): a year of journal, the index built from it,
and each kind of query's p50/p99.

Run from the repository root:  .venv/bin/python bench/history.py [--events N] [--series N]

1. Writes N journal events (default 1,000,000) spread over 365 days through the
   real Journal (fsync never, so the disk does not set the pace): --series alert
   instances of 40 rules going pending -> firing (80 %) or inactive, notified,
   sometimes acknowledged, resolved, notified again; a daemon restart and API
   audits now and then.
2. Builds the index from scratch in this thread (engine/journal/history.py's
   build_now): time, events per second, size of data_dir/history beside the
   journal's size.
3. Queries, --queries each, random parameters, timed in this process on the
   Reader (the API adds its JSON encoding): p50, p99, max per kind.
4. Incremental cost: appends 20,000 more events in chunks of 100, the index
   catching up after each chunk: microseconds per event.
5. The event loop while the follower rebuilds the whole index, in a child process
   (what the daemon does) and in a thread: a 10 ms timer's lateness (p99, max)
   measured in the loop during the rebuild, and idle for comparison.

Target: every query kind p99 <= 50 ms. No asserts: figures for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.common.matchers import parse
from engine.config.model import LogConfig
from engine.journal.history import HistoryIndex
from engine.journal.history_build import remove_index
from engine.journal.history_query import DAY, Reader
from engine.journal.journal import Journal
from engine.rules.state import fingerprint

YEAR = 365 * DAY
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def series(n: int) -> list[tuple[str, dict[str, str], str]]:
    out = []
    for i in range(n):
        rule = f"rule_{i % 40:02d}"
        labels = {
            "host": f"{['web', 'db', 'cache', 'queue'][i % 4]}-{i // 4 % 200}",
            "team": ["ops", "web", "data"][i % 3],
            "env": "prod" if i % 5 else "staging",
        }
        out.append((rule, labels, fingerprint(rule, labels)))
    return out


def generate(data_dir: str, n_events: int, n_series: int, rng: random.Random) -> list[str]:
    sers = series(n_series)
    state = ["idle"] * n_series
    clock = Clock()
    j = Journal(data_dir, LogConfig(fsync="never"), clock=clock)
    j.open()
    step = YEAR / n_events
    written = 0
    batch: list[dict[str, Any]] = []

    def alert(kind: str, i: int) -> dict[str, Any]:
        rule, labels, fp = sers[i]
        sev = "critical" if i % 7 == 0 else "warning"
        return {"event": kind, "alert": fp, "rule": rule, "labels": labels, "severity": sev,
                "value": round(rng.random() * 100, 2)}  # fmt: skip

    while written < n_events:
        i = rng.randrange(n_series)
        s = state[i]
        fp = sers[i][2]
        if rng.random() < 0.002:
            evs: list[dict[str, Any]] = [
                {"event": "stopped", "pid": 1},
                {"event": "started", "version": "bench", "pid": 2},
            ]
        elif rng.random() < 0.01:
            evs = [{"event": "audit", "action": "ack", "by": "ops", "alert": fp}]
            evs[0].pop("alert")
        elif s == "idle":
            evs, state[i] = [alert("pending", i)], "pending"
        elif s == "pending":
            if rng.random() < 0.8:
                evs, state[i] = [alert("firing", i)], "firing"
                evs.append({"event": "notified", "channel": "pager", "key": f"k{written}",
                            "alerts": [fp], "status": "ok", "group_key": "g", "attempts": 1})  # fmt: skip
            else:
                evs, state[i] = [alert("inactive", i)], "idle"
        elif rng.random() < 0.3:
            evs = [
                {"event": "acknowledged", "alert": fp, "by": "ops", "note": "on it", "until": None}
            ]
        else:
            evs, state[i] = [alert("resolved", i)], "idle"
            evs.append({"event": "notified", "channel": "pager", "key": f"r{written}",
                        "alerts": [fp], "status": "ok", "group_key": "g", "attempts": 1})  # fmt: skip
        for ev in evs:
            clock.t += rng.expovariate(1 / step)
            batch.append(ev)
            written += 1
            if len(batch) >= 5000:
                j.append_sync(batch)  # type: ignore[arg-type]
                batch = []
    if batch:
        j.append_sync(batch)  # type: ignore[arg-type]
    j.close_sync()
    return [s[2] for s in sers]


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def timed(fn: Any, n: int) -> tuple[float, float, float, int]:
    out = []
    rows = 0
    for _ in range(n):
        t = time.perf_counter()
        got = fn()
        out.append((time.perf_counter() - t) * 1000)
        rows += len(got) if isinstance(got, list) else len((got or {}).get("events", ()))
    return statistics.median(out), pct(out, 0.99), max(out), rows // n


async def loop_lag(index: HistoryIndex | None, child: bool = True) -> tuple[float, float, int]:
    """How late a 10 ms timer of this loop fires while `index` rebuilds (None: for 5 s
    with nothing else to do, the machine's own noise)."""
    late: list[float] = []
    t0 = time.perf_counter()
    if index is not None:
        index.start(child=child)
    while not index.ready if index is not None else time.perf_counter() - t0 < 5:
        want = time.perf_counter() + 0.010
        await asyncio.sleep(0.010)
        late.append((time.perf_counter() - want) * 1000)
    build = time.perf_counter() - t0
    if index is not None:
        index.stop()
    return pct(late, 0.99), max(late), round(build)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dir", help="keep the data here (default: a temporary dir, removed)")
    a = ap.parse_args()
    rng = random.Random(17)
    d = a.dir or tempfile.mkdtemp(prefix="vigil-bench-history-")
    try:
        t = time.perf_counter()
        fps = generate(d, a.events, a.series, rng)
        print(f"journal: {a.events:,} events, {a.series} series over 365 days, "
              f"{dir_size(d) / 1e6:.0f} MB, written in {time.perf_counter() - t:.1f} s")  # fmt: skip

        remove_index(d)
        index = HistoryIndex(d, pause=0.0)
        t = time.perf_counter()
        index.build_now()
        took = time.perf_counter() - t
        size = dir_size(os.path.join(d, "history"))
        print(f"index build: {took:.1f} s ({a.events / took:,.0f} events/s), "
              f"{size / 1e6:.0f} MB in data_dir/history")  # fmt: skip

        r = Reader(d)
        n = a.queries
        ms_ops = [parse("team=ops"), parse('host=~"web-1.*"')]

        def window(days: float) -> tuple[float, float]:
            t1 = T0 + rng.random() * (YEAR - days * DAY)
            return t1, t1 + days * DAY

        kinds = {
            "episodes rule=X, 7 d": lambda: r.episodes(rule=f"rule_{rng.randrange(40):02d}",
                                                       t1=(w := window(7))[0], t2=w[1]),
            "episodes rule=X, whole year": lambda: r.episodes(rule=f"rule_{rng.randrange(40):02d}"),
            "episodes team=ops host=~web-1.*, 30 d": lambda: r.episodes(
                matchers=ms_ops, t1=(w := window(30))[0], t2=w[1]),
            "episodes env!=prod, 1 d": lambda: r.episodes(
                matchers=[parse("env!=prod")], t1=(w := window(1))[0], t2=w[1]),
            "episodes any, 1 h, limit 1000": lambda: r.episodes(
                t1=(w := window(1 / 24))[0], t2=w[1], limit=1000),
            "state at T": lambda: r.state_at(T0 + rng.random() * YEAR),
            "counts by hour, 24 h": lambda: r.counts("hour", *window(1)),
            "counts by hour, 7 d": lambda: r.counts("hour", *window(7)),
            "counts by day, 365 d": lambda: r.counts("day", T0, T0 + YEAR),
            "timeline of one alert": lambda: r.timeline(rng.choice(fps)),
        }  # fmt: skip
        r.episodes()  # load the series once, as the daemon's query thread keeps them
        print(f"\nqueries ({n} each, ms)            p50     p99     max   rows")
        for name, fn in kinds.items():
            p50, p99, mx, rows = timed(fn, n)
            print(f"  {name:<36} {p50:6.2f}  {p99:6.2f}  {mx:6.2f}  {rows:5d}")
        r.close()

        # incremental: the daemon appends, the index follows
        clock = Clock()
        clock.t = T0 + YEAR
        j = Journal(d, LogConfig(fsync="never"), clock=clock)
        j.open()
        b = index.open_builder()
        spent, added = 0.0, 0
        for c in range(200):
            evs = []
            for k in range(100):
                clock.t += 1
                i = (c * 100 + k) % len(fps)
                kind = ("pending", "firing", "resolved")[(c + k) % 3]
                evs.append({"event": kind, "alert": fps[i], "rule": "rule_00",
                            "labels": {"host": "x"}, "severity": "warning", "value": 1})  # fmt: skip
            j.append_sync(evs)  # type: ignore[arg-type]
            t = time.perf_counter()
            added += index.catch_up(b)
            spent += time.perf_counter() - t
        j.close_sync()
        b.db.close()
        print(f"\nincremental: {added:,} events in chunks of 100, "
              f"{spent / added * 1e6:.0f} µs per event (read from the journal, folded, committed)")  # fmt: skip

        p99, mx, _ = asyncio.run(loop_lag(None))
        print(
            f"\nevent loop, 10 ms timer late by (ms): idle               p99 {p99:5.1f}  max {mx:5.1f}"
        )
        for child, where in ((True, "child process"), (False, "thread       ")):
            remove_index(d)
            p99, mx, build = asyncio.run(loop_lag(HistoryIndex(d), child))
            print(
                f"  during a full rebuild in a {where} ({build:3d} s) p99 {p99:5.1f}  max {mx:5.1f}"
            )
    finally:
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
