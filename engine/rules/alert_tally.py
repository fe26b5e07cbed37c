"""Counts over the active alerts, for /metrics, systemd's STATUS= and /status.

With 10,000 alerts one pass takes several milliseconds, so the daemon runs it
in steps between which its event loop may run (see engine/runtime/budget.py), and keeps
the result until the state changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.config.model import Rule

STEP = 1024  # alerts per step
_RANK = {"firing": 2, "pending": 1}


@dataclass
class Tally:
    by_state_severity: dict[tuple[str, str], int] = field(default_factory=dict)
    worst: dict[str, str] = field(default_factory=dict)  # rule id -> firing > pending > other

    def count(self, state: str) -> int:
        return sum(n for (st, _), n in self.by_state_severity.items() if st == state)

    def rule_states(self, rules: Iterable[Rule]) -> dict[str, int]:
        """Rules by their worst alert (firing > pending > inactive), and disabled."""
        counts = {"firing": 0, "pending": 0, "inactive": 0, "disabled": 0}
        for r in rules:
            state = "disabled" if not r.enabled else self.worst.get(r.id, "inactive")
            counts[state] = counts.get(state, 0) + 1
        return counts


def steps(alerts: Sequence[Mapping[str, Any]], out: Tally) -> Iterator[None]:
    """Fill `out` from `alerts` (the store's shape), yielding every STEP alerts."""
    counts, worst = out.by_state_severity, out.worst
    for i, a in enumerate(alerts, 1):
        st = str(a.get("state"))
        key = (st, str(a.get("severity")))
        counts[key] = counts.get(key, 0) + 1
        rid = a.get("rule")
        if isinstance(rid, str):
            cur = worst.get(rid)
            if cur is None or _RANK.get(st, 0) > _RANK.get(cur, 0):
                worst[rid] = st
        if i % STEP == 0:
            yield


def tally(alerts: Sequence[Mapping[str, Any]]) -> Tally:
    out = Tally()
    for _ in steps(alerts, out):
        pass
    return out
