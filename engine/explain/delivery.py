"""Where an alert's notification goes: the delivery part of `vigil explain`.

Follows the pipeline's order (engine/notify/pipeline.py): route → silence →
inhibit → time interval → flapping hold → acknowledgement → rate limit /
breaker, and says what would happen, not what a send did (the journal's
`notified` records say what went out). The holds and the channels are explained
in holds.py and channel_state.py; this module matches the routes, puts their
answers together per channel, and words the outcome and the escalation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config.model import Route
from engine.explain.channel_state import explain_channel, group_timing
from engine.explain.facts import Facts
from engine.explain.holds import Holds
from engine.explain.result import (
    AlertState,
    ChannelInfo,
    Delivery,
    DeliveryStatus,
    Reason,
    RouteInfo,
)
from engine.explain.wording import (
    duration_text,
    iso_or_none,
    labels_text,
    matchers_text,
    when_text,
)
from engine.notify.escalation import plan, why_not
from engine.notify.pipeline import CLOSING_TYPES
from engine.notify.router import BYPASS_INDEX, match_labels, targets


class DeliveryExplainer:
    """The routes, holds, channels and escalation of one alert's notification."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.holds = Holds(facts)

    def delivery(
        self, fp: str, labels: Mapping[str, str], st: AlertState, sa: Mapping[str, Any] | None
    ) -> Delivery:
        rule, config = self.facts.rule, self.facts.config
        severity = str(sa.get("severity") or rule.severity) if sa is not None else rule.severity
        ml = match_labels(labels, rule.id, severity)
        pairs = targets(config, ml, rule)
        firing = st == "firing"
        routes = tuple(_route_info(i, r) for i, r in pairs)
        notes: list[str] = []
        if rule.channels is not None:
            notes.append(
                f"the rule names its own channels ({', '.join(rule.channels)}): routes are "
                "bypassed (grouped by rule, default timing, no time intervals or escalation)"
            )
        reasons: list[Reason] = []
        if not pairs:
            reasons.append(
                Reason(
                    "no_route",
                    f"no route matches {labels_text(ml)}: the notification goes nowhere "
                    "(add a default route without `match`)",
                )
            )
        reasons += self.holds.silences(ml, notes)
        reasons += self.holds.inhibited(fp, ml)
        # time intervals, per route
        for i, r in pairs:
            reasons += self.holds.route_time(i, r)
        held = self.facts.held.get(fp)
        if isinstance(held, Mapping) or (sa is not None and sa.get("flapping")):
            reasons.append(self.holds.flapping(held if isinstance(held, Mapping) else None))
        ack = self.holds.ack(sa, notes)
        if ack is not None:
            reasons.append(ack)
        alert_blocked = any(r.route is None and r.channel is None for r in reasons)
        acked_only = alert_blocked and all(
            r.code == "acknowledged" for r in reasons if r.route is None and r.channel is None
        )
        muted_routes = {r.route for r in reasons if r.route is not None}
        # channels: route channels first, in route order
        order: dict[str, list[int]] = {}
        for i, r in pairs:
            for ch in r.channels:
                order.setdefault(ch, []).append(i)
        channels: list[ChannelInfo] = []
        for name, idxs in order.items():
            cfg = config.channel(name)
            closing = cfg is not None and cfg.type in CLOSING_TYPES
            # its group's timing, unless the alert is held back before any group
            # (a held alert is not in what the group sends: its timing says nothing)
            timing = (
                group_timing(self.facts, fp, name, idxs[0])
                if firing and (not alert_blocked or (acked_only and closing))
                else None
            )
            creasons, lines = explain_channel(
                self.facts,
                name,
                cfg,
                idxs,
                pairs,
                sa,
                firing,
                acked=any(r.code == "acknowledged" for r in reasons),
                timing=timing,
            )
            reasons += creasons
            open_route = any(i not in muted_routes for i in idxs)
            sends = (
                open_route
                and not creasons
                and (not alert_blocked or (acked_only and closing))
                and cfg is not None
            )
            if acked_only and closing:
                lines.append("gets the acknowledgement (it acknowledges the incident there)")
            waits = [_short(r) for r in reasons if r.route is not None and r.route in idxs]
            if not open_route and waits:
                lines.append("waits: " + "; ".join(waits))
            channels.append(
                ChannelInfo(
                    name,
                    cfg.type if cfg is not None else "?",
                    tuple(idxs),
                    sends,
                    tuple(lines),
                    dict(self.facts.channel_status[name])
                    if self.facts.channel_status is not None and name in self.facts.channel_status
                    else None,
                    timing.code if timing is not None else "",
                    iso_or_none(timing.next_at) if timing is not None else None,
                )
            )
        escalation, esc_next = self._escalation(fp, pairs) if firing else ([], None)
        going = [c.name for c in channels if c.sends]
        if not pairs:
            status: DeliveryStatus = "nowhere"
            summary = "no route matches: a notification would go nowhere"
        elif not firing:
            status = "not_firing"
            verb = (
                "pending: nothing is sent until it fires"
                if st == "pending"
                else "not firing: nothing is sent"
            )
            if going:
                summary = f"{verb}; if it fired now it would go to {', '.join(going)}"
            else:
                held = "; ".join(_short(r) for r in reasons) or "nothing would go out"
                summary = f"{verb}; if it fired now it would be held back: {held}"
        elif going:
            status = "sending"
            summary = f"notifications go to {', '.join(going)}"
            stopped = [c.name for c in channels if not c.sends]
            if stopped:
                summary += f"; held back from {', '.join(stopped)}"
        else:
            status = "withheld"
            summary = "withheld: " + "; ".join(_short(r) for r in reasons)
        return Delivery(
            status,
            summary,
            routes,
            tuple(reasons),
            tuple(channels),
            tuple(escalation),
            tuple(notes),
            iso_or_none(esc_next),
        )

    def _escalation(
        self, fp: str, pairs: list[tuple[int, Route]]
    ) -> tuple[list[str], float | None]:
        """The escalation levels, as the rebuilt pipeline's escalation policy sees
        them (engine/notify/escalation.why_not), and the next level's time."""
        p, now = self.facts.pipeline, self.facts.now
        a = p.alerts.get(fp)
        if a is None:
            return [], None
        h = why_not(p, a, now)
        due = {(idx, level): at for idx, level, at in plan(a, pairs)}
        out: list[str] = []
        for i, r in pairs:
            for n, step in enumerate(r.escalate, 1):
                head = f"route #{i} level {n} (after {duration_text(step.after)} → {', '.join(step.channels)})"
                at = due.get((i, n))
                if at is None:
                    out.append(f"{head}: done")
                elif h.code == "escalation_blocked":
                    out.append(
                        f"{head}: waits while it is silenced, inhibited, flapping or acknowledged"
                    )
                    break
                elif at > now:
                    out.append(f"{head}: due {when_text(at, now)} unless acknowledged")
                else:
                    out.append(
                        f"{head}: overdue since {when_text(at, now)}: goes out at the next check"
                    )
        return out, h.next_at if h.code == "escalation_due" else None


