"""Alertmanager's routing semantics through the notification pipeline: inhibition
between alerts matching both sides, matchers, nested routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.config.model import Channel, Config, Inhibit, Matcher, Route
from engine.notify.base import Notification, iso
from engine.notify.pipeline import Pipeline

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()


def M(label: str, *values: str) -> Matcher:
    return Matcher(label, frozenset(values))


def fire(fp: str, *, rule: str = "r1", severity: str = "warning", **labels: str) -> dict[str, Any]:
    return {
        "event": "firing",
        "alert": fp,
        "rule": rule,
        "group": "g",
        "labels": dict(labels),
        "severity": severity,
        "value": 1.0,
        "annotations": {},
        "pending_since": T0,
        "firing_since": T0,
        "ts": iso(T0),
        "seq": 1,
    }


def pipe(routes: tuple[Route, ...], **kw: Any) -> Pipeline:
    names = sorted({c for r in routes for c in r.channels})
    chs = tuple(Channel(n, "webhook") for n in names)
    return Pipeline(Config(routes=routes, channels=chs, **kw), {c.name: "webhook" for c in chs})


def sent(p: Pipeline, now: float) -> list[tuple[str, str]]:
    out: list[Notification] = p.due(now)
    for n in out:
        p.delivered(n, True, now)
    return sorted((n.channel, a.fingerprint) for n in out for a in n.alerts)


def test_two_alerts_matching_both_sides_of_an_inhibit_rule_are_both_notified() -> None:
    """13.A.4: on old code each inhibited the other and nothing was sent."""
    rule = Inhibit((M("team", "db"),), (M("team", "db"),), ("host",))
    p = pipe((Route((), ("ops",), group_by=("...",)),), inhibits=(rule,))
    p.ingest(fire("a", rule="disk_full", team="db", host="h"), T0)
    p.ingest(fire("b", rule="replica_lag", team="db", host="h"), T0)
    assert sent(p, T0) == [("ops", "a"), ("ops", "b")]
