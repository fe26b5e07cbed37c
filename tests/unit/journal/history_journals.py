"""Random journals for the history index's tests, and the brute-force recount that
says what the index must answer (engine/journal/history_query.py's semantics,
written again from the events, as plainly as possible)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.common.matchers import Matcher, matches_all
from engine.config.model import LogConfig
from engine.journal.format import parse_ts
from engine.journal.journal import Journal
from engine.journal.reader import iter_events
from engine.rules.state import fingerprint

SERIES = [
    ("cpu_high", {"host": "web-1", "team": "ops"}),
    ("cpu_high", {"host": "web-2", "team": "ops"}),
    ("cpu_high", {"host": "db-1"}),
    ("disk_full", {"host": "db-1", "mount": "/"}),
    ("probe_down", {"target": "https://a.example", "team": "web"}),
]
FPS = [fingerprint(r, labels) for r, labels in SERIES]


def alert_event(kind: str, i: int) -> dict[str, Any]:
    rule, labels = SERIES[i]
    return {
        "event": kind,
        "alert": FPS[i],
        "rule": rule,
        "labels": labels,
        "severity": "critical" if i % 2 else "warning",
        "value": 1.5,
    }


def op_events(op: tuple[str, int, int]) -> list[dict[str, Any]]:
    """One generated step as journal events (whatever the alert's state: the index
    must cope with any order the journal holds)."""
    kind, i, j = op
    if kind in ("pending", "firing", "resolved", "inactive"):
        return [alert_event(kind, i)]
    if kind == "acknowledged":
        return [
            {"event": "acknowledged", "alert": FPS[i], "by": f"u{j}", "note": "n", "until": None}
        ]
    if kind == "unacknowledged":
        return [{"event": "unacknowledged", "alert": FPS[i], "by": "u"}]
    if kind in ("notified", "notify_failed"):
        fps = sorted({FPS[i], FPS[j]})
        return [
            {"event": kind, "channel": "hook", "key": "k", "alerts": fps, "status": "ok",
             "group_key": "g", "attempts": 1}
        ]  # fmt: skip
    if kind == "other":
        return [{"event": "collector_down", "collector": "c", "error": "x"}]
    raise AssertionError(kind)


@dataclass
class Clock:
    t: float = 1_790_000_000.0

    def __call__(self) -> float:
        return self.t


def write_journal(
    data_dir: str,
    ops: list[tuple[str, int, int]],
    steps: list[float],
    restarts: set[int],
    clock: Clock,
    *,
    on_restart: Any = None,
    on_append: Any = None,
    segment_bytes: int = 64 * 1024 * 1024,
) -> None:
    """Append `ops` (the clock advancing by `steps`), closing and reopening the journal
    (a daemon restart: stopped, started) before each index in `restarts`; call
    `on_append(n)` after the n-th op is written."""
    cfg = LogConfig(fsync="never", segment_bytes=segment_bytes)
    j = Journal(data_dir, cfg, clock=clock)
    j.open()
    j.append_sync([{"event": "started", "version": "t", "pid": 1}])
    for n, (op, dt) in enumerate(zip(ops, steps, strict=True)):
        if n in restarts:
            j.append_sync([{"event": "stopped", "pid": 1}])
            j.close_sync()
            if on_restart is not None:
                on_restart()
            j = Journal(data_dir, cfg, clock=clock)
            j.open()
            j.append_sync([{"event": "started", "version": "t", "pid": 1}])
        clock.t += dt
        j.append_sync(op_events(op))  # type: ignore[arg-type]
        if on_append is not None:
            on_append(n)
    j.close_sync()


@dataclass
class Ep:
    id: int
    fp: str
    rule: str
    start: float
    pending_at: float | None = None
    firing_at: float | None = None
    end: float | None = None
    end_kind: str | None = None
    acked_at: float | None = None
    ack_by: str | None = None
    notified: int = 0
    failed: int = 0
    severity: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def recount(data_dir: str) -> tuple[list[Ep], list[dict[str, Any]]]:
    """Every episode, by reading the whole journal; and the events themselves."""
    events = list(iter_events(data_dir))
    eps: list[Ep] = []
    open_: dict[str, Ep] = {}
    latest: dict[str, Ep] = {}
    for ev in events:
        t = parse_ts(ev["ts"])
        kind, fp = ev["event"], ev.get("alert")
        if kind in ("pending", "firing"):
            ep = open_.get(fp)
            if ep is not None and kind == "pending" and ep.firing_at is not None:
                ep.end, ep.end_kind = t, "pending"
                ep = None
            if ep is None:
                ep = Ep(len(eps) + 1, fp, ev["rule"], t, labels=ev["labels"])
                eps.append(ep)
                open_[fp] = latest[fp] = ep
            if kind == "pending" and ep.pending_at is None:
                ep.pending_at = t
            if kind == "firing" and ep.firing_at is None:
                ep.firing_at = t
            ep.severity = ev["severity"]
        elif kind in ("resolved", "inactive") and fp in open_:
            ep = open_.pop(fp)
            ep.end, ep.end_kind = t, kind
        elif kind == "acknowledged" and fp in open_ and open_[fp].acked_at is None:
            open_[fp].acked_at, open_[fp].ack_by = t, ev["by"]
        elif kind in ("notified", "notify_failed"):
            for one in ev["alerts"]:
                if one in latest:
                    if kind == "notified":
                        latest[one].notified += 1
                    else:
                        latest[one].failed += 1
    return eps, events


def _match(ep: Ep, rule: str | None, ms: list[Matcher]) -> bool:
    return (rule is None or ep.rule == rule) and matches_all(
        ms, {**ep.labels, "alertname": ep.rule}
    )


def brute_episodes(
    eps: list[Ep], rule: str | None, ms: list[Matcher], t1: float, t2: float, limit: int
) -> list[int]:
    hits = [
        e for e in eps
        if _match(e, rule, ms) and e.start <= t2 and (e.end is None or e.end >= t1)
    ]  # fmt: skip
    hits.sort(key=lambda e: (e.start, e.id), reverse=True)
    return [e.id for e in hits[:limit]]


def brute_state_at(eps: list[Ep], t: float) -> list[tuple[int, str]]:
    on = [e for e in eps if e.start <= t and (e.end is None or e.end > t)]
    on.sort(key=lambda e: (e.start, e.id))
    return [
        (e.id, "firing" if e.firing_at is not None and e.firing_at <= t else "pending") for e in on
    ]


def brute_counts(
    eps: list[Ep], width: int, t1: float, t2: float
) -> list[tuple[int, int, int, int]]:
    out = []
    b = int(t1 // width) * width
    while b <= int(t2 // width) * width:
        e_ = b + width
        started = sum(1 for e in eps if b <= e.start < e_)
        fired = sum(1 for e in eps if e.firing_at is not None and b <= e.firing_at < e_)
        firing = sum(
            1 for e in eps
            if e.firing_at is not None and e.firing_at < e_
            and (e.end is None or max(e.end, e.firing_at) >= b)
        )  # fmt: skip
        out.append((b, started, fired, firing))
        b = e_
    return out
