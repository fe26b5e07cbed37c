"""Why a firing alert's notification is held back before any channel: silences
(config and API), inhibition by another firing alert, a route's active_time /
mute_time, the flapping hold and an acknowledgement, in the pipeline's order
(engine/notify/pipeline.py). Each is a Reason. Separate from the delivery
summary and from the channels' own limits (rate limit, breaker), which say what
happens after these let a notification through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config.model import Route, TimeInterval
from engine.explain.facts import Facts
from engine.explain.result import Reason
from engine.explain.wording import (
    as_number,
    duration_text,
    iso_or_none,
    iso_time,
    labels_text,
    matchers_text,
    when_text,
)
from engine.notify.marks import ack_hold, ack_record
from engine.notify.router import BYPASS_INDEX, silence_hold
from engine.notify.timeintervals import why_muted
from engine.rules.state import flap_calm, flapping_ends_at


class Holds:
    """The reasons a notification of this rule is held back (alert- or route-wide),
    each from the policy's own "why not now" query (engine/notify/hold.py)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def flapping(self, held: Mapping[str, Any] | None) -> Reason:
        """Held for flapping: since when, and until when at the earliest (the state
        machine's own count, engine/rules/state.flapping_ends_at)."""
        fl, now = self.facts.rule.flapping, self.facts.now
        calm = flap_calm(fl)
        since = as_number(held.get("since")) if held is not None else None
        changes = [
            t for t in (as_number(c) for c in (held or {}).get("changes") or ()) if t is not None
        ]
        recent = [t for t in changes if t > now - fl.window]
        until = flapping_ends_at(changes, fl, now) if held is not None else None
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
        return Reason("flapping", text, data=data, next_at=iso_or_none(until))

    def silences(self, ml: Mapping[str, str], notes: list[str]) -> list[Reason]:
        out: list[Reason] = []
        now = self.facts.now
        for origin, silences in (
            ("config", self.facts.config.silences),
            ("API", self.facts.api_silences),
        ):
            for s in silences:
                h = silence_hold(s, ml, now)
                if not h.held and h.code != "silence_starts":
                    continue
                where = f" ({s.source})" if origin == "config" and s.source.line else ""
                what = f"{origin} silence {s.id}{where} [{matchers_text(s.matchers)}]"
                if not h.held:
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
                        next_at=iso_or_none(h.next_at),
                    )
                )
        return out

    def inhibited(self, fp: str, ml: Mapping[str, str]) -> list[Reason]:
        """The pipeline's inhibitor over the state's firing alerts."""
        out: list[Reason] = []
        inh_ = self.facts.inhibitor(ml)
        if inh_ is None:
            return out
        for i, sfp in inh_.hold(fp, ml).detail.get("by", ()):
            inh = self.facts.config.inhibits[i]
            a = self.facts.alerts.get(sfp)
            a = a if isinstance(a, Mapping) else {}
            slabels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
            key = tuple(ml.get(k, "") for k in inh.equal)
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
        return out

    def route_time(self, index: int, r: Route) -> list[Reason]:
        if index == BYPASS_INDEX:
            return []
        now = self.facts.now
        h = why_muted(r, self.facts.intervals, now)
        if not h.held:
            return []
        out: list[Reason] = []
        nxt = h.next_at
        if h.detail["outside"]:
            names = ", ".join(_interval_text(self.facts.intervals.get(n), n) for n in r.active_time)
            when = f"; next active {when_text(nxt, now)}" if nxt is not None else ""
            out.append(
                Reason(
                    "outside_active_time",
                    f"route #{index} is outside its active_time ({names}){when}: its "
                    "notifications wait until then",
                    route=index,
                    data={"intervals": list(r.active_time), "next": iso_or_none(nxt)},
                    next_at=iso_or_none(nxt),
                )
            )
        inside = h.detail["inside"]
        if inside:
            names = ", ".join(_interval_text(self.facts.intervals.get(n), n) for n in inside)
            when = f" until {when_text(nxt, now)}" if nxt is not None else ""
            out.append(
                Reason(
                    "inside_mute_time",
                    f"route #{index} is inside its mute_time ({names}){when}: its "
                    "notifications wait until then",
                    route=index,
                    data={"intervals": inside, "until": iso_or_none(nxt)},
                    next_at=iso_or_none(nxt),
                )
            )
        return out

    def ack(self, sa: Mapping[str, Any] | None, notes: list[str]) -> Reason | None:
        ack = sa.get("ack") if sa is not None else None
        if not isinstance(ack, Mapping):
            return None
        at = as_number(ack.get("at"))
        h = ack_hold(ack_record(ack, at if at is not None else self.facts.now), self.facts.now)
        until = h.next_at
        by, note = ack.get("by"), ack.get("note")
        if not h.held:
            notes.append(f"its acknowledgement by {by} expired {when_text(until, self.facts.now)}")
            return None
        data = {"by": by, "note": note, "until": iso_or_none(until), "at": iso_or_none(at)}
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
            next_at=iso_or_none(until),
        )


def _interval_text(t: TimeInterval | None, name: str) -> str:
    return f"{name}, {t.timezone}" if t is not None else f"{name} (unknown)"
