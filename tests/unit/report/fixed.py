"""A fixed journal for the golden and rendering tests: two days of a few rules,
with acknowledgements, escalations, a failed notification, flapping, a test
notification (not counted), unrelated events (skipped) and an alert still
firing at the end."""

from __future__ import annotations

from typing import Any

from engine.config.model import TimeInterval, TimeRange
from engine.report.metrics import Options
from tests.unit.report.journal_gen import write_journal

DAY0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z, a Tuesday
H = 3600.0


def _alert(kind: str, fp: str, rule: str, **labels: str) -> dict[str, Any]:
    return {
        "event": kind,
        "alert": fp,
        "rule": rule,
        "labels": labels,
        "severity": "critical",
        "value": 1,
    }


def _sent(fp: str, route: int, ok: bool = True, **extra: Any) -> dict[str, Any]:
    ev = {
        "event": "notified" if ok else "notify_failed",
        "channel": "ops",
        "key": f"k-{fp}-{route}",
        "alerts": [fp],
        "status": "firing",
        "group_key": f'ops|{route}|{{"rule":"x"}}',
        "attempts": 1,
        **extra,
    }
    if not ok:
        ev["error"] = "HTTP 503"
    return ev


def events() -> list[tuple[float, dict[str, Any]]]:
    web = {"team": "web", "target": "https://shop.example/health"}
    out: list[tuple[float, dict[str, Any]]] = [
        (DAY0 - 30 * H, _alert("firing", "old1", "disk_full", team="ops"))
    ]
    out.append((DAY0 - 29 * H, _alert("resolved", "old1", "disk_full", team="ops")))
    # day 1: the shop check fails twice at night and once in the afternoon
    for n, (start, length, ack) in enumerate(
        ((2 * H, 1800, 300), (3 * H, 600, None), (14 * H, 5400, 60))
    ):
        t = DAY0 + start
        out.append((t, _alert("pending", "http1", "http_down", **web)))
        out.append((t + 60, _alert("firing", "http1", "http_down", **web)))
        out.append((t + 65, _sent("http1", 0)))
        if ack is not None:
            out.append(
                (
                    t + 60 + ack,
                    {
                        "event": "acknowledged",
                        "alert": "http1",
                        "by": "ana",
                        "note": f"n{n}",
                        "until": None,
                    },
                )
            )
        if n == 2:
            out.append(
                (
                    t + 960,
                    {
                        "event": "escalated",
                        "alert": "http1",
                        "rule": "http_down",
                        "level": 1,
                        "channels": ["boss"],
                    },
                )
            )
            out.append((t + 961, _sent("http1", 0, kind="escalation", level=1)))
        out.append((t + 60 + length, _alert("resolved", "http1", "http_down", **web)))
        out.append((t + 61 + length, _sent("http1", 0)))
    # cpu flaps on host b, notifications through route 1, one failing
    for k in range(4):
        t = DAY0 + 20 * H + k * 900
        out.append((t, _alert("firing", "cpu-b", "cpu_high", team="ops", host="b")))
        out.append((t + 5, _sent("cpu-b", 1, ok=k != 2)))
        out.append((t + 300, _alert("resolved", "cpu-b", "cpu_high", team="ops", host="b")))
    out.append(
        (
            DAY0 + 20 * H + 2000,
            {**_alert("flapping", "cpu-b", "cpu_high", team="ops", host="b"), "changes": []},
        )
    )
    # still firing at the end, never acknowledged
    out.append((DAY0 + 40 * H, _alert("firing", "disk-a", "disk_full", team="ops", host="a")))
    out.append((DAY0 + 40 * H + 10, _sent("disk-a", 1)))
    # not counted: a test notification, and kinds a report skips
    out.append((DAY0 + 41 * H, {**_sent("x", 2), "alerts": [], "kind": "test"}))
    out.append((DAY0 + 41 * H + 1, {"event": "audit", "action": "ack", "by": "ana"}))
    out.append(
        (DAY0 + 41 * H + 2, {"event": "config_loaded", "hash": "h", "rules": 3, "channels": 1})
    )
    return out


def write(d: str) -> None:
    write_journal(d, events())


INTERVALS = {
    "off_hours": TimeInterval("off_hours", times=(TimeRange(0, 8 * 60), TimeRange(18 * 60, 1440))),
    "sleep_hours": TimeInterval("sleep_hours", times=(TimeRange(0, 7 * 60),)),
    "maintenance": TimeInterval("maintenance", times=(TimeRange(3 * 60, 4 * 60),)),
}

OPTIONS = Options(
    since=DAY0,
    until=DAY0 + 48 * H,
    bucket=H,
    off_hours="off_hours",
    sleep_hours="sleep_hours",
    maintenance="maintenance",
    availability_rules=("http_down",),
    availability_source="--availability-rule",
)