def _short(r: Reason) -> str:
    """A few words for a summary line; the reason's text has the whole story."""
    code, d = r.code, r.data
    if code == "silenced":
        return f"silenced ({d.get('id')})"
    if code == "inhibited":
        by = d.get("by")
        return f"inhibited by {by.get('rule') if isinstance(by, Mapping) else '?'}"
    if code == "outside_active_time":
        return f"route #{r.route} outside active_time"
    if code == "inside_mute_time":
        return f"route #{r.route} inside mute_time"
    if code == "acknowledged":
        return f"acknowledged by {d.get('by')}"
    if code == "rate_limited":
        return f"{r.channel} rate limited"
    if code == "breaker_open":
        return f"{r.channel} breaker open"
    if code == "channel_unavailable":
        return f"{r.channel} unavailable"
    if code == "no_route":
        return "no route matches"
    return code


def _route_info(index: int, r: Route) -> RouteInfo:
    matchers = matchers_text(r.matchers) if r.matchers else "(matches everything)"
    group_by = ", ".join(r.group_by)
    timing = (
        f"group_by {group_by}; wait {duration_text(r.group_wait)}, interval {duration_text(r.group_interval)}, "
        f"repeat {duration_text(r.repeat_interval)}"
    )
    extra = ""
    if r.active_time:
        extra += f"; active_time {', '.join(r.active_time)}"
    if r.mute_time:
        extra += f"; mute_time {', '.join(r.mute_time)}"
    if r.continue_:
        extra += "; continue: later routes apply too"
    if index == BYPASS_INDEX:
        text = f"rule channels → {', '.join(r.channels)} (routes bypassed; {timing})"
    else:
        text = f"route #{index} {matchers} → {', '.join(r.channels)} ({timing}{extra})"
    return RouteInfo(
        index=index,
        text=text,
        matchers=matchers,
        channels=r.channels,
        continue_=r.continue_,
        group_by=r.group_by,
        group_wait=r.group_wait,
        group_interval=r.group_interval,
        repeat_interval=r.repeat_interval,
        active_time=r.active_time,
        mute_time=r.mute_time,
        source=str(r.source) if r.source.line else "",
    )
