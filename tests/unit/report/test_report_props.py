"""The report against a brute-force recount, on random journals.

Hypothesis draws alert lifecycles (ground truth: when each episode opened, fired,
was acknowledged, resolved), notifications, escalations and flaps; they are
written to a real journal, and `make_report` over a random period must give what
a plain recount of the ground truth gives: incidents, open, acknowledged, MTTA,
MTTR (mean, median, p95), time firing (counted second by second), escalations,
notifications and failures, per rule and in total, and the noisiest/flapping
rules against the previous period. The report read from the history index's
rows (all, some, or none of the journal indexed) is the same bytes as the one
read from every journal line, in every format.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.journal.digest import Digester, listing, rows_dir
from engine.report.build import FORMATS, make_report, render
from engine.report.metrics import Options
from tests.unit.report.journal_gen import write_journal

pytestmark = pytest.mark.timeout(240)

T0 = 1_790_000_000  # whole seconds: the journal keeps milliseconds, so no rounding
RULES = ("cpu", "disk", "http")
HOSTS = ("a", "b")


@dataclass
class Ep:
    rule: str
    fp: str
    opened: int
    firing: int | None
    ack: int | None
    resolved: int | None


@st.composite
def histories(draw: Any) -> tuple[list[Ep], list[tuple[float, dict[str, Any]]], int, int]:
    events: list[tuple[float, dict[str, Any]]] = []
    eps: list[Ep] = []
    for rule in RULES:
        for host in HOSTS:
            fp = f"{rule}-{host}"
            labels = {"host": host, "team": "ops" if rule != "http" else "web"}
            base = {"alert": fp, "rule": rule, "labels": labels, "severity": "warning", "value": 1}
            t = T0 + draw(st.integers(0, 600))
            for _ in range(draw(st.integers(0, 8))):
                # distinct, increasing times within one alert: its events never tie
                opened = t
                fires = draw(st.booleans())
                pend = draw(st.booleans())
                firing = opened + (draw(st.integers(1, 900)) if pend else 0) if fires else None
                if pend or not fires:
                    events.append((opened, {"event": "pending", **base}))
                if firing is not None:
                    events.append((firing, {"event": "firing", **base}))
                last = firing if firing is not None else opened
                end = last + draw(st.integers(1, 3600))
                ack = None
                if draw(st.booleans()):
                    ack = opened + draw(st.integers(0, end - opened + 600))  # maybe after the end
                    if ack in (firing, end):
                        ack = None  # a tie with the firing or resolved event: order unsaid
                if ack is not None:
                    events.append(
                        (
                            ack,
                            {
                                "event": "acknowledged",
                                "alert": fp,
                                "by": "me",
                                "note": "",
                                "until": None,
                            },
                        )
                    )
                closes = draw(st.integers(0, 5)) > 0
                if closes:
                    kind = "resolved" if firing is not None else "inactive"
                    events.append((end, {"event": kind, **base}))
                if firing is not None:
                    for _ in range(draw(st.integers(0, 2))):
                        at = firing + draw(st.integers(1, 400))
                        ok = draw(st.booleans())
                        events.append(
                            (
                                at,
                                {
                                    "event": "notified" if ok else "notify_failed",
                                    "channel": "ops",
                                    "key": f"k{at}",
                                    "alerts": [fp],
                                    "status": "firing",
                                    "group_key": f'ops|{RULES.index(rule) % 2}|{{"rule":"{rule}"}}',
                                    "attempts": 1,
                                },
                            )
                        )
                    if draw(st.booleans()):
                        at = firing + draw(st.integers(1, 400))
                        events.append(
                            (
                                at,
                                {
                                    "event": "escalated",
                                    "alert": fp,
                                    "rule": rule,
                                    "level": 1,
                                    "channels": ["x"],
                                },
                            )
                        )
                eps.append(
                    Ep(
                        rule,
                        fp,
                        opened,
                        firing,
                        ack,
                        end if closes else None,
                    )
                )
                if not closes:
                    break
                t = max(end, ack or 0) + draw(st.integers(1, 600))
        for _ in range(draw(st.integers(0, 3))):
            at = T0 + draw(st.integers(0, 4 * 3600))
            events.append(
                (
                    at + 0.5,
                    {
                        "event": "flapping",
                        "alert": f"{rule}-a",
                        "rule": rule,
                        "labels": {},
                        "severity": "warning",
                        "value": 1,
                    },
                )
            )
    length = draw(st.integers(600, 2 * 3600))
    # every event at or after the previous period's start: an alert that began firing
    # before everything the report reads is not seen (README: "what it reads")
    until = T0 + draw(st.integers(1, 2 * length))
    return eps, events, until - length, until


def p95(values: list[float]) -> float:
    # the smallest value with at least 95% of the values at or below it
    return min(v for v in values if sum(1 for x in values if x <= v) >= 0.95 * len(values))


def expected_stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "mean": sum(values) / len(values),
        "median": statistics.median(values),
        "p95": p95(values),
    }


def recount(
    eps: list[Ep],
    events: list[tuple[float, dict[str, Any]]],
    since: int,
    until: int,
    rules: set[str] | None,
):
    mine = [e for e in eps if rules is None or e.rule in rules]

    # events at or after `until` are not read: an episode resolved then is open
    def resolved(e: Ep) -> int | None:
        return e.resolved if e.resolved is not None and e.resolved < until else None

    def acked(e: Ep) -> int | None:
        if e.ack is None or e.ack >= until or e.ack < e.opened:
            return None
        r = resolved(e)
        return e.ack if r is None or e.ack < r else None

    now = [e for e in mine if e.firing is not None and since <= e.firing < until]
    tta = [max(0, acked(e) - e.firing) for e in now if acked(e) is not None]
    ttr = [resolved(e) - e.firing for e in now if resolved(e) is not None]
    seconds = set()
    for e in mine:
        if e.firing is None or e.firing >= until:
            continue
        stop = resolved(e) if resolved(e) is not None else until
        seconds |= {s for s in range(e.firing, stop) if since <= s < until}
    names = rules if rules is not None else set(RULES)
    counted = [
        ev
        for t, ev in events
        if since <= t < until
        and (ev.get("rule") in names or any(a.split("-")[0] in names for a in ev.get("alerts", ())))
    ]
    return {
        "incidents": len(now),
        "open": sum(1 for e in now if resolved(e) is None),
        "acknowledged": len(tta),
        "mtta": expected_stats(tta),
        "mttr": expected_stats(ttr),
        "time_firing_pct": 100.0 * len(seconds) / (until - since),
        "escalations": sum(1 for ev in counted if ev["event"] == "escalated"),
        "notifications": sum(1 for ev in counted if ev["event"] == "notified"),
        "notification_failures": sum(1 for ev in counted if ev["event"] == "notify_failed"),
    }


def check_row(got: dict[str, Any], want: dict[str, Any]) -> None:
    for k in (
        "incidents",
        "open",
        "acknowledged",
        "escalations",
        "notifications",
        "notification_failures",
    ):
        assert got[k] == want[k], k
    assert got["time_firing_pct"] == pytest.approx(want["time_firing_pct"], abs=0.006)
    for k in ("mtta", "mttr"):
        if want[k] is None:
            assert got[k] is None, k
        else:
            for q in ("mean", "median", "p95"):
                assert got[k][q] == pytest.approx(want[k][q], abs=0.0011), (k, q)


def both_ways(
    d: str, events: list[tuple[float, dict[str, Any]]], o: Options, indexed: int, seg: int
) -> dict[str, Any]:
    """The report of `events`, read from the history index's rows where they are
    and by the full scan: the same bytes in every format (returns the report).
    The index covers the first `indexed` events (behind the journal by the rest),
    chunks of a few lines, segments of `seg` bytes."""
    ordered = sorted(events, key=lambda x: x[0])
    write_journal(d, ordered[:indexed], seg)
    Digester(d, block=700, active_min=0).update()
    write_journal(d, ordered[indexed:], seg)
    if indexed:
        assert listing(rows_dir(d)), "the index holds rows"
    report = make_report(d, o)
    plain = make_report(d, o, index=False)
    for fmt in FORMATS:
        assert render(report, fmt) == render(plain, fmt), fmt
    return report


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(histories(), st.floats(0, 1), st.sampled_from([1500, 4000, 1 << 26]))
def test_report_agrees_with_a_recount(h: Any, covered: float, seg: int) -> None:
    eps, events, since, until = h
    with tempfile.TemporaryDirectory() as d:
        o = Options(since=float(since), until=float(until))
        report = both_ways(d, events, o, int(covered * len(events)), seg)
    check_row(report["totals"], recount(eps, events, since, until, None))
    rows = {r["name"]: r for r in report["rules"]}
    for rule in RULES:
        want = recount(eps, events, since, until, {rule})
        if rule not in rows:
            assert want["incidents"] == want["notifications"] == want["escalations"] == 0
            assert want["notification_failures"] == 0 and want["time_firing_pct"] == 0
            continue
        check_row(rows[rule], want)
    # teams: the `team` label (ops: cpu and disk; web: http), the same recount
    teams = {r["name"]: r for r in report["teams"]}
    for team, rules in (("ops", {"cpu", "disk"}), ("web", {"http"})):
        want = recount(eps, events, since, until, rules)
        if team in teams:
            check_row(teams[team], want)
        else:
            assert want["incidents"] == want["notifications"] == 0
    # routes: an alert's are those its notifications in the period went through
    # (cpu and http: #0, disk: #1); an alert never notified in it is in "(none)"
    told = {a for t, ev in events if since <= t < until for a in ev.get("alerts", ())}
    routes = {r["name"]: r["incidents"] for r in report["routes"] if r["incidents"]}
    want_routes: dict[str, int] = {}
    for e in eps:
        if e.firing is not None and since <= e.firing < until:
            name = f"#{RULES.index(e.rule) % 2}" if e.fp in told else "(none)"
            want_routes[name] = want_routes.get(name, 0) + 1
    assert routes == want_routes
    # noisiest and flapping: this period against the one before, of the same length
    before = since - (until - since)
    for key, items, count in (
        (
            "incidents",
            report["noisiest"],
            lambda r, a, b: sum(
                1 for e in eps if e.rule == r and e.firing is not None and a <= e.firing < b
            ),
        ),
        (
            "flaps",
            report["flapping"],
            lambda r, a, b: sum(
                1
                for t, ev in events
                if ev["event"] == "flapping" and ev["rule"] == r and a <= t < b
            ),
        ),
    ):
        want = {r: (count(r, since, until), count(r, before, since)) for r in RULES}
        assert {i["rule"]: (i[key], i["previous"]) for i in items} == {
            r: v for r, v in want.items() if v[0] > 0
        }
        ranked = [i["rule"] for i in items]
        assert ranked == sorted(ranked, key=lambda r: (-want[r][0], r))
    assert math.isclose(report["period"]["seconds"], until - since)


def test_stats_are_mean_median_and_nearest_rank_p95() -> None:
    from engine.report.metrics import stats

    values = [float(v) for v in range(20, 0, -1)]  # 1..20, unsorted
    assert stats(values) == {"mean": 10.5, "median": 10.5, "p95": 19.0}
    assert stats([5.0, 1.0, 3.0]) == {"mean": 3.0, "median": 3.0, "p95": 5.0}
    assert stats(values[:11]) == expected_stats(values[:11])  # 10..20: p95 is 20
    assert stats([]) is None
