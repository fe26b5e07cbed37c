"""Why a firing alert's notification is held back before any channel: silences
(config and API), inhibition by another firing alert, a route's active_time /
mute_time, the flapping hold and an acknowledgement, in the pipeline's order
(engine/notify/pipeline.py). Each is a Reason. Separate from the delivery
summary and from the channels' own limits (rate limit, breaker), which say what
happens after these let a notification through."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.config.model import Route, TimeInterval, matches_all
from engine.explain.facts import Facts
from engine.explain.result import Reason
from engine.explain.wording import (
    as_number,
    duration_text,
    iso_or_none,
    iso_time,
    labels_text,
    matchers_text,
    parse_time,
    when_text,
)
from engine.notify.router import BYPASS_INDEX, match_labels, silence_active, source_counts
from engine.notify.timeintervals import active as interval_active
from engine.notify.timeintervals import muted

# how far ahead to look for the end of a mute_time or the start of an active_time
_INTERVAL_HORIZON = 8 * 86400.0


class Holds:
    """The reasons a notification of this rule is held back (alert- or route-wide)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self._mute_cache: dict[tuple[int, bool], float | None] = {}

    def flapping(self, held: Mapping[str, Any] | None) -> Reason:
        """Held for flapping: since when, and until when at the earliest. The hold
        ends once fewer than max(1, max_changes // 2) of the counted changes
        (firing, resolved) lie within the window (engine/rules/state.py)."""
        fl, now = self.facts.rule.flapping, self.facts.now
        calm = max(1, fl.max_changes // 2)
        since = as_number(held.get("since")) if held is not None else None
        changes = sorted(
            t for t in (as_number(c) for c in (held or {}).get("changes") or ()) if t is not None
        )
        recent = [t for t in changes if t > now - fl.window]
        until: float | None = None
        if held is not None:
            until = recent[len(recent) - calm] + fl.window if len(recent) >= calm else now
        head = (
            f"held for flapping since {when_text(since, now)}"
            if since is not None
            else "held for flapping"
        )
        text = (
            f"{head}: {len(recent) if held is not None else 'at least ' + str(fl.max_changes)} "
            f"state changes within {duration_text(fl.window)} (flapping from {fl.max_changes}). "
            "Notifications are held back, and escalation waits, until fewer than "
            f"{calm} remain within {duration_text(fl.window)}"
        )
        if until is not None:
            text += (
                f": until {when_text(until, now)} at the earliest, later if it changes state "
                "again; then its channels hear its latest state"
            )
        data: dict[str, Any] = {"since": iso_or_none(since), "until": iso_or_none(until)}
        return Reason("flapping", text, data=data)

    def silences(self, ml: Mapping[str, str], notes: list[str]) -> list[Reason]:
        out: list[Reason] = []
        now = self.facts.now
        for origin, silences in (
            ("config", self.facts.config.silences),
            ("API", self.facts.api_silences),
        ):
            for s in silences:
                if not matches_all(s.matchers, ml) or now >= s.until:
                    continue
                where = f" ({s.source})" if origin == "config" and s.source.line else ""
                what = f"{origin} silence {s.id}{where} [{matchers_text(s.matchers)}]"
                if not silence_active(s, now):
                    notes.append(
                        f"{what} will silence it from {when_text(s.starts, now)} "
                        f"until {iso_time(s.until)}: {s.reason!r}"
                    )
                    continue
                out.append(
                    Reason(
                        "silenced",
                        f"silenced by {what} by {s.created_by}: {s.reason!r}; "
                        f"expires {when_text(s.until, now)}",
                        data={
                            "id": s.id,
                            "origin": origin.lower(),
                            "matchers": matchers_text(s.matchers),
                            "reason": s.reason,
                            "created_by": s.created_by,
                            "until": iso_time(s.until),
                            "starts": iso_or_none(s.starts),
                        },
                    )
                )
        return out

    def inhibited(self, fp: str, ml: Mapping[str, str]) -> list[Reason]:
        out: list[Reason] = []
        for i, inh in enumerate(self.facts.config.inhibits):
            if not matches_all(inh.target_matchers, ml):
                continue
            key = tuple(ml.get(k, "") for k in inh.equal)
            for sfp, a in self.facts.alerts.items():
                if sfp == fp or not isinstance(a, Mapping) or a.get("state") != "firing":
                    continue
                slabels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
                sml = match_labels(slabels, str(a.get("rule") or ""), str(a.get("severity") or ""))
                if not source_counts(inh, ml, sml):  # Alertmanager's two-sided rule
                    continue
                if tuple(sml.get(k, "") for k in inh.equal) != key:
                    continue
                equal = ", ".join(f"{k}={v!r}" for k, v in zip(inh.equal, key, strict=True))
                out.append(
                    Reason(
                        "inhibited",
                        f"inhibited by firing alert {a.get('rule')} {labels_text(slabels)} "
                        f"(fingerprint {sfp}, {a.get('severity')}): inhibit rule #{i} "
                        f"[source {matchers_text(inh.source_matchers)} → target "
                        f"{matchers_text(inh.target_matchers)}"
                        + (f", equal on {equal}]" if inh.equal else "]"),
                        data={
                            "inhibit": i,
                            "source": str(inh.source),
                            "by": {"fingerprint": sfp, "rule": a.get("rule"), "labels": slabels},
                            "equal": list(inh.equal),
                        },
                    )
                )
                break  # one source per inhibit rule is enough to say why
        return out

    def route_time(self, index: int, r: Route) -> list[Reason]:
        if index == BYPASS_INDEX or not muted(r, self.facts.intervals, self.facts.now):
            return []
        out: list[Reason] = []
        now = self.facts.now
        if r.active_time and not any(
            n in self.facts.intervals and interval_active(self.facts.intervals[n], now)
            for n in r.active_time
        ):
            nxt = self._next_change(index, r, want_muted=False)
            names = ", ".join(_interval_text(self.facts.intervals.get(n), n) for n in r.active_time)
            when = f"; next active {when_text(nxt, now)}" if nxt is not None else ""
            out.append(
                Reason(
                    "outside_active_time",
                    f"route #{index} is outside its active_time ({names}){when}: its "
                    "notifications wait until then",
                    route=index,
                    data={"intervals": list(r.active_time), "next": iso_or_none(nxt)},
                )
            )
        inside = [
            n
            for n in r.mute_time
            if n in self.facts.intervals and interval_active(self.facts.intervals[n], now)
        ]
        if inside:
            nxt = self._next_change(index, r, want_muted=False)
            names = ", ".join(_interval_text(self.facts.intervals.get(n), n) for n in inside)
            when = f" until {when_text(nxt, now)}" if nxt is not None else ""
            out.append(
                Reason(
                    "inside_mute_time",
                    f"route #{index} is inside its mute_time ({names}){when}: its "
                    "notifications wait until then",
                    route=index,
                    data={"intervals": inside, "until": iso_or_none(nxt)},
                )
            )
        return out

    def _next_change(self, index: int, r: Route, *, want_muted: bool) -> float | None:
        key = (index, want_muted)
        if key not in self._mute_cache:
            t = (math.floor(self.facts.now / 60.0) + 1) * 60.0
            end = self.facts.now + _INTERVAL_HORIZON
            found: float | None = None
            while t <= end:
                if muted(r, self.facts.intervals, t) == want_muted:
                    found = t
                    break
                t += 60.0
            self._mute_cache[key] = found
        return self._mute_cache[key]

    def ack(self, sa: Mapping[str, Any] | None, notes: list[str]) -> Reason | None:
        ack = sa.get("ack") if sa is not None else None
        if not isinstance(ack, Mapping):
            return None
        until = parse_time(ack.get("until"))
        by, note = ack.get("by"), ack.get("note")
        if until is not None and self.facts.now >= until:
            notes.append(f"its acknowledgement by {by} expired {when_text(until, self.facts.now)}")
            return None
        data = {
            "by": by,
            "note": note,
            "until": iso_or_none(until),
            "at": iso_or_none(as_number(ack.get("at"))),
        }
        lasts = (
            f"until {when_text(until, self.facts.now)}"
            if until is not None
            else "until it resolves"
        )
        return Reason(
            "acknowledged",
            f"acknowledged by {by} ({note!r}) {lasts}: no repeats and no escalation; "
            "incident tools (PagerDuty, Opsgenie) are told of the acknowledgement",
            data=data,
        )


def _interval_text(t: TimeInterval | None, name: str) -> str:
    return f"{name}, {t.timezone}" if t is not None else f"{name} (unknown)"
