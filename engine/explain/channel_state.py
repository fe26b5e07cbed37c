"""One channel as `vigil explain` sees it: whether and when it was told, when its
group flushes next (the pipeline's own query, engine/notify/groups.why_not), its
rate limit (engine/notify/ratelimit.window_hold over the recent sends and held
notifications; online, the running pipeline's own limiter), and what the dispatcher
says of it (breaker and when it tries again, error, queue). The last step of the
pipeline's order, after the holds
(engine/explain/holds.py) have let a notification through; separate because it
reads the channels' status and send times, which nothing else here does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config.model import Channel, Route
from engine.explain.facts import Facts
from engine.explain.result import Reason
from engine.explain.wording import as_number, duration_text, iso_or_none, when_text
from engine.notify import groups
from engine.notify.hold import Hold
from engine.notify.ratelimit import window_hold

# how the group's next flush is worded after "repeats every ..."
_NEXT = {
    "repeat_interval": " (next about {})",
    "group_interval": " (news goes out on its next tick, about {})",
    "resend_delay": " (re-sent every resend_delay, next about {})",
    "inflight": "",
}


def group_timing(facts: Facts, fp: str, name: str, route_index: int) -> Hold | None:
    """When the group of alert `fp` on channel `name` (route `route_index`) flushes
    next and why: the rebuilt pipeline's own query (engine/notify/groups.why_not),
    on the running daemon's ticks.
    None: the pipeline has no such group (the alert does not fire)."""
    p = facts.pipeline
    a = p.alerts.get(fp)
    if a is None:
        return None
    for key in a.groups:
        g = p.groups.get(key)
        if g is not None and g.channel == name and g.route_index == route_index:
            return groups.why_not(p, g, facts.now, on_grid=True)
    return None


def explain_channel(
    facts: Facts,
    name: str,
    cfg: Channel | None,
    idxs: list[int],
    pairs: list[tuple[int, Route]],
    sa: Mapping[str, Any] | None,
    firing: bool,
    *,
    acked: bool,
    timing: Hold | None = None,
) -> tuple[list[Reason], list[str]]:
    """What holds a notification back on channel `name` (reasons), and what else
    to say about it (lines): told at ..., repeats, rate limit, breaker, queue.
    `timing`: its group's group_timing()."""
    now = facts.now
    reasons: list[Reason] = []
    lines: list[str] = []
    if cfg is None:
        reasons.append(
            Reason("channel_unavailable", f"channel {name} is not configured", channel=name)
        )
        return reasons, lines
    route = dict(pairs)[idxs[0]]
    nxt = timing.next_at if timing is not None else None
    told = (sa.get("notified") or {}).get(name) if sa is not None else None
    if isinstance(told, Mapping):
        ts = as_number(told.get("ts"))
        if told.get("ok", True):
            lines.append(f"told at {when_text(ts, now)} ({told.get('status')})")
            if firing and acked:
                lines.append("no repeats while acknowledged")
            elif firing and told.get("status") == "firing" and ts is not None:
                # the pipeline's timing: on the group's ticks, which go on
                # every group_interval from that notification (ticks.py)
                gi = route.group_interval
                line = (
                    f"repeats every {duration_text(route.repeat_interval)} while unacknowledged, "
                    f"on the group's ticks every {duration_text(gi)}"
                )
                if timing is not None and nxt is not None:
                    line += _NEXT.get(timing.code, " (next about {})").format(when_text(nxt, now))
                lines.append(line)
        else:
            lines.append(
                f"the last attempt at {when_text(ts, now)} failed: retried on the group's next "
                f"tick (every group_interval, {duration_text(route.group_interval)})"
            )
    elif firing:
        line = "not told yet"
        if route.group_wait:
            line += f" (a new group waits group_wait, {duration_text(route.group_wait)})"
        if timing is not None and nxt is not None:
            line += f"; its first notification about {when_text(nxt, now)}"
        lines.append(line)
    rl = cfg.rate_limit
    status = facts.channel_status.get(name) if facts.channel_status is not None else None
    if rl is not None:
        if facts.live is not None:  # the daemon's own limiter: its sends and what it holds
            rate = facts.live.rate.hold(name, now)
        else:
            times = [*facts.sent_at.get(name, ()), *((status or {}).get("sent_at") or ())]
            sent = [t for t in (as_number(x) for x in times) if t is not None]
            rate = window_hold(rl, sent, int((status or {}).get("held") or 0), now)
        lines.append(f"rate limit {rl.max} per {duration_text(rl.per)}")
        if rate.held:
            held, recent = rate.detail["held"], rate.detail["recent"]
            why = (
                f"{held} notification(s) held"
                if held
                else f"{recent} sent in the last {duration_text(rl.per)}"
            )
            reasons.append(
                Reason(
                    "rate_limited",
                    f"channel {name} is at its rate limit ({rl.max} per {duration_text(rl.per)}; "
                    f"{why}): new notifications wait and go out together as one digest"
                    + (f" at {when_text(rate.next_at, now)}" if rate.next_at is not None else ""),
                    channel=name,
                    data={"max": rl.max, "per": rl.per, "held": held, "recent": recent},
                    next_at=iso_or_none(rate.next_at),
                )
            )
    if status is not None:
        error = status.get("error")
        breaker = status.get("breaker")
        if error:
            reasons.append(
                Reason(
                    "channel_unavailable",
                    f"channel {name} cannot deliver: {error}",
                    channel=name,
                    data={"error": str(error)},
                )
            )
        if breaker == "open":
            retry_in = as_number(status.get("retry_in"))
            probe = (
                f"in {duration_text(retry_in)}, at {when_text(now + retry_in, now)}"
                if retry_in is not None
                else "when its cooldown ends"
            )
            reasons.append(
                Reason(
                    "breaker_open",
                    f"channel {name}'s circuit breaker is open after repeated failures "
                    f"(sent {status.get('sent', 0)}, failed {status.get('failed', 0)}): "
                    f"deliveries fail fast; one probe is tried {probe}",
                    channel=name,
                    data={
                        "sent": status.get("sent"),
                        "failed": status.get("failed"),
                        "retry_in": retry_in,
                    },
                    next_at=iso_or_none(now + retry_in) if retry_in is not None else None,
                )
            )
        elif breaker == "half_open":
            lines.append("breaker half-open: one probe delivery decides whether it closes")
        elif breaker is not None:
            lines.append(f"breaker {breaker}")
        if status.get("queued"):
            lines.append(f"{status['queued']} notification(s) queued for delivery")
        if status.get("folded"):
            lines.append(
                f"{status['folded']} notification(s) folded into a digest (its queue was full)"
            )
    return reasons, lines
