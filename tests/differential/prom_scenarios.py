"""The rule scenarios run through Prometheus and vigil (test_diff_prometheus.py).

Each scenario is one alerting rule `<id>` on its own metric: Prometheus evaluates
`<id>_v > 5` on the series the exporter serves; vigil evaluates `it.value > 5`
for each element of the file collector's list `app.<id>` (one element per series,
the series' labels as the element's labels). Both evaluate every second.
`steps` give, from an offset in seconds on, the whole set of series of the
scenario ("host=a,team=db" -> value; a series not listed is absent). Offset 0 is
the state before the timeline starts and must not fire.

Every scenario also has a twin rule `<id>_twin` with the same expression and
labels but no `for` / `keep_firing_for`: its transitions are the evaluations at
which the expression itself turned true or false, the reference the timers
(`for`, `keep_firing_for`) are measured from in each program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

THRESHOLD = 5
HI, LO = 7.0, 1.0


@dataclass(frozen=True)
class PromScenario:
    id: str
    doc: str
    steps: tuple[tuple[float, Mapping[str, float]], ...]
    for_: str = "0s"
    keep_firing_for: str = "0s"
    labels: Mapping[str, str] = field(default_factory=dict)
    resolve_below: float | None = None  # vigil only: resolve_expr (hysteresis), on purpose

    @property
    def end(self) -> float:
        return max(t for t, _ in self.steps)


def _s(*steps: tuple[float, Mapping[str, float]]) -> tuple[tuple[float, Mapping[str, float]], ...]:
    return tuple(steps)


A = "host=a"
B = "host=b"
C = "host=c"

SCENARIOS: tuple[PromScenario, ...] = (
    PromScenario(
        "p01_for_zero",
        "for: 0 fires at the first true evaluation and resolves at the first false one",
        _s((0, {A: LO}), (2, {A: HI}), (6, {A: LO})),
    ),
    PromScenario(
        "p02_for_fires",
        "for: 3s: pending first, firing three evaluations later, resolved when false",
        _s((0, {A: LO}), (1, {A: HI}), (9, {A: LO})),
        for_="3s",
    ),
    PromScenario(
        "p03_for_interrupted",
        "a false evaluation while pending drops the alert; the next episode starts its own for",
        _s((0, {A: LO}), (1, {A: HI}), (3, {A: LO}), (5, {A: HI}), (12, {A: LO})),
        for_="4s",
    ),
    PromScenario(
        "p04_for_never_reached",
        "true for less than `for`: pending, then inactive, never firing",
        _s((0, {A: LO}), (1, {A: HI}), (4, {A: LO})),
        for_="6s",
    ),
    PromScenario(
        "p05_for_below_interval",
        "for shorter than the evaluation interval fires on the second true evaluation",
        _s((0, {A: LO}), (1, {A: HI}), (6, {A: LO})),
        for_="500ms",
    ),
    PromScenario(
        "p06_keep_firing_for",
        "keep_firing_for: 3s: stays firing until 3s after the first false evaluation",
        _s((0, {A: LO}), (1, {A: HI}), (4, {A: LO})),
        keep_firing_for="3s",
    ),
    PromScenario(
        "p07_keep_firing_refire",
        "true again inside keep_firing_for: no resolve; the window restarts at the next false",
        _s((0, {A: LO}), (1, {A: HI}), (4, {A: LO}), (6, {A: HI}), (9, {A: LO})),
        keep_firing_for="4s",
    ),
    PromScenario(
        "p08_keep_firing_not_for_pending",
        "keep_firing_for does not hold a pending alert: it goes inactive at the first false",
        _s((0, {A: LO}), (1, {A: HI}), (3, {A: LO})),
        for_="4s",
        keep_firing_for="3s",
    ),
    PromScenario(
        "p09_for_and_keep_firing",
        "for: 2s and keep_firing_for: 2s together",
        _s((0, {A: LO}), (1, {A: HI}), (6, {A: LO})),
        for_="2s",
        keep_firing_for="2s",
    ),
    PromScenario(
        "p10_keep_firing_one_interval",
        "keep_firing_for equal to the evaluation interval holds exactly one evaluation",
        _s((0, {A: LO}), (1, {A: HI}), (4, {A: LO})),
        keep_firing_for="1s",
    ),
    PromScenario(
        "p11_per_series",
        "one alert per series, each with its own for timer and resolve",
        _s(
            (0, {A: LO, B: LO}),
            (1, {A: HI, B: LO}),
            (3, {A: HI, B: HI}),
            (7, {A: LO, B: HI}),
            (10, {A: LO, B: LO}),
        ),
        for_="2s",
    ),
    PromScenario(
        "p12_series_disappears",
        "a series that disappears resolves its alert; the others stay",
        _s((0, {A: LO, B: LO}), (1, {A: HI, B: HI}), (4, {B: HI}), (7, {})),
    ),
    PromScenario(
        "p13_disappears_keep_firing",
        "a series that disappears is held by keep_firing_for like a false evaluation",
        _s((0, {A: LO}), (1, {A: HI}), (4, {})),
        keep_firing_for="3s",
    ),
    PromScenario(
        "p14_rule_label_wins",
        "a rule label wins over the series' label of the same name (team)",
        _s((0, {"host=a,team=db": LO}), (1, {"host=a,team=db": HI}), (5, {"host=a,team=db": LO})),
        labels={"team": "infra"},
    ),
    PromScenario(
        "p15_rule_severity_wins",
        "the rule's severity wins over a series label `severity`",
        _s(
            (0, {"host=a,severity=critical": LO}),
            (1, {"host=a,severity=critical": HI}),
            (5, {"host=a,severity=critical": LO}),
        ),
    ),
    PromScenario(
        "p16_series_labels_kept",
        "the series' own labels stay on the alert next to the rule's",
        _s((0, {"host=a,dc=x": LO}), (1, {"host=a,dc=x": HI}), (5, {"host=a,dc=x": LO})),
        labels={"team": "infra"},
    ),
    PromScenario(
        "p17_label_change_new_alert",
        "a series whose labels change is a new alert; the old one resolves",
        _s(
            (0, {"host=a,ver=1": LO}), (1, {"host=a,ver=1": HI}), (4, {"host=a,ver=2": HI}), (7, {})
        ),
    ),
    PromScenario(
        "p18_resolve_then_pending_again",
        "resolved, then true again: a new pending period of the full `for`",
        _s((0, {A: LO}), (1, {A: HI}), (5, {A: LO}), (6, {A: HI}), (11, {A: LO})),
        for_="2s",
    ),
    PromScenario(
        "p19_staggered_series",
        "three series going true one second apart each fire `for` after their own start",
        _s(
            (0, {A: LO, B: LO, C: LO}),
            (1, {A: HI, B: LO, C: LO}),
            (2, {A: HI, B: HI, C: LO}),
            (3, {A: HI, B: HI, C: HI}),
            (8, {A: LO, B: LO, C: LO}),
        ),
        for_="3s",
    ),
)


# vigil differs on purpose: `resolve_expr` (hysteresis) has no Prometheus equivalent.
HYSTERESIS = PromScenario(
    "p20_hysteresis",
    "vigil's resolve_expr holds a firing alert until the value is below 3; Prometheus resolves"
    " as soon as the expression is false (value 4)",
    _s((0, {A: LO}), (1, {A: HI}), (4, {A: 4.0}), (7, {A: LO})),
    resolve_below=3.0,
)


def series_labels(key: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in key.split(",") if kv)


def prometheus_rules(scenarios: tuple[PromScenario, ...], interval: str) -> str:
    lines = ["groups:", "  - name: diff", f"    interval: {interval}", "    rules:"]
    for sc in scenarios:
        for name, for_, kff in (
            (sc.id, sc.for_, sc.keep_firing_for),
            (f"{sc.id}_twin", "0s", "0s"),
        ):
            labels = {"severity": "warning", **sc.labels}
            lines += [
                f"      - alert: {name}",
                f"        expr: {sc.id}_v > {THRESHOLD}",
                f"        for: {for_}",
                f"        keep_firing_for: {kff}",
                "        labels: {" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "}",
            ]
    return "\n".join(lines) + "\n"


def vigil_rules(scenarios: tuple[PromScenario, ...], interval: str) -> str:
    lines = ["group: diff", f"interval: {interval}", "rules:"]
    for sc in scenarios:
        for name, for_, kff in (
            (sc.id, sc.for_, sc.keep_firing_for),
            (f"{sc.id}_twin", "0s", "0s"),
        ):
            lines += [
                f"  - id: {name}",
                f"    each: app.{sc.id}",
                f"    expr: it.value > {THRESHOLD}",
                f"    for: {for_}",
                f"    keep_firing_for: {kff}",
                "    severity: warning",
            ]
            if sc.resolve_below is not None and name == sc.id:
                lines.append(f"    resolve_expr: it.value < {sc.resolve_below}")
            if sc.labels:
                lines.append(
                    "    labels: {" + ", ".join(f"{k}: {v}" for k, v in sc.labels.items()) + "}"
                )
    return "\n".join(lines) + "\n"
