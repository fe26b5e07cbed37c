"""The copy-on-write snapshot equals the state folded up to its seq, whatever is
folded while it is being copied."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.journal.snapshot_copy import StateCopy
from engine.journal.store import fold_event, initial_state


def firing(fp: str, i: int) -> dict[str, Any]:
    return {
        "event": "firing", "alert": fp, "rule": f"r{i % 7}", "labels": {"i": str(i)},
        "severity": "warning", "value": i, "ts": 1000.0 + i, "annotations": {"s": f"é{i}"},
    }  # fmt: skip


def events_after(rng: random.Random, fps: list[str], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in range(n):
        fp = rng.choice(fps) if fps else "gone"
        kind = rng.choice(["firing", "pending", "resolved", "ack", "notified", "silence", "new"])
        if kind == "new":
            fresh = f"new{k}"
            fps.append(fresh)
            out.append(firing(fresh, 500 + k))
        elif kind == "ack":
            out.append({"event": "acknowledged", "alert": fp, "by": "bob", "ts": 2000.0 + k})
        elif kind == "notified":
            many = rng.sample(fps, min(5, len(fps)))
            out.append({"event": "notified", "channel": "ops", "key": f"k{k}", "alerts": many,
                        "status": "firing", "ts": 2000.0 + k})  # fmt: skip
        elif kind == "silence":
            out.append({"event": "silence_created", "id": f"s{k}", "matchers": [], "until": 9e9})
        elif kind == "resolved":
            out.append({"event": "resolved", "alert": fp, "ts": 2000.0 + k})
        else:
            out.append({**firing(fp, k), "event": kind})
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), alerts=st.integers(0, 700), later=st.integers(0, 300))
def test_copy_is_the_state_at_its_seq(seed: int, alerts: int, later: int) -> None:
    rng = random.Random(seed)
    state = initial_state()
    fps = [f"{i:016x}" for i in range(alerts)]
    for i, fp in enumerate(fps):
        fold_event(state, firing(fp, i))
    state["silences"]["old"] = {"matchers": [], "until": 1.0}
    expected = copy.deepcopy(state)

    snap = StateCopy(state, seq=alerts)
    steps = snap.steps()
    for ev in events_after(rng, list(fps), later):
        if rng.random() < 0.3:
            next(steps, None)  # the copier and the folds interleave
        snap.before_fold(ev)
        fold_event(state, ev)
    for _ in steps:
        pass
    assert json.loads(snap.encoded()) == expected
