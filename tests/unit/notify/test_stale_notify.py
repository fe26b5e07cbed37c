"""A stale alert (a collector its rule reads is down) is shown as such in what the
pipeline sends, and the mark alone is never a reason to send (issue 13.A.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.config.model import Channel, Config, Route
from engine.journal.store import fold_event, initial_state
from engine.notify.base import iso
from engine.notify.pipeline import Pipeline

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()


def ev(kind: str, at: float, **kw: Any) -> dict[str, Any]:
    return {
        "event": kind, "alert": "a", "rule": "r1", "group": "g", "labels": {"host": "h1"},
        "severity": "warning", "value": 1, "firing_since": at, "pending_since": at,
        "ts": iso(at), **kw,
    }  # fmt: skip


def pipeline() -> Pipeline:
    route = Route((), ("ops",), group_wait=0.0, group_interval=60, repeat_interval=600)
    return Pipeline(
        Config(routes=(route,), channels=(Channel("ops", "webhook"),)), {"ops": "webhook"}
    )


def sent(p: Pipeline, now: float) -> list[dict[str, Any]]:
    out = p.due(now)
    for n in out:
        p.delivered(n, True, now)
    return [a.as_dict() for n in out for a in n.alerts]


def test_stale_shows_in_the_reminder_and_sends_nothing_by_itself() -> None:
    p = pipeline()
    p.ingest(ev("firing", T0), T0)
    assert [a["stale"] for a in sent(p, T0)] == [False]
    p.ingest({"event": "stale", "alert": "a", "ts": iso(T0 + 10)}, T0 + 10)
    assert sent(p, T0 + 70) == []  # the mark is no news
    (reminder,) = sent(p, T0 + 600)
    assert reminder["status"] == "firing" and reminder["stale"] is True
    p.ingest({"event": "stale_end", "alert": "a", "ts": iso(T0 + 700)}, T0 + 700)
    assert sent(p, T0 + 760) == []
    (reminder,) = sent(p, T0 + 1200)
    assert reminder["stale"] is False


def test_stale_survives_a_restart() -> None:
    state = initial_state()
    fold_event(state, ev("firing", T0))
    fold_event(state, {"event": "stale", "alert": "a", "ts": iso(T0 + 10)})
    assert state["alerts"]["a"]["stale"] is True
    p = pipeline()
    p.load_state(state, T0 + 20)
    (a,) = sent(p, T0 + 20)  # never told before: sent, marked
    assert a["stale"] is True
