"""The notification pipeline's CPU cost for issue 4's burst, in process, no I/O.

Run from the repository root:  .venv/bin/python bench/pipeline.py [--rounds N]

1,000 alerts fire at once, routed to 3 webhook channels with one group per alert
(group_by: ['...'], as in bench/notify.py (a)): ingest the 1,000 `firing` events,
settle the 3,000 groups, take the 3,000 notifications from due() PUMP alerts at
a time (as the dispatcher does) and report each delivered. Then a channel's full queue:
1,000 one-alert notifications put into a 256-place queue, whose overflow is
folded into digests (bench/notify.py's healthy receivers get 238 requests).

Figures: the fastest of --rounds rounds (this VM's speed drifts by 1-2x from one
second to the next; the fastest round is the machine at its own speed), per
phase, and per notification, with the median round; and the share of issue 4's budget (0.5 s for the
whole burst, of which this is only one part) the pipeline takes.

No asserts: this prints figures for a person to read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.config.model import Channel, Config, Route  # noqa: E402
from engine.delivery.dispatch import PUMP  # noqa: E402
from engine.delivery.retry import BoundedQueue  # noqa: E402
from engine.notify.base import AlertView, Notification, iso  # noqa: E402
from engine.notify.digest import make_digest  # noqa: E402
from engine.notify.pipeline import Pipeline  # noqa: E402

N = 1_000
CHANNELS = ("hook-a", "hook-b", "hook-c")
T0 = 1_795_000_000.0
BUDGET = 0.5


def firing(i: int) -> dict[str, object]:
    return {
        "event": "firing",
        "alert": f"{i:016x}",
        "rule": f"burst_{i:04d}",
        "group": "burst",
        "labels": {"id": f"a{i:04d}", "team": "bench"},
        "severity": "warning",
        "value": 1.0,
        "annotations": {"summary": f"element a{i:04d} is on"},
        "pending_since": T0,
        "firing_since": T0,
        "ts": iso(T0),
        "seq": i,
    }


def view(i: int) -> AlertView:
    labels = {"id": f"a{i:04d}", "team": "bench"}
    return AlertView(f"{i:016x}", f"burst_{i:04d}", "firing", "warning", labels, {}, 1.0, T0)


def pipeline_round(config: Config, events: list[dict[str, object]]) -> dict[str, float]:
    types = {c: "webhook" for c in CHANNELS}
    p = Pipeline(config, types, textless=set(CHANNELS))
    t0 = time.perf_counter()
    for ev in events:
        p.ingest(ev, T0)
    t1 = time.perf_counter()
    while not p.settle(16):
        pass
    t2 = time.perf_counter()
    out: list[Notification] = []
    while batch := p.due(T0 + 0.01, max_alerts=PUMP):
        out += batch
    t3 = time.perf_counter()
    for n in out:
        p.delivered(n, True, T0 + 0.02)
    t4 = time.perf_counter()
    assert len(out) == N * len(CHANNELS)
    return {"ingest": t1 - t0, "settle": t2 - t1, "due": t3 - t2, "delivered": t4 - t3}


def fold_round() -> tuple[float, int]:
    def fold(items: Sequence[tuple[Notification, None]]) -> tuple[Notification, None]:
        return make_digest("hook-a", [n for n, _ in items], "a full queue"), None

    notes = [  # new views each round, as a new burst has
        Notification("hook-a", f"g{i}", "firing", (view(i),), f"k{i}", "", "") for i in range(N)
    ]
    q: BoundedQueue[tuple[Notification, None]] = BoundedQueue(256, fold)
    t0 = time.perf_counter()
    for n in notes:
        q.put_nowait((n, None))
    return time.perf_counter() - t0, len(q)


def _total(r: dict[str, float]) -> float:
    return sum(r.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    route = Route((), CHANNELS, group_by=("...",), group_wait=0.0, group_interval=1.0)
    config = Config(routes=(route,), channels=tuple(Channel(c, "webhook") for c in CHANNELS))
    events = [firing(i) for i in range(N)]
    rounds = sorted((pipeline_round(config, events) for _ in range(args.rounds)), key=_total)
    best, median = rounds[0], _total(rounds[len(rounds) // 2])
    total = _total(best)
    notes = N * len(CHANNELS)
    print(f"pipeline, {N:,} alerts -> {len(CHANNELS)} channels, one group per alert")
    print(
        "    "
        + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in best.items())
        + f"; all {total * 1e3:.1f} ms = {total / notes * 1e6:.1f} µs per notification"
        f" ({total / BUDGET:.0%} of the burst's 0.5 s budget); fastest of {args.rounds} rounds,"
        f" their median {median * 1e3:.1f} ms"
    )
    folds = sorted(fold_round() for _ in range(args.rounds))
    print(
        f"queue overflow, {N:,} notifications into a 256-place queue: {folds[0][0] * 1e3:.1f} ms"
        f" (median {folds[len(folds) // 2][0] * 1e3:.1f} ms), {folds[0][1]} queued afterwards"
        " (digests included)"
    )


if __name__ == "__main__":
    main()
