"""The alert's state over time: what its timers (for, consecutive,
keep_firing_for, resolve_expr hysteresis) make of the condition now, and the
one-sentence summary (FIRING since ..., PENDING ..., NOT FIRING: why). Separate
from the condition part: it reads a judged Condition and the durable state,
and evaluates nothing itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config.model import Rule
from engine.explain.facts import Facts
from engine.explain.result import AlertState, Condition
from engine.explain.wording import as_number, duration_text, iso_time, show_value, when_text


class TimerExplainer:
    """When the alert changes state next, and how it stands now in one sentence."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def timer(self, st: AlertState, sa: Mapping[str, Any] | None, cond: Condition) -> list[str]:
        rule, now = self.facts.rule, self.facts.now
        holds = _effective(rule, cond)  # True / False / None: frozen / "unknown"
        out: list[str] = [
            f"evaluated every {duration_text(self.facts.interval)} (group {rule.group})"
        ]
        if cond.policy:
            out.append(cond.policy)
        if st == "firing" and sa is not None:
            since = as_number(sa.get("firing_since"))
            out.append(f"firing since {when_text(since, now)}" if since else "firing")
            if holds is True:
                out.append("the condition holds: it stays firing")
            elif holds is False:
                out.extend(self._resolving(cond))
            elif holds is None:
                out.append("its state is frozen while this lasts: it stays firing")
            if rule.keep_firing_for and holds is not False:
                out.append(
                    f"keep_firing_for {duration_text(rule.keep_firing_for)}: once the condition stops "
                    "holding it stays firing that long"
                )
        elif st == "pending" and sa is not None:
            since = as_number(sa.get("pending_since"))
            out.append(f"pending since {when_text(since, now)}" if since else "pending")
            if holds is False:
                out.append(
                    "the condition does not hold now: back to inactive at the next "
                    "evaluation (the timer starts over)"
                )
            elif holds is None:
                out.append("its state and timer are frozen while this lasts")
            out.extend(self._fires_when(since))
        else:
            if holds is True:
                if rule.for_ > 0 or rule.consecutive > 1:
                    out.append("the condition holds: it becomes pending at the next evaluation")
                    out.extend(self._fires_when(None))
                else:
                    out.append("the condition holds: it fires at the next evaluation")
            elif holds is False:
                out.append("the condition does not hold: nothing pending")
            elif holds is None:
                out.append("its state is frozen while this lasts: it stays inactive")
            if holds is not True and (rule.for_ > 0 or rule.consecutive > 1):
                out.extend(self._fires_when(None))
        return out

    def _fires_when(self, since: float | None) -> list[str]:
        rule, now = self.facts.rule, self.facts.now
        out: list[str] = []
        if rule.for_ > 0:
            if since is None:
                out.append(
                    f"for {duration_text(rule.for_)}: it fires once the condition has held that long"
                )
            else:
                at = since + rule.for_
                if at > now:
                    out.append(
                        f"for {duration_text(rule.for_)}: fires at {when_text(at, now)} if the condition "
                        "keeps holding (at the first evaluation after that)"
                    )
                else:
                    out.append(
                        f"for {duration_text(rule.for_)} has passed ({iso_time(at)}): fires at the next "
                        "evaluation where the condition holds"
                    )
        if rule.consecutive > 1:
            guess = ""
            if since is not None:
                at = since + (rule.consecutive - 1) * self.facts.interval
                guess = f"; at this interval about {when_text(at, now)}"
            out.append(
                f"consecutive {rule.consecutive}: fires after {rule.consecutive} true "
                f"evaluations in a row{guess} (the count itself is not journaled)"
            )
        return out

    def _resolving(self, cond: Condition) -> list[str]:
        rule = self.facts.rule
        out = ["the condition does not hold now"]
        if rule.keep_firing_for:
            out.append(
                f"keep_firing_for {duration_text(rule.keep_firing_for)}: it resolves once the condition "
                "has not held for that long"
            )
        if rule.resolve_expr is not None:
            r = cond.resolve
            if cond.outcome == "no_data" and rule.no_data == "ok":
                out.append("resolve_expr: missing data counts as the resolve condition holding")
            elif cond.outcome == "gone":
                out.append("resolve_expr: a vanished element counts as resolved")
            elif r is None:
                out.append(f"resolve_expr `{rule.resolve_expr}` was not evaluated")
            elif r.outcome == "true":
                out.append(f"resolve_expr holds: {r.text}: it may resolve (hysteresis)")
            else:
                out.append(
                    f"resolve_expr does not hold: {r.text}: it stays firing until it does "
                    "(hysteresis)"
                )
        if not rule.keep_firing_for and (
            rule.resolve_expr is None
            or cond.outcome == "gone"
            or (cond.outcome == "no_data" and rule.no_data == "ok")
            or (cond.resolve is not None and cond.resolve.outcome == "true")
        ):
            out.append("it resolves at the next evaluation")
        return out

    # one sentence ------------------------------------------------------------------

    def summary(
        self, st: AlertState, since: float | None, cond: Condition, sa: Mapping[str, Any] | None
    ) -> str:
        now, rule = self.facts.now, self.facts.rule
        why = cond.message
        if cond.outcome in ("no_data", "stale") and cond.policy:
            why += f" — {cond.policy.split(' — ')[0]}"
        if cond.outcome == "error" and cond.policy:
            why += f" — {cond.policy.split(' — ')[0]}"
        if st == "firing":
            head = f"FIRING since {when_text(since, now)}" if since is not None else "FIRING"
            if cond.outcome == "true":
                return f"{head}: {why}"
            if cond.outcome == "unknown":
                last = sa.get("value") if sa is not None else None
                return f"{head} (last recorded value {show_value(last)}; current values unknown)"
            return f"{head}; now {why}"
        if st == "pending":
            head = f"PENDING since {when_text(since, now)}" if since is not None else "PENDING"
            if rule.for_ > 0 and since is not None and cond.outcome != "false":
                head += f", fires {when_text(since + rule.for_, now)} if it keeps holding"
            if cond.outcome == "unknown":
                return f"{head} (current values unknown)"
            return f"{head}: {why}"
        if cond.outcome == "unknown":
            return "NOT FIRING (no alert in the journal; current values unknown)"
        if cond.outcome == "disabled":
            return "NOT FIRING: the rule is disabled"
        if cond.outcome == "true":
            return f"NOT FIRING yet: {why} (the next evaluation acts on it)"
        return f"NOT FIRING: {why}"


def _effective(rule: Rule, cond: Condition) -> bool | str | None:
    """What the condition means to the state machine: True / False, None (frozen),
    or "unknown"."""
    o = cond.outcome
    if o == "true":
        return True
    if o in ("false", "gone"):
        return False
    if o == "no_data":
        return {"ok": False, "alert": True, "keep": None}[rule.no_data]
    if o == "stale":
        return None
    if o == "error":
        return True if rule.on_error == "alert" else None
    return "unknown"
