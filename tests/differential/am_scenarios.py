"""The notification scenarios run through Alertmanager and vigil (test_diff_alertmanager.py).

A scenario is written once, in Alertmanager's terms (matchers as strings such as
`team!="ops"`), and turned into both configurations:
- Alertmanager: one route per scenario under the root (`scenario="<id>"`, the
  scenario's default receiver and timing), its routes nested below; inhibit
  rules and silences get `scenario="<id>"` on every side;
- vigil: the same, as vigil's channel file says it. `flat` scenarios use what
  vigil supports today: top-level routes each matching `scenario: <id>` with its
  timing spelt out, then a catch-all to the scenario's default receiver (the same
  thing as Alertmanager's parent route while no matching child route has
  `continue: true` and is the last match). `matchers` scenarios need
  Alertmanager-like `matchers: ['team!=ops']` lists in routes, `inhibit_matchers`
  ones `source_matchers` / `target_matchers` in inhibit rules; `nested` scenarios need `routes:` inside a
  route, children inheriting group_by and timings. Each syntax group runs in a
  vigil daemon of its own, so a configuration vigil rejected would fail only its group.

Alerts: `fire(t, "x", team="db")` makes alert `x` fire at offset t (seconds),
`resolve(t, "x")` resolves it. An alert's severity picks the vigil rule that
carries it (`am_<severity>`, an `each` rule over the file collector's list);
Alertmanager gets the same labels: scenario, a (the alert's name), rule,
severity and the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SEVERITIES = ("critical", "warning", "info")
GW, GI, RI = 1.0, 2.0, 3600.0  # a scenario's default group_wait, group_interval, repeat_interval

_MATCHER = re.compile(r'^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"$')


@dataclass(frozen=True)
class Ev:
    t: float
    a: str
    labels: Mapping[str, str] | None  # None: resolved
    severity: str = "warning"


def fire(t: float, a: str, severity: str = "warning", **labels: str) -> Ev:
    return Ev(t, a, labels, severity)


def resolve(t: float, a: str) -> Ev:
    return Ev(t, a, None)


@dataclass(frozen=True)
class Route:
    to: str
    matchers: tuple[str, ...] = ()
    cont: bool = False
    group_by: tuple[str, ...] | None = None  # None: the parent's
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class Inhibit:
    source: tuple[str, ...]
    target: tuple[str, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class Silence:
    matchers: tuple[str, ...]
    start: float  # offset; 0: before the timeline starts
    end: float


@dataclass(frozen=True)
class AmScenario:
    id: str
    doc: str
    events: tuple[Ev, ...]
    routes: tuple[Route, ...] = ()
    group_by: tuple[str, ...] = ("a",)
    group_wait: float = GW
    group_interval: float = GI
    repeat_interval: float = RI
    inhibit: tuple[Inhibit, ...] = ()
    silences: tuple[Silence, ...] = ()
    syntax: Literal["flat", "matchers", "inhibit_matchers", "nested"] = "flat"
    receivers_extra: tuple[str, ...] = field(default=())
    # vigil only (Alertmanager has neither): escalate the scenario's default route to
    # `manager` after this many seconds unacknowledged; acknowledge alert a at offset t
    escalate_after: float | None = None
    acks: tuple[tuple[float, str], ...] = ()

    @property
    def end(self) -> float:
        return max([e.t for e in self.events] + [s.start for s in self.silences])

    def receivers(self) -> list[str]:
        out = ["default", *self.receivers_extra]

        def walk(routes: tuple[Route, ...]) -> None:
            for r in routes:
                if r.to not in out:
                    out.append(r.to)
                walk(r.routes)

        walk(self.routes)
        return [f"{self.id}-{name}" for name in out]


def parse_matcher(text: str) -> tuple[str, str, str]:
    m = _MATCHER.match(text)
    if m is None:
        raise ValueError(f"not a matcher: {text}")
    return m.group(1), m.group(2), m.group(3)


def am_labels(sid: str, e: Ev) -> dict[str, str]:
    assert e.labels is not None
    return {
        "scenario": sid,
        "a": e.a,
        "rule": f"am_{e.severity}",
        "severity": e.severity,
        **e.labels,
    }


def vigil_element(sid: str, e: Ev) -> dict[str, str]:
    assert e.labels is not None
    return {"scenario": sid, "a": e.a, **e.labels}


def dur(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


# -- Alertmanager's configuration --------------------------------------------------------


def alertmanager_config(scenarios: tuple[AmScenario, ...], hook: str) -> dict[str, Any]:
    receivers: list[dict[str, Any]] = [{"name": "root-null"}]
    routes = []
    inhibit = []
    for sc in scenarios:
        for name in sc.receivers():
            receivers.append(
                {
                    "name": name,
                    "webhook_configs": [{"url": f"{hook}/am/{name}", "send_resolved": True}],
                }
            )
        routes.append(
            {
                "matchers": [f'scenario="{sc.id}"'],
                "receiver": f"{sc.id}-default",
                "group_by": list(sc.group_by),
                "group_wait": dur(sc.group_wait),
                "group_interval": dur(sc.group_interval),
                "repeat_interval": dur(sc.repeat_interval),
                "routes": [_am_route(sc, r) for r in sc.routes],
            }
        )
        for rule in sc.inhibit:
            inhibit.append(
                {
                    "source_matchers": [f'scenario="{sc.id}"', *rule.source],
                    "target_matchers": [f'scenario="{sc.id}"', *rule.target],
                    "equal": list(rule.equal),
                }
            )
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "root-null",
            "group_by": ["a"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "1h",
            "routes": routes,
        },
        "inhibit_rules": inhibit,
        "receivers": receivers,
    }


def _am_route(sc: AmScenario, r: Route) -> dict[str, Any]:
    out: dict[str, Any] = {
        "receiver": f"{sc.id}-{r.to}",
        "matchers": list(r.matchers),
        "continue": r.cont,
    }
    if r.group_by is not None:
        out["group_by"] = list(r.group_by)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if getattr(r, key) is not None:
            out[key] = dur(getattr(r, key))
    if r.routes:
        out["routes"] = [_am_route(sc, c) for c in r.routes]
    return out


# -- vigil's configuration ---------------------------------------------------------------


def vigil_rules(interval: str) -> str:
    lines = ["group: am", f"interval: {interval}", "rules:"]
    for sev in SEVERITIES:
        lines += [
            f"  - id: am_{sev}",
            f"    each: app.am_{sev}",
            "    expr: it.v > 0",
            f"    severity: {sev}",
        ]
    return "\n".join(lines) + "\n"


def vigil_channels(scenarios: tuple[AmScenario, ...], hook: str) -> dict[str, Any]:
    channels = []
    routes: list[dict[str, Any]] = []
    inhibit = []
    for sc in scenarios:
        for name in sc.receivers():
            channels.append({"name": name, "type": "webhook", "url": f"{hook}/vigil/{name}"})
        timing = {
            "group_by": list(sc.group_by),
            "group_wait": dur(sc.group_wait),
            "group_interval": dur(sc.group_interval),
            "repeat_interval": dur(sc.repeat_interval),
        }
        default: dict[str, Any] = {
            "match": {"scenario": sc.id},
            "channels": [f"{sc.id}-default"],
            **timing,
        }
        if sc.escalate_after is not None:
            default["escalate"] = [
                {"after": dur(sc.escalate_after), "channels": [f"{sc.id}-manager"]}
            ]
        if sc.syntax == "nested":
            routes.append({**default, "routes": [_vigil_route(sc, r, None) for r in sc.routes]})
        else:
            routes += [_vigil_route(sc, r, timing) for r in sc.routes]
            routes.append(default)
        for rule in sc.inhibit:
            inhibit.append(
                {
                    **_vigil_matchers(rule.source, {"scenario": sc.id}, "source"),
                    **_vigil_matchers(rule.target, {"scenario": sc.id}, "target"),
                    "equal": list(rule.equal),
                }
            )
    return {"channels": channels, "routes": routes, "inhibit": inhibit}


def _vigil_route(sc: AmScenario, r: Route, timing: Mapping[str, Any] | None) -> dict[str, Any]:
    """A route as vigil's channel file says it; `timing` spelt out on flat routes,
    None on nested ones (which inherit what they do not set)."""
    assert not (r.routes and timing is not None), f"{sc.id}: nested routes in a flat scenario"
    out: dict[str, Any] = _vigil_matchers(
        r.matchers, {"scenario": sc.id} if timing is not None else {}, ""
    )
    out["channels"] = [f"{sc.id}-{r.to}"]
    if r.cont:
        out["continue"] = True
    own = {
        "group_by": list(r.group_by) if r.group_by is not None else None,
        "group_wait": dur(r.group_wait) if r.group_wait is not None else None,
        "group_interval": dur(r.group_interval) if r.group_interval is not None else None,
        "repeat_interval": dur(r.repeat_interval) if r.repeat_interval is not None else None,
    }
    for key, value in own.items():
        if value is not None:
            out[key] = value
        elif timing is not None:
            out[key] = timing[key]
    if r.routes:
        out["routes"] = [_vigil_route(sc, c, None) for c in r.routes]
    return out


def _vigil_matchers(
    matchers: tuple[str, ...], base: Mapping[str, str], side: str
) -> dict[str, Any]:
    """`match` / `match_re` for = and =~; an Alertmanager-like `matchers` list as soon
    as one is != or !~ (the syntax issue 13 A.10 asks for)."""
    parsed = [parse_matcher(m) for m in matchers]
    if any(op in ("!=", "!~") for _, op, _ in parsed):
        scoped = [f'{k}="{v}"' for k, v in base.items()]
        return {f"{side}_matchers" if side else "matchers": [*scoped, *matchers]}
    eq = {**base, **{k: v for k, op, v in parsed if op == "="}}
    rx = {k: v for k, op, v in parsed if op == "=~"}
    out: dict[str, Any] = {}
    if eq:
        out[side or "match"] = eq
    if rx:
        out[f"{side}_re" if side else "match_re"] = rx
    return out
